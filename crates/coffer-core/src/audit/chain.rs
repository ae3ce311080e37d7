//! The tamper-evidence format. A record `R` (its JSON object, as serialized) becomes the line
//!
//! ```text
//! R without its final '}' + ,"cofferChain":{"seq":N,"prev":"<hex>","hash":"<hex>","mac":"<hex>","kid":"<hex>"}}
//! ```
//!
//! with `hash = SHA-256("coffer-audit-v1" || prev || seq as 8 bytes big-endian || R)`, `prev` the previous
//! record's `hash` (32 zero bytes before the first record) and `mac = HMAC-SHA256(K, hash)`, `K` derived from the
//! domain secret (`kid` names it: the first 4 bytes of SHA-256 of a label and `K`). `R` is recovered from a line
//! by cutting at the last `,"cofferChain":` (that text cannot occur inside a JSON string, whose quotes are
//! escaped) and closing the object again. The chain continues across rotated files; a verifier that is given
//! the files in order finds the first line that was changed, removed, inserted or reordered.
use coffer_crypto::SecretBytes;

const MARK: &[u8] = b",\"cofferChain\":";

/// Where the chain continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Sequence number of the next record.
    pub next_seq: u64,
    /// Hash of the last record (zeros at the start).
    pub prev: [u8; 32],
}

impl ChainHead {
    /// The start of a new chain.
    pub fn genesis() -> Self {
        Self {
            next_seq: 0,
            prev: [0; 32],
        }
    }

    /// The head after `line` (a chained line), if the line carries a well-formed chain member.
    pub fn after_line(line: &[u8]) -> Option<Self> {
        let (_, link) = split(line)?;
        Some(Self {
            next_seq: link.seq.checked_add(1)?,
            prev: link.hash,
        })
    }
}

/// The key id of a MAC key.
pub fn key_id(key: &SecretBytes) -> String {
    let mut data = b"coffer-audit-kid|".to_vec();
    data.extend_from_slice(key.expose_secret());
    let h = coffer_crypto::hash::sha256(&data);
    hex(h.get(..4).unwrap_or(&[]))
}

fn record_hash(prev: &[u8; 32], seq: u64, body: &[u8]) -> [u8; 32] {
    let mut data = Vec::with_capacity(body.len() + 64);
    data.extend_from_slice(b"coffer-audit-v1");
    data.extend_from_slice(prev);
    data.extend_from_slice(&seq.to_be_bytes());
    data.extend_from_slice(body);
    coffer_crypto::hash::sha256(&data)
}

/// Chains one serialized record: returns the line (no newline) and the new head.
pub fn chain_line(head: &ChainHead, key: &SecretBytes, body: &[u8]) -> (Vec<u8>, ChainHead) {
    let hash = record_hash(&head.prev, head.next_seq, body);
    let mac = coffer_crypto::hash::hmac_sha256(key, &hash);
    let open = body.strip_suffix(b"}").unwrap_or(body);
    let mut line = Vec::with_capacity(body.len() + 260);
    line.extend_from_slice(open);
    line.extend_from_slice(MARK);
    line.extend_from_slice(
        format!(
            "{{\"seq\":{},\"prev\":\"{}\",\"hash\":\"{}\",\"mac\":\"{}\",\"kid\":\"{}\"}}}}",
            head.next_seq,
            hex(&head.prev),
            hex(&hash),
            hex(&mac),
            key_id(key)
        )
        .as_bytes(),
    );
    (
        line,
        ChainHead {
            next_seq: head.next_seq.saturating_add(1),
            prev: hash,
        },
    )
}

#[derive(serde::Deserialize)]
struct RawLink {
    seq: u64,
    prev: String,
    hash: String,
    mac: String,
    kid: String,
}

struct Link {
    seq: u64,
    prev: [u8; 32],
    hash: [u8; 32],
    mac: [u8; 32],
    kid: String,
}

/// Splits a line into the record body `R` and its chain member.
fn split(line: &[u8]) -> Option<(Vec<u8>, Link)> {
    let at = line.windows(MARK.len()).rposition(|w| w == MARK)?;
    let (head, tail) = line.split_at(at);
    let link_json = tail.get(MARK.len()..)?.strip_suffix(b"}")?;
    let raw: RawLink = serde_json::from_slice(link_json).ok()?;
    let mut body = head.to_vec();
    body.push(b'}');
    Some((
        body,
        Link {
            seq: raw.seq,
            prev: unhex32(&raw.prev)?,
            hash: unhex32(&raw.hash)?,
            mac: unhex32(&raw.mac)?,
            kid: raw.kid,
        },
    ))
}

/// Checks chained lines in order.
pub struct Verifier {
    key: Option<SecretBytes>,
    kid: Option<String>,
    expect: Option<ChainHead>,
    checked: u64,
    first_seq: Option<u64>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("kid", &self.kid)
            .field("checked", &self.checked)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier; with `key`, every record's MAC is checked too (without it only the hash chain is, which an
    /// attacker who rewrites every later record could forge).
    pub fn new(key: Option<SecretBytes>) -> Self {
        let kid = key.as_ref().map(key_id);
        Self {
            key,
            kid,
            expect: None,
            checked: 0,
            first_seq: None,
        }
    }

