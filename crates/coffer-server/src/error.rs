//! Errors on the wire. `ApiError` is the Azure body `{"error":{"code","message"}}` with its status. Core errors
//! map in one exhaustive match; 5xx bodies are generic and their detail goes only to the log.
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_api::ErrorBody;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_parameter(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadParameter", message)
    }
    pub fn not_found_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The requested resource or operation does not exist.",
        )
    }
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The HTTP method is not allowed on this resource.",
        )
    }
    fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "The server encountered an internal error.",
        )
    }
}

impl From<coffer_core::Error> for ApiError {
    fn from(e: coffer_core::Error) -> Self {
        use coffer_core::Error as E;
        match e {
            E::BadParameter(m) => Self::bad_parameter(m),
            E::Conflict(m) => Self::new(StatusCode::CONFLICT, "Conflict", m),
            E::DecryptFailed => Self::bad_parameter(E::DecryptFailed.to_string()),
            E::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "Forbidden", m),
            E::PolicyDenied(m) => Self::new(StatusCode::FORBIDDEN, "ForbiddenByPolicy", m),
            E::KeyNotFound(m) => Self::new(StatusCode::NOT_FOUND, "KeyNotFound", m),
            E::NotActivated(m) => Self::new(StatusCode::CONFLICT, "HsmNotActivated", m),
            E::RestoreInProgress(m) => Self::new(StatusCode::CONFLICT, "RestoreInProgress", m),
            E::NotFound { code, message } => Self::new(StatusCode::NOT_FOUND, code, message),
            E::Unauthenticated => Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized"),
            E::InvalidClient(m) => Self::new(StatusCode::UNAUTHORIZED, "invalid_client", m),
            E::InvalidTokenRequest { code, description } => Self::new(StatusCode::BAD_REQUEST, code, description),
            e @ (E::Storage(_) | E::Crypto(_) | E::Corrupt(_)) => {
                let detail = match std::error::Error::source(&e) {
                    Some(src) => format!("{e}: {src}"),
                    None => e.to_string(),
                };
                Self::internal(&detail)
            }
        }
    }
}

/// The error message of an error response, kept as a response extension for the audit record's
/// `resultDescription`.
#[derive(Debug, Clone)]
pub struct ErrorMessage(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = ErrorMessage(self.message.clone());
        let body = ErrorBody::new(self.code, self.message);
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.extensions_mut().insert(message);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        resp
    }
}
