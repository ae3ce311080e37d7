//! Account settings (`GET /settings`, `GET`/`PATCH /settings/{name}`): string values of type boolean.
//! `AllowKeyManagementOperationsThroughARM` (stored; Coffer has no ARM plane) and `PurgeProtection` (switches purge
//! protection on; it can never be switched off). No dataAction exists for settings: reading needs
//! roleDefinitions/read, changing needs roleDefinitions/write (the HSM's administrators).
use crate::rbac::{DataAction, Scope};
use crate::{Error, Hsm, Principal};

/// The settings and their defaults.
pub const KNOWN: &[(&str, &str)] = &[
    ("AllowKeyManagementOperationsThroughARM", "false"),
    ("PurgeProtection", "false"),
];

impl Hsm {
    /// GetSettings.
    pub async fn settings(&self, caller: &Principal) -> Result<Vec<(String, String)>, Error> {
        self.authorize(caller, DataAction::RoleDefinitionsRead, &Scope::Root)
            .await?;
        let stored = self.store.settings().await?;
        Ok(KNOWN
            .iter()
            .map(|(name, default)| {
                let value = if *name == "PurgeProtection" {
                    self.purge_protection().to_string()
                } else {
                    stored
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or_else(|| (*default).to_string(), |(_, v)| v.clone())
                };
                ((*name).to_string(), value)
            })
            .collect())
    }

    /// GetSetting.
    pub async fn setting(&self, caller: &Principal, name: &str) -> Result<(String, String), Error> {
        self.settings(caller)
            .await?
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::NotFound {
                code: "SettingNotFound",
                message: format!("The setting '{name}' does not exist."),
            })
    }

    /// UpdateSetting.
    pub async fn update_setting(&self, caller: &Principal, name: &str, value: &str) -> Result<(String, String), Error> {
        self.authorize(caller, DataAction::RoleDefinitionsWrite, &Scope::Root)
            .await?;
        let (canonical, _) = KNOWN
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::NotFound {
                code: "SettingNotFound",
                message: format!("The setting '{name}' does not exist."),
            })?;
        let v = value.to_ascii_lowercase();
        if v != "true" && v != "false" {
            return Err(Error::BadParameter(format!(
                "The setting '{canonical}' takes 'true' or 'false'."
            )));
        }
        if *canonical == "PurgeProtection" {
            if v == "false" && self.purge_protection() {
                return Err(Error::BadParameter(
                    "Purge protection cannot be switched off once enabled.".into(),
                ));
            }
            if v == "true" {
                self.store.enable_purge_protection().await?;
            }
        }
        self.store.put_setting(canonical, &v, self.clock.now()).await?;
        tracing::info!(setting = canonical, value = %v, "setting changed");
        Ok(((*canonical).to_string(), v))
    }
}