    /// Requires the chain to start at its beginning (sequence 0) instead of wherever the first file starts.
    pub fn from_genesis(mut self) -> Self {
        self.expect = Some(ChainHead::genesis());
        self
    }

    /// Checks the next line. The error says what is wrong with it.
    pub fn check(&mut self, line: &[u8]) -> Result<(), String> {
        let (body, link) = split(line)
            .ok_or_else(|| "not an audit record with a cofferChain member (changed or damaged)".to_string())?;
        if serde_json::from_slice::<serde_json::Value>(&body).is_err() {
            return Err("the record is not valid JSON (changed or damaged)".into());
        }
        if let Some(expect) = &self.expect {
            if link.seq != expect.next_seq {
                return Err(if link.seq > expect.next_seq {
                    format!(
                        "sequence {} follows {}: {} record(s) removed before this one, or records reordered",
                        link.seq,
                        expect.next_seq.saturating_sub(1),
                        link.seq - expect.next_seq
                    )
                } else {
                    format!(
                        "sequence {} where {} was expected: records reordered or inserted",
                        link.seq, expect.next_seq
                    )
                });
            }
            if link.prev != expect.prev {
                return Err(
                    "the link to the previous record is broken: the previous record was changed or replaced".into(),
                );
            }
        }
        let hash = record_hash(&link.prev, link.seq, &body);
        if hash != link.hash {
            return Err("the record's content does not match its hash: this record was changed".into());
        }
        if let (Some(key), Some(kid)) = (&self.key, &self.kid) {
            if &link.kid != kid {
                return Err(format!(
                    "the record was MAC'd under another key (kid {}, this instance's is {kid})",
                    link.kid
                ));
            }
            let mac = coffer_crypto::hash::hmac_sha256(key, &hash);
            if !coffer_crypto::secret::ct_eq(&mac, &link.mac) {
                return Err("the record's MAC is wrong: this record was forged or rewritten".into());
            }
        }
        self.first_seq.get_or_insert(link.seq);
        self.expect = Some(ChainHead {
            next_seq: link.seq.saturating_add(1),
            prev: hash,
        });
        self.checked += 1;
        Ok(())
    }

    /// How many records passed.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The first record's sequence number.
    pub fn first_seq(&self) -> Option<u64> {
        self.first_seq
    }

    /// Whether MACs were checked.
    pub fn macs_checked(&self) -> bool {
        self.key.is_some()
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter().fold(String::with_capacity(b.len() * 2), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

pub(crate) fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretBytes {
        SecretBytes::new(vec![7; 32])
    }

    fn lines(n: usize) -> Vec<Vec<u8>> {
        let mut head = ChainHead::genesis();
        (0..n)
            .map(|i| {
                let body = format!("{{\"operationName\":\"KeyGet\",\"n\":{i},\"s\":\"a,\\\"cofferChain\\\":x\"}}");
                let (line, next) = chain_line(&head, &key(), body.as_bytes());
                head = next;
                line
            })
            .collect()
    }

    fn first_failure(lines: &[Vec<u8>], key: Option<SecretBytes>) -> Option<usize> {
        let mut v = Verifier::new(key).from_genesis();
        lines.iter().position(|l| v.check(l).is_err())
    }

    #[test]
    fn intact_chain_verifies_and_heads_continue() {
        let l = lines(5);
        assert_eq!(first_failure(&l, Some(key())), None);
        let head = ChainHead::after_line(&l[4]).unwrap();
        assert_eq!(head.next_seq, 5);
    }

    #[test]
    fn edits_removals_reorders_and_forgeries_are_found_at_their_line() {
        let l = lines(6);
        let mut edited = l.clone();
        edited[3] = String::from_utf8(edited[3].clone())
            .unwrap()
            .replace("KeyGet", "KeyGot")
            .into_bytes();
        assert_eq!(first_failure(&edited, Some(key())), Some(3));
        let mut removed = l.clone();
        removed.remove(2);
        assert_eq!(first_failure(&removed, Some(key())), Some(2));
        let mut swapped = l.clone();
        swapped.swap(1, 4);
        assert_eq!(first_failure(&swapped, Some(key())), Some(1));
        // A forger without the key rewrites record 2 and re-chains everything after it: the hash chain holds,
        // the MAC does not.
        let other = SecretBytes::new(vec![9; 32]);
        let mut head = ChainHead::after_line(&l[1]).unwrap();
        let mut forged = l[..2].to_vec();
        for i in 2..6 {
            let (line, next) = chain_line(&head, &other, format!("{{\"n\":{i}}}").as_bytes());
            head = next;
            forged.push(line);
        }
        assert_eq!(first_failure(&forged, None), None);
        assert_eq!(first_failure(&forged, Some(key())), Some(2));
    }
}
