//! The built-in token service's HTTP surface (the Entra ID v2 subset that azure-identity and @azure/identity
//! use): OIDC discovery, the token endpoint (client-credentials grant; v2.0 and v1 paths, `scope` or v1's
//! `resource`) and the JWKS. Also the AD FS alias (`/adfs/...`), which lets unmodified code that cannot disable
//! instance discovery authenticate.
use axum::http::StatusCode;
use axum::response::Response;
use coffer_api::token::{OAuthError, OpenIdConfiguration, TokenResponse};
use coffer_core::identity::TokenRequest;
use coffer_core::operation::TokenOp;
use coffer_crypto::SecretBytes;

use super::{json_response, ok_json};
use crate::error::ApiError;
use crate::state::AppState;

pub(super) async fn handle(app: &AppState, op: TokenOp, body: &[u8]) -> Result<Response, ApiError> {
    match op {
        TokenOp::OpenIdConfiguration { adfs } => Ok(ok_json(&discovery(app, adfs))),
        TokenOp::Keys => Ok(ok_json(&app.hsm.jwks())),
        TokenOp::Issue { adfs, v2 } => {
            // The endpoint as the client addressed it: a client assertion's `aud` must name it.
            let first = if adfs {
                "adfs".to_string()
            } else {
                app.hsm.tenant_id().to_string()
            };
            let version = if v2 { "/v2.0" } else { "" };
            let seen = format!("{}/{first}/oauth2{version}/token", app.public_url);
            Ok(token(app, body, &seen).await)
        }
        TokenOp::MethodNotAllowed { allow } => Ok(super::method_not_allowed(allow)),
        TokenOp::NotFound => Err(ApiError::not_found_route()),
    }
}

fn discovery(app: &AppState, adfs: bool) -> OpenIdConfiguration {
    let base = &app.public_url;
    let tenant = app.hsm.tenant_id();
    let (token_endpoint, authorization_endpoint) = if adfs {
        (
            format!("{base}/adfs/oauth2/token"),
            format!("{base}/adfs/oauth2/authorize"),
        )
    } else {
        (
            app.hsm.token_endpoint(),
            format!("{base}/{tenant}/oauth2/v2.0/authorize"),
        )
    };
    OpenIdConfiguration {
        issuer: app.hsm.issuer().to_string(),
        token_endpoint,
        authorization_endpoint,
        jwks_uri: format!("{base}/{tenant}/discovery/v2.0/keys"),
        token_endpoint_auth_methods_supported: vec!["client_secret_post".into(), "private_key_jwt".into()],
        grant_types_supported: vec!["client_credentials".into()],
        id_token_signing_alg_values_supported: vec!["ES256".into()],
        response_types_supported: vec!["token".into()],
        subject_types_supported: vec!["pairwise".into()],
        scopes_supported: vec![
            format!("{}/.default", app.resource),
            format!("{}/.default", app.hsm.graph_resource()),
        ],
        tenant_region_scope: None,
    }
}

fn oauth_error(status: StatusCode, error: &str, description: String) -> Response {
    json_response(
        status,
        &OAuthError {
            error: error.to_string(),
            error_description: description,
        },
    )
}

async fn token(app: &AppState, body: &[u8], endpoint_seen: &str) -> Response {
    let mut req = TokenRequest::default();
    let mut resource = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "grant_type" => req.grant_type = Some(v.into_owned()),
            "client_id" => req.client_id = Some(v.into_owned()),
            "client_secret" => req.client_secret = Some(SecretBytes::new(v.into_owned().into_bytes())),
            "client_assertion_type" => req.client_assertion_type = Some(v.into_owned()),
            "client_assertion" => req.client_assertion = Some(v.into_owned()),
            "scope" => req.scope = Some(v.into_owned()),
            // The v1 endpoint's form of the scope: `resource=<uri>` means `<uri>/.default`.
            "resource" => resource = Some(v.into_owned()),
            _ => {}
        }
    }
    if req.scope.is_none()
        && let Some(r) = resource
    {
        req.scope = Some(format!("{}/.default", r.trim_end_matches('/')));
    }
    match app.hsm.issue_token(req, endpoint_seen).await {
        Ok(t) => ok_json(&TokenResponse {
            token_type: "Bearer".into(),
            expires_in: t.expires_in,
            ext_expires_in: t.expires_in,
            access_token: t.access_token,
        }),
        Err(coffer_core::Error::InvalidClient(m)) => oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", m),
        Err(coffer_core::Error::InvalidTokenRequest { code, description }) => {
            oauth_error(StatusCode::BAD_REQUEST, code, description)
        }
        Err(other) => {
            let e = ApiError::from(other);
            oauth_error(e.status, "server_error", e.message)
        }
    }
}
