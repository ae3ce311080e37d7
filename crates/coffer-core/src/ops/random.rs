//! GetRandomBytes: 1 to 128 bytes from the CSPRNG.
use crate::rbac::{DataAction, Scope};
use crate::{Error, Hsm, Principal};

impl Hsm {
    /// GetRandomBytes.
    pub async fn random_bytes(&self, caller: &Principal, count: i64) -> Result<Vec<u8>, Error> {
        self.authorize(caller, DataAction::Rng, &Scope::Root).await?;
        if !(1..=128).contains(&count) {
            return Err(Error::BadParameter(
                "GetRandomBytesRequest: count cannot be greater than 128 or less than 1".into(),
            ));
        }
        let n = usize::try_from(count).map_err(|_| Error::BadParameter("invalid count".into()))?;
        Ok(coffer_crypto::random::bytes(n)?)
    }
}
