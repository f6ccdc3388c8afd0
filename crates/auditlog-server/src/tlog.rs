//! The C2SP `tlog-tiles` read endpoints of the caller's tenant log, under `/api/v1/tlog/`, so
//! standard transparency-log tooling can audit it: `checkpoint`, hash tiles
//! `tile/<L>/<N>[.p/<W>]` and entry bundles `tile/entries/<N>[.p/<W>]` (each entry, the
//! canonical event, with a big-endian uint16 length; an event longer than 65,535 bytes
//! cannot be put in a bundle, which is then refused).
//!
//! Tiles are served from the stored tiles: the first W hashes of a tile never change as the
//! tree grows, so a partial tile of width W is the stored tile cut to W hashes.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::Permission;
use auditlog_ledger::tiles::{TILE_WIDTH, TileId};

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::handlers::blocking;

const HASH_LEN: usize = 32;

fn octets(bytes: Vec<u8>, full: bool) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    // Full tiles never change; partial ones are superseded as the tree grows.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if full {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    response
}

pub async fn tile(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    caller.require(Permission::Read)?;
    let Path(rest) = path.map_err(|e| ApiError::bad_request("invalid_parameter", e.body_text()))?;
    let entries = rest.starts_with("entries/");
    let hash_path = if entries {
        format!("tile/0/{}", &rest["entries/".len()..])
    } else {
        format!("tile/{rest}")
    };
    let id = TileId::parse_path(&hash_path)
        .map_err(|e| ApiError::not_found(format!("not a tile path: {e}")))?;
    let tenant = caller.tenant.clone();
    let store = state.store.clone();
    let width = usize::from(id.width);
    let full = id.is_full();
    if entries {
        let body = blocking(move || {
            let first = id.index * TILE_WIDTH + 1;
            let events = store.events_from(&tenant, first, width)?;
            if events.len() < width {
                return Err(ApiError::not_found("the log has no such entry bundle yet"));
            }
            let mut body = Vec::with_capacity(events.iter().map(|e| e.canonical.len() + 2).sum());
            for event in events {
                let len = u16::try_from(event.canonical.len()).map_err(|_| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "entry_too_large",
                        format!(
                            "event {} is longer than an entry bundle can hold (65,535 bytes)",
                            event.seq
                        ),
                    )
                })?;
                body.extend_from_slice(&len.to_be_bytes());
                body.extend_from_slice(&event.canonical);
            }
            Ok(body)
        })
        .await?;
        return Ok(octets(body, full));
    }
    let body = blocking(move || {
        let stored = store
            .tile(&tenant, id.level, id.index)?
            .ok_or_else(|| ApiError::not_found("the tree has no such tile"))?;
        if stored.len() < width * HASH_LEN {
            return Err(ApiError::not_found("the tree has no such tile yet"));
        }
        Ok(stored[..width * HASH_LEN].to_vec())
    })
    .await?;
    Ok(octets(body, full))
}
