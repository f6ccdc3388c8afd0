//! The router: every route of SPEC §3 and the admin routes, their fallbacks, body limit and
//! request timeout. Handlers live in their own modules (`ingest`, `events`, `search`, `export`,
//! `tlog`, `admin`, `health`); shared helpers in `handlers`.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::AppState;
use crate::error::ApiError;
use crate::events::{checkpoint, consistency_proof, event_by_seq, inclusion_proof, public_key};
use crate::health::healthz;
use crate::ingest::ingest;

pub fn router(state: AppState) -> Router {
    let body_limit = state.config.max_body_bytes;
    let timeout = state.config.request_timeout;
    Router::new()
        .route(
            "/api/v1/events",
            post(ingest).get(crate::search::search_events),
        )
        .route("/api/v1/facets", get(crate::search::facets))
        .route("/api/v1/histogram", get(crate::search::histogram))
        .route("/api/v1/stream", get(crate::search::stream))
        .route("/api/v1/export", get(crate::export::export))
        .route("/api/v1/tlog/checkpoint", get(checkpoint))
        .route("/api/v1/tlog/tile/{*path}", get(crate::tlog::tile))
        .route("/api/v1/events/{seq}", get(event_by_seq))
        .route("/api/v1/checkpoint", get(checkpoint))
        .route("/api/v1/public-key", get(public_key))
        .route("/api/v1/proof/inclusion", get(inclusion_proof))
        .route("/api/v1/proof/consistency", get(consistency_proof))
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .route("/healthz", get(healthz))
        .merge(crate::admin::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // The ingest handler reads the body itself and answers 413 as JSON; this limit is the
        // backstop for every other route.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}
