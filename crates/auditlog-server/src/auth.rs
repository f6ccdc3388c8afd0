//! Bearer-token authentication. The tenant of a request is the tenant of its token, and
//! nothing else: no header, path or parameter can name another.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use auditlog_store::{Principal, Scope};

use crate::AppState;
use crate::error::ApiError;

/// The authenticated caller.
pub struct Caller(pub Principal);

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.0.scopes.has(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(scope.as_str()))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(ApiError::unauthorized)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?
            .to_owned();
        let store = state.store.clone();
        let principal = tokio::task::spawn_blocking(move || store.authenticate(&token))
            .await
            .map_err(ApiError::internal)??;
        principal.map(Caller).ok_or_else(ApiError::unauthorized)
    }
}
