//! Bearer-token authentication against the metadata store.

use axum::http::{HeaderMap, header};
use seclog_meta::TokenInfo;

use crate::AppState;
use crate::error::ApiError;

/// The token presented in `Authorization: Bearer <token>`, looked up by hash.
pub(crate) fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<TokenInfo, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(ApiError::unauthorized)?;
    let (scheme, token) = value.split_once(' ').ok_or_else(ApiError::unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized());
    }
    match state.meta.authenticate(token.trim()) {
        Ok(Some(info)) => Ok(info),
        Ok(None) => Err(ApiError::unauthorized()),
        Err(error) => {
            tracing::error!(error = %error, "token lookup failed");
            Err(ApiError::internal("authentication is unavailable"))
        }
    }
}
