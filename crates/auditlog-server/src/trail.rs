//! Recording the server's own use in the tenant's trail (sign-ins, searches, exports,
//! verifications): the record is durable (in the store's outbox, in a committed and synced
//! transaction) before the answer leaves, so nobody reads the log without leaving a trace. The
//! writer moves it into the tenant's trail log at once. Administrative changes record through
//! the store, in the change's own transaction.

use auditlog_core::tenant::TenantId;
use auditlog_store::TrailEvent;

use crate::AppState;
use crate::error::ApiError;

/// Queue one trail record durably.
pub async fn record(
    state: &AppState,
    tenant: &TenantId,
    event: TrailEvent,
) -> Result<(), ApiError> {
    let store = state.store.clone();
    let tenant = tenant.clone();
    crate::handlers::blocking(move || Ok(store.record(&tenant, &event)?)).await
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

/// Record a read of the log by `caller` (a search, an export).
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
