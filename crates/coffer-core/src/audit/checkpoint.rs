//! The audit checkpoint: a MAC'd copy of the chain head kept outside the audit files, in the store's `meta` table
//! (`audit_checkpoint`), so that removing the newest records, or every file, is detected. The chain alone cannot
//! tell: what is left after a truncation is a valid prefix of it.
//!
//! The writer thread makes a checkpoint after each written batch ([`Checkpoint::of`]); the server stores the
//! latest one about once a second and at shutdown (not per request). At start, and in `coffer audit verify
//! --data-dir`, the files must still hold the checkpointed record ([`Checkpoint::check`]): its sequence number
//! with the same hash. Value: `{"seq":N,"hash":"<hex>","kid":"<hex>","mac":"<hex>"}` with
//! `mac = HMAC-SHA256(K, "coffer-audit-checkpoint-v1" || seq as 8 bytes big-endian || hash)`, `K` the audit MAC
//! key (an attacker who can write the database but does not hold the domain secret cannot lower it to match a
//! truncated log; they can put back an older checkpoint they saw, so records written after it are covered only
//! by the chain).
use coffer_crypto::SecretBytes;

use super::chain::{ChainHead, key_id};

/// The `meta` row that holds the checkpoint.
pub const META_NAME: &str = "audit_checkpoint";

/// The chain head at some point: the last written record's sequence number and hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Sequence number of the last record covered.
    pub seq: u64,
    /// That record's chain hash.
    pub hash: [u8; 32],
    /// The MAC key's id.
    pub kid: String,
    mac: [u8; 32],
}

impl std::fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoint")
            .field("seq", &self.seq)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Raw {
    seq: u64,
    hash: String,
    kid: String,
    mac: String,
}

fn mac(key: &SecretBytes, seq: u64, hash: &[u8; 32]) -> [u8; 32] {
    let mut data = b"coffer-audit-checkpoint-v1".to_vec();
    data.extend_from_slice(&seq.to_be_bytes());
    data.extend_from_slice(hash);
    coffer_crypto::hash::hmac_sha256(key, &data)
}

impl Checkpoint {
    /// The checkpoint of a chain whose next record will be `head` (none before the first record).
    pub fn of(head: &ChainHead, key: &SecretBytes) -> Option<Self> {
        let seq = head.next_seq.checked_sub(1)?;
        Some(Self {
            seq,
            hash: head.prev,
            kid: key_id(key),
            mac: mac(key, seq, &head.prev),
        })
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        let raw = Raw {
            seq: self.seq,
            hash: super::chain::hex(&self.hash),
            kid: self.kid.clone(),
            mac: super::chain::hex(&self.mac),
        };
        serde_json::to_string(&raw).unwrap_or_default()
    }

    /// Parses the stored form and checks its MAC with `key` (the current domain's audit key).
    pub fn decode(value: &str, key: &SecretBytes) -> Result<Self, String> {
        let raw: Raw = serde_json::from_str(value).map_err(|e| format!("the audit checkpoint is damaged: {e}"))?;
        let hash = super::chain::unhex32(&raw.hash).ok_or("the audit checkpoint is damaged: bad hash")?;
        let stored_mac = super::chain::unhex32(&raw.mac).ok_or("the audit checkpoint is damaged: bad mac")?;
        let kid = key_id(key);
        if raw.kid != kid {
            return Err(format!(
                "the audit checkpoint was MAC'd under another key (kid {}, this instance's is {kid})",
                raw.kid
            ));
        }
        let want = mac(key, raw.seq, &hash);
        if !coffer_crypto::secret::ct_eq(&want, &stored_mac) {
            return Err("the audit checkpoint's MAC is wrong: it was forged or changed".into());
        }
        Ok(Self {
            seq: raw.seq,
            hash,
            kid,
            mac: stored_mac,
        })
    }

    /// Checks the audit files against the checkpoint: `head` is where the files' chain ends, `hash_at(seq)` the hash
    /// of the record with that sequence number in the files (`None`: not found). The error says what is missing.
    pub fn check(&self, head: &ChainHead, hash_at: impl FnOnce(u64) -> Option<[u8; 32]>) -> Result<(), String> {
        if head.next_seq <= self.seq {
            return Err(format!(
                "the audit log ends at sequence {} but its checkpoint in the database records sequence {}: the \
                 newest {} record(s) (or every audit file) were removed",
                head.next_seq
                    .checked_sub(1)
                    .map_or_else(|| "(no record)".to_string(), |s| s.to_string()),
                self.seq,
                self.seq + 1 - head.next_seq
            ));
        }
        match hash_at(self.seq) {
            Some(h) if h == self.hash => Ok(()),
            Some(_) => Err(format!(
                "the audit record with sequence {} differs from its checkpoint in the database: the log was \
                 truncated and rewritten",
                self.seq
            )),
            None => Err(format!(
                "the audit record with sequence {} (the checkpoint in the database) is not in the audit files",
                self.seq
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::chain_line;

    #[test]
    fn a_checkpoint_round_trips_and_catches_truncation_and_forgery() {
        let key = SecretBytes::new(vec![5; 32]);
        assert!(Checkpoint::of(&ChainHead::genesis(), &key).is_none());
        let mut head = ChainHead::genesis();
        let mut hashes = Vec::new();
        for i in 0..5 {
            let (_, next) = chain_line(&head, &key, format!("{{\"n\":{i}}}").as_bytes());
            head = next;
            hashes.push(head.prev);
        }
        let cp = Checkpoint::of(&head, &key).unwrap();
        let cp = Checkpoint::decode(&cp.encode(), &key).unwrap();
        assert_eq!(cp.seq, 4);
        let lookup = |s: u64| hashes.get(s as usize).copied();
        assert!(cp.check(&head, lookup).is_ok());
        // Two records removed: the files end at 2.
        let short = ChainHead {
            next_seq: 3,
            prev: hashes[2],
        };
        assert!(cp.check(&short, lookup).unwrap_err().contains("newest 2 record(s)"));
        assert!(cp.check(&ChainHead::genesis(), lookup).is_err());
        // Rewritten with a different record 4.
        assert!(cp.check(&head, |_| Some([1; 32])).unwrap_err().contains("differs"));
        // A forged (lowered) checkpoint without the key.
        let other = SecretBytes::new(vec![6; 32]);
        let forged = Checkpoint::of(&short, &other)
            .unwrap()
            .encode()
            .replace(&key_id(&other), &key_id(&key));
        assert!(Checkpoint::decode(&forged, &key).unwrap_err().contains("MAC"));
    }
}
