//! `GET /healthz`: liveness and storage state for anyone (SPEC §3).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;

pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    let health = state.store.health();
    let status = if health.writable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if health.writable { "ok" } else { "degraded" },
        "storage": {
            "writable": health.writable,
            "problem": health.problem,
        },
        "background": crate::watch::health_json(&state.watch),
    });
    (status, axum::Json(body)).into_response()
}
