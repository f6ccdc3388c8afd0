//! Recording the server's own use in the tenant's trail (sign-ins, searches, exports,
//! verifications): the record is durable before the answer leaves, so nobody reads the log
//! without leaving a trace. Administrative changes record through the store instead, in the
//! change's own transaction.

use auditlog_core::tenant::TenantId;
use auditlog_store::{StoreError, TrailEvent, prepare_event};

use crate::AppState;
use crate::error::ApiError;

/// Append one trail record and wait until it is durable.
pub async fn record(
    state: &AppState,
    tenant: &TenantId,
    event: TrailEvent,
) -> Result<(), ApiError> {
    let now = auditlog_store::now();
    let prepared = prepare_event(event.to_value(now), now, event.actor.ip).map_err(|e| {
        ApiError::internal(format!(
            "a trail record is invalid ({}): {}",
            e.field, e.message
        ))
    })?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    state.store.append(
        tenant,
        vec![prepared],
        Box::new(move |result| {
            let _ = tx.send(result);
        }),
    );
    rx.await
        .map_err(|_| ApiError::from(StoreError::Unavailable("writer stopped".into())))??;
    state.search.notify(tenant);
    state.appended.send_modify(|count| *count += 1);
    Ok(())
}

/// Text as a trail record keeps it: at most `max` characters.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(max).collect();
        clipped.push('…');
        clipped
    }
}

/// Record a read of the log by `caller` (a search, an export, a stream, one event).
pub async fn record_read(
    state: &AppState,
    caller: &crate::auth::Caller,
    action: &'static str,
    table: &'static str,
    key: Option<String>,
    message: String,
    context: Vec<(&str, auditlog_core::json::Value)>,
) -> Result<(), ApiError> {
    let mut event = TrailEvent::new(&caller.actor(), action, table).message(message);
    if let Some(key) = key {
        event = event.key(key);
    }
    for (name, value) in context {
        event = event.context(name, value);
    }
    record(state, &caller.tenant, event).await
}
