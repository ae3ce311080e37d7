//! Role definitions: the built-in roles (read-only) and up to 50 custom roles (GUID names that differ from every
//! built-in GUID, dataActions validated). A custom role that is still assigned cannot be deleted.
use crate::rbac::{DataAction, Permission, RoleDefinition, RoleType, Scope, builtin, validate_pattern};
use crate::{Error, Hsm, Principal};

/// Most custom roles an instance may hold.
pub const MAX_CUSTOM_ROLES: usize = 50;

/// A create-or-update request.
#[derive(Debug, Clone, Default)]
pub struct RoleDefinitionRequest {
    pub role_name: Option<String>,
    pub description: Option<String>,
    pub role_type: Option<String>,
    pub permissions: Vec<Permission>,
    pub assignable_scopes: Vec<String>,
}

fn not_found(id: &str) -> Error {
    Error::NotFound {
        code: "RoleDefinitionNotFound",
        message: format!("Role definition '{id}' was not found."),
    }
}

/// Checks that a role definition or assignment name is a GUID (8-4-4-4-12 hex).
pub fn check_guid(kind: &str, s: &str) -> Result<String, Error> {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    let ok = parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(Error::BadParameter(format!("The {kind} name '{s}' must be a GUID.")))
    }
}

impl Hsm {
    /// RoleDefinitions_List (optionally `roleName eq '…'`).
    pub async fn list_role_definitions(
        &self,
        caller: &Principal,
        scope: &Scope,
        role_name: Option<&str>,
    ) -> Result<Vec<RoleDefinition>, Error> {
        self.authorize(caller, DataAction::RoleDefinitionsRead, scope).await?;
        let mut all = builtin::all();
        all.extend(self.store.custom_roles().await?);
        if let Some(n) = role_name {
            all.retain(|d| d.role_name.eq_ignore_ascii_case(n));
        }
        Ok(all)
    }

    /// RoleDefinitions_Get.
    pub async fn get_role_definition(
        &self,
        caller: &Principal,
        scope: &Scope,
        id: &str,
    ) -> Result<RoleDefinition, Error> {
        self.authorize(caller, DataAction::RoleDefinitionsRead, scope).await?;
        if let Some(d) = builtin::by_id(id) {
            return Ok(d);
        }
        self.store
            .custom_role(&id.to_ascii_lowercase())
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// RoleDefinitions_CreateOrUpdate: creates or replaces a custom role.
    pub async fn put_role_definition(
        &self,
        caller: &Principal,
        scope: &Scope,
        id: &str,
        req: RoleDefinitionRequest,
    ) -> Result<RoleDefinition, Error> {
        self.authorize(caller, DataAction::RoleDefinitionsWrite, scope).await?;
        let id = check_guid("role definition", id)?;
        if builtin::by_id(&id).is_some() {
            return Err(Error::BadParameter(
                "Cannot re-use the name/GUID matching that of a built-in role. Please use a unique role ID.".into(),
            ));
        }
        if let Some(t) = &req.role_type
            && !t.eq_ignore_ascii_case("CustomRole")
        {
            return Err(Error::BadParameter(format!(
                "The role type '{t}' cannot be created; use CustomRole."
            )));
        }
        for p in &req.permissions {
            for d in p.data_actions.iter().chain(&p.not_data_actions) {
                validate_pattern(d)?;
            }
        }
        let assignable_scopes = if req.assignable_scopes.is_empty() {
            vec!["/".to_string()]
        } else {
            req.assignable_scopes
        };
        for s in &assignable_scopes {
            match Scope::parse(s)? {
                Scope::Root | Scope::Keys => {}
                Scope::Key(_) => {
                    return Err(Error::BadParameter(
                        "Custom roles are assignable only at '/' or '/keys'.".into(),
                    ));
                }
            }
        }
        let role_name = req
            .role_name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| id.clone());
        if role_name.chars().count() > 512 {
            return Err(Error::BadParameter("roleName may have at most 512 characters.".into()));
        }
        if builtin::all()
            .iter()
            .any(|b| b.role_name.eq_ignore_ascii_case(&role_name))
        {
            return Err(Error::BadParameter(format!(
                "The role name '{role_name}' is the name of a built-in role."
            )));
        }
        let def = RoleDefinition {
            id,
            role_name,
            description: req.description.unwrap_or_default(),
            role_type: RoleType::Custom,
            permissions: req.permissions,
            assignable_scopes,
        };
        // Whoever holds the role gets what it grants wherever it is (or may be) assigned: at its new assignable
        // scopes, and at the scopes of its existing assignments and eligibilities (which a narrower definition does
        // not remove). The writer must hold all of it there.
        let mut scopes: Vec<Scope> = def
            .assignable_scopes
            .iter()
            .filter_map(|s| Scope::parse(s).ok())
            .collect();
        let view = self.view();
        scopes.extend(
            view.assignments
                .values()
                .flat_map(|g| g.broad.iter().chain(g.by_key.values().flatten()))
                .filter(|a| a.role_definition_id.eq_ignore_ascii_case(&def.id))
                .map(|a| a.scope.clone()),
        );
        scopes.extend(
            self.store
                .list_eligible()
                .await?
                .into_iter()
                .filter(|e| e.role_definition_id.eq_ignore_ascii_case(&def.id))
                .map(|e| e.scope),
        );
        let conferred: Vec<_> = scopes
            .iter()
            .flat_map(|s| crate::rbac::escalation::conferred_by_role(&def, s, None))
            .collect();
        self.check_no_escalation(caller, &conferred, "write this role definition")?;
        self.store
            .put_custom_role(&def, self.clock.now(), MAX_CUSTOM_ROLES)
            .await?;
        tracing::info!(role = %def.id, name = %def.role_name, "custom role written");
        Ok(def)
    }

    /// RoleDefinitions_Delete: deletes a custom role and returns it.
    pub async fn delete_role_definition(
        &self,
        caller: &Principal,
        scope: &Scope,
        id: &str,
    ) -> Result<RoleDefinition, Error> {
        self.authorize(caller, DataAction::RoleDefinitionsDelete, scope).await?;
        if builtin::by_id(id).is_some() {
            return Err(Error::BadParameter("Built-in roles cannot be deleted.".into()));
        }
        let def = self
            .store
            .delete_custom_role(&id.to_ascii_lowercase())
            .await?
            .ok_or_else(|| not_found(id))?;
        tracing::info!(role = %def.id, "custom role deleted");
        Ok(def)
    }
}
