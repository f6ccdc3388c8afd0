//! The search side of auditlog (SPEC §3 `GET /api/v1/events`, facets, histogram; §4 the
//! query language): a tantivy index per tenant, derived from the log and rebuildable from it.
//!
//! - [`schema`](crate::schema) — the fields and the document of one stored event;
//! - `translate` — query AST → tantivy query, clause by clause as
//!   [`auditlog_query::matches`] defines them;
//! - `exec` — the sorted keyset page, counts, facets and histogram buckets;
//! - [`engine`](SearchEngine) — per-tenant indexes, their indexer threads and
//!   read-your-writes.
//!
//! Architecture invariant: the log is the source of truth. Nothing here is needed to verify or
//! serve an event; deleting the index directory loses nothing (it is rebuilt from the log).
//! tantivy's types stay inside this crate.

mod engine;
mod exec;
mod schema;
mod sort;
mod translate;

pub use engine::{
    Facets, Histogram, MAX_BUCKETS, MAX_FACET_LIMIT, MAX_LIMIT, MAX_PINNED_LIMIT, SearchEngine,
    SearchError, SearchOptions, SearchPage, SearchRequest,
};
pub use exec::{FacetField, SeqSet};
pub use sort::{Cursor, CursorError, SortField, SortKey, SortOrder};
pub use translate::MAX_EXPANDED_TERMS;
