//! `coffer role …`: the `az keyvault role definition|assignment …` commands (Managed HSM local RBAC), printing the
//! service's role definition and assignment objects as `az -o json` does. Roles are given by name ("Managed HSM
//! Crypto User") or id (the GUID or the full `…/roleDefinitions/{guid}` id).
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::remote::{Api, ConnArgs, is_guid, json_arg, new_guid, print_json, seg};

const DEFINITIONS: &str = "/providers/Microsoft.Authorization/roleDefinitions";
const DEFINITION_ID_PREFIX: &str = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/";

#[derive(Args)]
pub struct RoleArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(subcommand)]
    cmd: RoleCommand,
}

#[derive(Subcommand)]
enum RoleCommand {
    /// Role definitions (built-in and custom roles).
    #[command(subcommand)]
    Definition(DefinitionCommand),
    /// Role assignments.
    #[command(subcommand)]
    Assignment(AssignmentCommand),
}

#[derive(Subcommand)]
enum DefinitionCommand {
    /// List the role definitions.
    List {
        /// Only the custom roles.
        #[arg(long)]
        custom_role_only: bool,
    },
    /// Show a role definition.
    Show {
        /// The role's name (GUID) or its role name ("Managed HSM Crypto User").
        #[arg(long, short = 'n', required_unless_present = "role_id")]
        name: Option<String>,
        /// The role's full id (Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{guid}).
        #[arg(long, conflicts_with = "name")]
        role_id: Option<String>,
    },
    /// Create a custom role.
    Create {
        /// The definition: a JSON file or string, az's shape ({"roleName", "description", "actions",
        /// "notActions", "dataActions", "notDataActions", optional "name"}) or the REST one ({"properties": …}).
        #[arg(long)]
        role_definition: String,
    },
    /// Update a custom role (the definition names it by "name" or "id"; fields not given are kept).
    Update {
        /// The definition: a JSON file or string (as for create, with "name" or "id").
        #[arg(long)]
        role_definition: String,
    },
    /// Delete a custom role.
    Delete {
        /// The role's name (GUID) or role name.
        #[arg(long, short = 'n', required_unless_present = "role_id")]
        name: Option<String>,
        /// The role's full id.
        #[arg(long, conflicts_with = "name")]
        role_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum AssignmentCommand {
    /// Assign a role to a principal at a scope.
    Create {
        /// Role name ("Managed HSM Crypto User") or id.
        #[arg(long)]
        role: String,
        /// The principal's (or group's) object id.
        #[arg(long)]
        assignee_object_id: String,
        /// `/` (the whole HSM), `/keys`, or `/keys/NAME`.
        #[arg(long)]
        scope: String,
        /// The assignment's name (a GUID; default: a new one).
        #[arg(long, short = 'n')]
        name: Option<String>,
    },
    /// List role assignments (at the scope and below).
    List {
        #[arg(long, default_value = "/")]
        scope: String,
        /// Only the assignments of this object id.
        #[arg(long)]
        assignee_object_id: Option<String>,
        /// Only the assignments of this role (name or id).
        #[arg(long)]
        role: Option<String>,
    },
    /// Delete role assignments: one by --name (or --ids), or all those matching --role / --assignee-object-id /
    /// --scope.
    Delete {
        /// The assignment's name (GUID).
        #[arg(long, short = 'n', conflicts_with_all = ["ids", "role", "assignee_object_id"])]
        name: Option<String>,
        /// Full assignment ids (/providers/Microsoft.Authorization/roleAssignments/{name}).
        #[arg(long, num_args = 1.., conflicts_with_all = ["role", "assignee_object_id"])]
        ids: Vec<String>,
        /// Role name or id.
        #[arg(long)]
        role: Option<String>,
        /// The principal's (or group's) object id.
        #[arg(long)]
        assignee_object_id: Option<String>,
        /// The scope (with --name: where to look, default `/`; otherwise only assignments exactly at this scope).
        #[arg(long)]
        scope: Option<String>,
    },
}

/// A scope as the service spells it: `/`, `/keys` or `/keys/NAME`.
fn normalize_scope(scope: &str) -> String {
    let trimmed = scope.trim().trim_matches('/');
    format!("/{trimmed}")
}

/// The `/{scope}/providers/Microsoft.Authorization/roleAssignments` path.
fn assignments_path(scope: &str) -> String {
    let parts: Vec<String> = normalize_scope(scope)
        .split('/')
        .filter(|p| !p.is_empty())
        .map(seg)
        .collect();
    let prefix = if parts.is_empty() {
        String::new()
    } else {
        format!("/{}", parts.join("/"))
    };
    format!("{prefix}/providers/Microsoft.Authorization/roleAssignments")
}

/// The GUID at the end of a role definition id (or the GUID itself).
fn role_guid(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// The full role definition id of a role given by name, GUID or id.
async fn resolve_role(api: &mut Api, role: &str) -> anyhow::Result<String> {
    if role.contains("/roleDefinitions/") || role.contains("/roledefinitions/") {
        return Ok(role.to_string());
    }
    if is_guid(role) {
        return Ok(format!("{DEFINITION_ID_PREFIX}{role}"));
    }
    let found = find_by_role_name(api, role).await?;
    found
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .context("the role definition has no id")
}

async fn find_by_role_name(api: &mut Api, role_name: &str) -> anyhow::Result<Value> {
    // OData string literal: a quote is written twice.
    let filter = format!("roleName eq '{}'", role_name.replace('\'', "''"));
    let mut list = api.list(DEFINITIONS, &[("$filter", &filter)]).await?;
    match list.len() {
        0 => bail!("no role definition is named '{role_name}'"),
        1 => Ok(list.remove(0)),
        n => bail!("{n} role definitions are named '{role_name}': give the role's id"),
    }
}

/// The GUID name of a definition given by --name (GUID or role name) or --role-id.
async fn definition_name(api: &mut Api, name: Option<String>, role_id: Option<String>) -> anyhow::Result<String> {
    match (name, role_id) {
        (_, Some(id)) => Ok(role_guid(&id).to_string()),
        (Some(n), None) if is_guid(&n) => Ok(n),
        (Some(n), None) => {
            let d = find_by_role_name(api, &n).await?;
            d.get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .context("the role definition has no name")
        }
        (None, None) => bail!("give --name or --role-id"),
    }
}

const PERMISSION_FIELDS: [&str; 4] = ["actions", "notActions", "dataActions", "notDataActions"];

/// The GUID a definition given as JSON names by "name" or "id".
fn name_in(input: &Value) -> Option<String> {
    input
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| input.get("id").and_then(Value::as_str).map(role_guid))
        .map(str::to_string)
}

/// The (name, REST body) of a definition given in az's flat shape or the REST shape; `existing` (for update) fills
/// in what the input leaves out.
fn definition_body(input: &Value, existing: Option<&Value>) -> anyhow::Result<(Option<String>, Value)> {
    let obj = input.as_object().context("the role definition must be a JSON object")?;
    let name = name_in(input);
    let given: &Map<String, Value> = match obj.get("properties") {
        Some(Value::Object(p)) => p,
        Some(_) => bail!("'properties' must be an object"),
        None => obj,
    };
    let mut props = existing
        .and_then(|e| e.get("properties"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for k in ["roleName", "description", "assignableScopes", "permissions"] {
        if let Some(v) = given.get(k) {
            props.insert(k.into(), v.clone());
        }
    }
    if PERMISSION_FIELDS.iter().any(|k| given.contains_key(*k)) {
        if given.contains_key("permissions") {
            bail!("give either 'permissions' or actions/notActions/dataActions/notDataActions, not both");
        }
        let mut p = Map::new();
        for k in PERMISSION_FIELDS {
            p.insert(k.into(), given.get(k).cloned().unwrap_or_else(|| json!([])));
        }
        props.insert("permissions".into(), json!([p]));
    }
    props.insert("type".into(), json!("CustomRole"));
    props.entry("assignableScopes").or_insert_with(|| json!(["/"]));
    if props.get("roleName").and_then(Value::as_str).is_none_or(str::is_empty) {
        bail!("the role definition needs a roleName");
    }
    Ok((name, json!({ "properties": props })))
}

/// Runs a command.
pub async fn run(args: RoleArgs) -> anyhow::Result<()> {
    let mut api = Api::connect(&args.conn)?;
    let value = match args.cmd {
        RoleCommand::Definition(cmd) => definition(&mut api, cmd).await?,
        RoleCommand::Assignment(cmd) => assignment(&mut api, cmd).await?,
    };
    print_json(&value)
}

async fn definition(api: &mut Api, cmd: DefinitionCommand) -> anyhow::Result<Value> {
    Ok(match cmd {
        DefinitionCommand::List { custom_role_only } => {
            let mut list = api.list(DEFINITIONS, &[]).await?;
            if custom_role_only {
                list.retain(|d| d["properties"]["type"] == "CustomRole");
            }
            Value::Array(list)
        }
        DefinitionCommand::Show { name, role_id } => {
            let n = definition_name(api, name, role_id).await?;
            api.send(Method::GET, &format!("{DEFINITIONS}/{}", seg(&n)), &[], None)
                .await?
        }
        DefinitionCommand::Create { role_definition } => {
            let (name, body) = definition_body(&json_arg(&role_definition)?, None)?;
            let name = match name {
                Some(n) => n,
                None => new_guid()?,
            };
            api.send(Method::PUT, &format!("{DEFINITIONS}/{}", seg(&name)), &[], Some(&body))
                .await?
        }
        DefinitionCommand::Update { role_definition } => {
            let input = json_arg(&role_definition)?;
            let name = name_in(&input).context("the role definition to update needs its \"name\" (GUID) or \"id\"")?;
            let path = format!("{DEFINITIONS}/{}", seg(&name));
            let existing = api.send(Method::GET, &path, &[], None).await?;
            let (_, body) = definition_body(&input, Some(&existing))?;
            api.send(Method::PUT, &path, &[], Some(&body)).await?
        }
        DefinitionCommand::Delete { name, role_id } => {
            let n = definition_name(api, name, role_id).await?;
            api.send(Method::DELETE, &format!("{DEFINITIONS}/{}", seg(&n)), &[], None)
                .await?
        }
    })
}

async fn assignment(api: &mut Api, cmd: AssignmentCommand) -> anyhow::Result<Value> {
    Ok(match cmd {
        AssignmentCommand::Create {
            role,
            assignee_object_id,
            scope,
            name,
        } => {
            let role_id = resolve_role(api, &role).await?;
            let name = match name {
                Some(n) => n,
                None => new_guid()?,
            };
            let body = json!({"properties": {"roleDefinitionId": role_id, "principalId": assignee_object_id}});
            let path = format!("{}/{}", assignments_path(&scope), seg(&name));
            api.send(Method::PUT, &path, &[], Some(&body)).await?
        }
        AssignmentCommand::List {
            scope,
            assignee_object_id,
            role,
        } => Value::Array(matching(api, &scope, assignee_object_id.as_deref(), role.as_deref()).await?),
        AssignmentCommand::Delete {
            name,
            ids,
            role,
            assignee_object_id,
            scope,
        } => {
            let root = scope.clone().unwrap_or_else(|| "/".into());
            let mut names: Vec<String> = ids.iter().map(|i| role_guid(i).to_string()).collect();
            names.extend(name);
            if !names.is_empty() {
                let mut deleted = Vec::new();
                for n in &names {
                    let path = format!("{}/{}", assignments_path(&root), seg(n));
                    deleted.push(api.send(Method::DELETE, &path, &[], None).await?);
                }
                return Ok(if deleted.len() == 1 {
                    deleted.remove(0)
                } else {
                    Value::Array(deleted)
                });
            }
            if role.is_none() && assignee_object_id.is_none() && scope.is_none() {
                bail!("give --name, --ids, or at least one of --role, --assignee-object-id, --scope");
            }
            let mut found = matching(api, "/", assignee_object_id.as_deref(), role.as_deref()).await?;
            if let Some(s) = &scope {
                let s = normalize_scope(s);
                found.retain(|a| {
                    a["properties"]["scope"]
                        .as_str()
                        .is_some_and(|x| normalize_scope(x).eq_ignore_ascii_case(&s))
                });
            }
            if found.is_empty() {
                bail!("no matched assignments were found to delete");
            }
            let mut deleted = Vec::new();
            for a in &found {
                let n = a["name"].as_str().context("a role assignment without a name")?;
                let path = format!("{}/{}", assignments_path("/"), seg(n));
                deleted.push(api.send(Method::DELETE, &path, &[], None).await?);
            }
            Value::Array(deleted)
        }
    })
}

/// The assignments at `scope` and below, of a principal and/or a role.
async fn matching(
    api: &mut Api,
    scope: &str,
    principal: Option<&str>,
    role: Option<&str>,
) -> anyhow::Result<Vec<Value>> {
    let filter = principal.map(|p| format!("principalId eq '{p}'"));
    let query: Vec<(&str, &str)> = filter.as_deref().map(|f| ("$filter", f)).into_iter().collect();
    let mut list = api.list(&assignments_path(scope), &query).await?;
    if let Some(r) = role {
        let id = resolve_role(api, r).await?;
        let want = role_guid(&id).to_ascii_lowercase();
        list.retain(|a| {
            a["properties"]["roleDefinitionId"]
                .as_str()
                .is_some_and(|x| role_guid(x).eq_ignore_ascii_case(&want))
        });
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_paths() {
        assert_eq!(
            assignments_path("/"),
            "/providers/Microsoft.Authorization/roleAssignments"
        );
        assert_eq!(
            assignments_path("keys/"),
            "/keys/providers/Microsoft.Authorization/roleAssignments"
        );
        assert_eq!(
            assignments_path("/keys/k1"),
            "/keys/k1/providers/Microsoft.Authorization/roleAssignments"
        );
        assert_eq!(normalize_scope("/keys/"), "/keys");
        assert_eq!(normalize_scope("/"), "/");
        assert_eq!(
            role_guid("Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/abc"),
            "abc"
        );
    }

    #[test]
    fn az_shaped_definitions_become_rest_bodies() {
        let (name, body) = definition_body(
            &json!({"roleName": "Signer", "description": "signs", "dataActions": ["Microsoft.KeyVault/managedHsm/keys/sign/action"]}),
            None,
        )
        .unwrap();
        assert_eq!(name, None);
        assert_eq!(
            body,
            json!({"properties": {"roleName": "Signer", "description": "signs", "type": "CustomRole",
                "assignableScopes": ["/"],
                "permissions": [{"actions": [], "notActions": [], "notDataActions": [],
                    "dataActions": ["Microsoft.KeyVault/managedHsm/keys/sign/action"]}]}})
        );
        let (name, body) = definition_body(
            &json!({"id": "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/g1",
                "description": "new"}),
            Some(&json!({"properties": {"roleName": "Signer", "description": "old",
                "permissions": [{"dataActions": ["x"]}], "assignableScopes": ["/"], "type": "CustomRole"}})),
        )
        .unwrap();
        assert_eq!(name.as_deref(), Some("g1"));
        assert_eq!(body["properties"]["description"], "new");
        assert_eq!(body["properties"]["roleName"], "Signer");
        assert_eq!(body["properties"]["permissions"][0]["dataActions"][0], "x");
        assert!(definition_body(&json!({"description": "no name"}), None).is_err());
        assert!(definition_body(&json!({"properties": {"roleName": "R", "permissions": []}}), None).is_ok());
    }
}
