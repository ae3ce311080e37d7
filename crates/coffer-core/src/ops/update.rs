//! UpdateKey: patch semantics on one version (`key_ops`, `enabled`, `nbf`, `exp`, `tags`). Key material and
//! type never change; `exportable` cannot be switched off once on.
use super::{check_tags, check_times};
use crate::key::{KeyName, KeyOperation, KeyVersionRecord};
use crate::ops::KeyProperties;
use crate::ops::read::not_found;
use crate::rbac::{DataAction, Scope};
use crate::{Error, Hsm, Principal};

impl Hsm {
    /// UpdateKey.
    pub async fn update_key(
        &self,
        caller: &Principal,
        name: &str,
        version: Option<&str>,
        props: KeyProperties,
    ) -> Result<KeyVersionRecord, Error> {
        let name = KeyName::parse(name).map_err(|_| not_found(name))?;
        self.authorize(caller, DataAction::KeysWrite, &Scope::Key(name.to_string()))
            .await?;
        let mut rec = self.load_version_for_write(&name, version).await?;
        if let Some(ops) = &props.key_ops {
            rec.key_ops = KeyOperation::parse_list(ops, rec.key_type)?;
        }
        if let Some(e) = props.enabled {
            rec.attributes.enabled = e;
        }
        if let Some(n) = props.not_before {
            rec.attributes.not_before = Some(n);
        }
        if let Some(x) = props.expires {
            rec.attributes.expires = Some(x);
        }
        if let Some(x) = props.exportable {
            if rec.attributes.exportable && !x {
                return Err(Error::BadParameter("exportable cannot be turned off.".into()));
            }
            if x && !rec.attributes.exportable {
                return Err(Error::BadParameter(
                    "exportable can only be set when the key is created.".into(),
                ));
            }
        }
        super::check_kek_not_exportable(&rec.key_ops, rec.attributes.exportable)?;
        if let Some(tags) = props.tags {
            check_tags(&tags)?;
            rec.tags = tags;
        }
        if props.release_policy.is_some() && !rec.attributes.exportable {
            return Err(Error::BadParameter(
                "Non-exportable keys must not have release policy".into(),
            ));
        }
        if let Some(p) = props.release_policy {
            rec.release_policy = Some(crate::release_policy::normalize(&p)?);
        }
        check_times(&rec.attributes)?;
        rec.attributes.updated = self.clock.now();
        self.enforce_key_policies(&rec, true).await?;
        self.store.update_version(&rec).await?;
        crate::audit::context::key_result(&rec);
        Ok(rec)
    }
}
