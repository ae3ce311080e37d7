//! Authorization: every core operation names the Managed HSM dataAction it needs and the scope it touches, and
//! calls [`Hsm::authorize`](crate::Hsm) before it reads or changes anything (so a caller without rights gets 403,
//! never 404).
//!
//! Current rule (foundation issue): a caller authenticated by this instance's own token service, in this
//! instance's tenant, holds every keys dataAction. Local RBAC (role definitions and assignments) replaces this
//! rule in the identity-and-RBAC issue; the call sites do not change.

/// Managed HSM dataActions (names as in builtin-roles.md, without the `Microsoft.KeyVault/managedHsm/` prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataAction {
    KeysBackup,
    KeysCreate,
    KeysDecrypt,
    KeysDelete,
    KeysDeletedDelete,
    KeysDeletedRead,
    KeysDeletedRecover,
    KeysEncrypt,
    KeysImport,
    KeysRead,
    KeysRestore,
    KeysSign,
    KeysUnwrap,
    KeysVerify,
    KeysWrap,
    KeysWrite,
    PrincipalsWrite,
    Rng,
}

impl DataAction {
    /// The full dataAction string.
    pub fn name(self) -> &'static str {
        match self {
            Self::KeysBackup => "Microsoft.KeyVault/managedHsm/keys/backup/action",
            Self::KeysCreate => "Microsoft.KeyVault/managedHsm/keys/create",
            Self::KeysDecrypt => "Microsoft.KeyVault/managedHsm/keys/decrypt/action",
            Self::KeysDelete => "Microsoft.KeyVault/managedHsm/keys/delete",
            Self::KeysDeletedDelete => "Microsoft.KeyVault/managedHsm/keys/deletedKeys/delete",
            Self::KeysDeletedRead => "Microsoft.KeyVault/managedHsm/keys/deletedKeys/read/action",
            Self::KeysDeletedRecover => {
                "Microsoft.KeyVault/managedHsm/keys/deletedKeys/recover/action"
            }
            Self::KeysEncrypt => "Microsoft.KeyVault/managedHsm/keys/encrypt/action",
            Self::KeysImport => "Microsoft.KeyVault/managedHsm/keys/import/action",
            Self::KeysRead => "Microsoft.KeyVault/managedHsm/keys/read/action",
            Self::KeysRestore => "Microsoft.KeyVault/managedHsm/keys/restore/action",
            Self::KeysSign => "Microsoft.KeyVault/managedHsm/keys/sign/action",
            Self::KeysUnwrap => "Microsoft.KeyVault/managedHsm/keys/unwrap/action",
            Self::KeysVerify => "Microsoft.KeyVault/managedHsm/keys/verify/action",
            Self::KeysWrap => "Microsoft.KeyVault/managedHsm/keys/wrap/action",
            Self::KeysWrite => "Microsoft.KeyVault/managedHsm/keys/write/action",
            Self::PrincipalsWrite => "Coffer/principals/write",
            Self::Rng => "Microsoft.KeyVault/managedHsm/rng/action",
        }
    }
}

/// The scope a request touches: `/`, `/keys` or `/keys/{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Root,
    Keys,
    Key(String),
}

impl Scope {
    /// The scope string.
    pub fn as_string(&self) -> String {
        match self {
            Self::Root => "/".into(),
            Self::Keys => "/keys".into(),
            Self::Key(n) => format!("/keys/{n}"),
        }
    }
}
