//! Local RBAC shapes (administration.json): role definitions and role assignments.
use serde::{Deserialize, Serialize};

/// One permission block.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub not_actions: Vec<String>,
    #[serde(default)]
    pub data_actions: Vec<String>,
    #[serde(default)]
    pub not_data_actions: Vec<String>,
}

/// RoleDefinitionProperties (all optional on input).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinitionProperties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub role_type: Option<String>,
    #[serde(default)]
    pub permissions: Vec<Permission>,
    #[serde(default)]
    pub assignable_scopes: Vec<String>,
}

/// RoleDefinition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleDefinition {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub properties: RoleDefinitionProperties,
}

/// PUT body of a role definition.
#[derive(Debug, Clone, Deserialize)]
pub struct RoleDefinitionCreateParameters {
    pub properties: RoleDefinitionProperties,
}

/// RoleAssignmentPropertiesWithScope.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentProperties {
    pub scope: String,
    pub role_definition_id: String,
    pub principal_id: String,
    /// Coffer extension: Unix seconds after which the assignment no longer grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_on: Option<i64>,
    /// Coffer extension: client address ranges the assignment is limited to.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub allowed_networks: Vec<String>,
    /// Coffer extension: the justification of a just-in-time activation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

/// RoleAssignment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub properties: RoleAssignmentProperties,
}

/// PUT body of a role assignment.
#[derive(Debug, Clone, Deserialize)]
pub struct RoleAssignmentCreateParameters {
    pub properties: RoleAssignmentCreateProperties,
}

/// Its properties.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentCreateProperties {
    pub role_definition_id: String,
    pub principal_id: String,
    /// Coffer extension (optional): Unix seconds after which the assignment no longer grants.
    pub expires_on: Option<i64>,
    /// Coffer extension (optional): client address ranges (CIDR) the assignment is limited to.
    #[serde(default)]
    pub allowed_networks: Vec<String>,
}
