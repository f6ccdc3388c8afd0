//! The conformance suite of the [`Store`] trait: what every storage backend must do, written
//! against the trait only, so that a PostgreSQL backend passes the very tests `SqliteStore`
//! passes (the shape of quickwit's `metastore_test_suite!`).
//!
//! Built with the feature `conformance` (a dev-dependency of every backend's tests):
//! `crate::store_conformance_suite!(make_store)` expands to one `#[test]` per check
//! below plus one property test. `make_store` is evaluated once per test and must give a fresh, empty
//! `(store, guard)`: the guard keeps the backend's resources (a directory, a database) alive
//! until the store is dropped, and answers through [`StoreProbe`] the few questions about
//! storage that the trait deliberately hides. The SQLite instantiation is in
//! `tests/it/conformance.rs`.
//!
//! Not covered here: HTTP, restarts, crashes, write failures and tampering with storage, which
//! depend on a backend's files or on the binary (see `auditlog-cli/tests/it`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::people::hash_password;
use crate::{
    Actor, AppendOutcome, PreparedEvent, Receipt, Role, Scopes, SessionLimits, Store, StoreError,
    StoredEvent, TrailEvent, prepare_event,
};
use auditlog_core::event::Timestamp;
use auditlog_core::generate::{GenerateOptions, Generator};
use auditlog_core::json::{JsonLimits, Value, parse};
use auditlog_core::tenant::TenantId;
use auditlog_ledger::leaf_hash;
use auditlog_ledger::merkle::{verify_consistency, verify_inclusion};
use auditlog_ledger::note::{Checkpoint, NoteVerifier, open_checkpoint};
use proptest::prelude::*;

/// The property-test crate the suite's macro expands to.
pub use proptest;

/// One `#[test]` per conformance check, each on a fresh store from `$make_store`, an
/// expression of type `(impl Store, impl StoreProbe)`.
#[macro_export]
macro_rules! store_conformance_suite {
    (@checks $make_store:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let (store, guard) = $make_store;
                $crate::conformance::$check(&store);
                // The store first: it may still write (a last checkpoint) while it closes.
                drop(store);
                drop(guard);
            }
        )*
    };
    (@probed $make_store:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let (store, guard) = $make_store;
                $crate::conformance::$check(&store, &guard);
                drop(store);
                drop(guard);
            }
        )*
    };
    ($make_store:expr) => {
        $crate::store_conformance_suite!(@checks $make_store;
            a_fresh_store_is_empty_and_writable,
            appends_assign_dense_seqs_from_one_per_tenant,
            tenants_are_independent_and_none_reads_another,
            receipts_carry_the_leaf_hash_of_the_stored_canonical_event,
            events_from_pages_in_seq_order,
            an_empty_batch_stores_nothing,
            replaying_an_id_with_the_same_body_returns_the_first_receipt,
            replaying_an_id_with_a_different_body_is_a_conflict_and_stores_nothing,
            duplicate_ids_inside_one_batch_are_one_event_or_a_conflict,
            batches_queued_together_succeed_or_fail_alone,
            concurrent_appends_get_unique_dense_seqs,
            inclusion_proofs_of_every_seq_verify_against_signed_checkpoints,
            consistency_proofs_between_every_pair_of_checkpoints_verify,
            sign_pending_signs_a_checkpoint_of_the_current_size,
            a_checkpoint_is_signed_without_being_asked,
            bad_proof_parameters_are_bad_requests,
            verify_is_clean_after_many_appends,
            tokens_authenticate_until_revoked,
            unknown_tokens_authenticate_as_nobody,
            token_names_are_validated,
            token_names_are_unique_among_a_tenants_active_tokens,
            tokens_belong_to_one_tenant_and_keep_their_scopes,
            received_at_never_decreases,
            events_by_seq_come_in_the_order_asked_and_skip_absent_seqs,
            bulk_inclusion_proofs_equal_single_ones,
            notes_are_signed_with_the_log_key_but_never_as_checkpoints,
            every_tenant_is_listed,
            people_sign_in_and_their_sessions_end,
            sessions_expire_when_idle_or_old,
            administration_is_recorded_in_the_trail_without_secrets,
            records_go_to_the_tenants_trail_log,
            a_sessions_csrf_token_is_derived_from_its_secret,
            disabling_a_person_revokes_the_tokens_they_created_and_records_it,
        );
        $crate::store_conformance_suite!(@probed $make_store;
            a_trained_dictionary_keeps_old_and_new_events_readable_and_verify_clean,
        );
        $crate::conformance::proptest::proptest! {
            #![proptest_config($crate::conformance::proptest::test_runner::Config::with_cases(40))]
            #[test]
            fn random_batches_keep_the_log_dense_and_verifiable(
                batches in $crate::conformance::arb_batches()
            ) {
                let (store, guard) = $make_store;
                $crate::conformance::random_batches_keep_the_log_dense_and_verifiable(
                    &store, &batches,
                );
                drop(store);
                drop(guard);
            }
        }
    };
}

/// What a backend's test guard can tell about storage that the `Store` trait hides. Every
/// answer is optional: a backend that cannot tell returns `None` and the check that asks
/// falls back to what the trait shows.
pub trait StoreProbe {
    /// How many of the tenant's events are stored compressed with a trained dictionary.
    fn events_with_dictionary(&self, _tenant: &TenantId) -> Option<u64> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const PAGE: usize = 1000;

pub fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("valid tenant name")
}

fn unix_nanos_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as i64
}

fn now() -> Timestamp {
    Timestamp::from_unix_nanos(unix_nanos_now())
}

/// Validate one event given as JSON text, as the server does.
fn prepared(text: &str) -> PreparedEvent {
    let value = parse(text.as_bytes(), &JsonLimits::default())
        .unwrap_or_else(|e| panic!("test event does not parse ({e}): {text}"));
    prepare_event(value, now(), PEER)
        .unwrap_or_else(|e| panic!("test event is invalid ({e}): {text}"))
}

/// A small valid event whose body is a function of `id` and `n` only.
fn event_text(id: Option<&str>, n: u64) -> String {
    let id_member = id.map(|id| format!(r#""id":"{id}","#)).unwrap_or_default();
    format!(
        r#"{{{id_member}"user":"alice","ip":"203.0.113.7","action":"UPDATE","table":"customer","primary_key":"{n}","message":"changed credit limit of {n}","before":{{"credit_limit":{n}}},"after":{{"credit_limit":{}}}}}"#,
        n + 1
    )
}

fn event(id: Option<&str>, n: u64) -> PreparedEvent {
    prepared(&event_text(id, n))
}

/// `count` events without ids, numbered from `first`.
pub fn anonymous_events(first: u64, count: u64) -> Vec<PreparedEvent> {
    (first..first + count).map(|n| event(None, n)).collect()
}

pub fn append(store: &impl Store, tenant: &TenantId, events: Vec<PreparedEvent>) -> AppendOutcome {
    let n_events = events.len();
    store
        .append_blocking(tenant, events)
        .unwrap_or_else(|e| panic!("append of {n_events} events to {tenant}: {e}"))
}

fn seqs(outcome: &AppendOutcome) -> Vec<u64> {
    outcome.receipts.iter().map(|r| r.seq).collect()
}

pub fn tree_size(store: &impl Store, tenant: &TenantId) -> u64 {
    store
        .tree_size(tenant)
        .unwrap_or_else(|e| panic!("tree_size of {tenant}: {e}"))
}

fn stored_event(store: &impl Store, tenant: &TenantId, seq: u64) -> StoredEvent {
    store
        .event(tenant, seq)
        .unwrap_or_else(|e| panic!("event {seq} of {tenant}: {e}"))
        .unwrap_or_else(|| panic!("event {seq} of {tenant} is missing"))
}

/// Every event of the tenant, read in pages.
pub fn all_events(store: &impl Store, tenant: &TenantId) -> Vec<StoredEvent> {
    let mut out: Vec<StoredEvent> = Vec::new();
    loop {
        let from = out.last().map_or(1, |e| e.seq + 1);
        let page = store
            .events_from(tenant, from, PAGE)
            .unwrap_or_else(|e| panic!("events_from {from} of {tenant}: {e}"));
        let n_read = page.len();
        out.extend(page);
        if n_read < PAGE {
            return out;
        }
    }
}

fn parse_canonical(event: &StoredEvent) -> Value {
    parse(&event.canonical, &JsonLimits::default())
        .unwrap_or_else(|e| panic!("stored event {} does not parse: {e}", event.seq))
}

fn str_member(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn u64_member(value: &Value, key: &str) -> Option<u64> {
    match value.get(key) {
        Some(Value::Number(n)) => n.as_i64().and_then(|n| u64::try_from(n).ok()),
        _ => None,
    }
}

/// The stored event is its own RFC 8785 form and names its tenant, seq and receive time.
fn assert_self_describing(event: &StoredEvent, tenant: &TenantId) {
    let value = parse_canonical(event);
    assert_eq!(
        value.to_canonical(),
        event.canonical,
        "stored event {} is not in RFC 8785 form",
        event.seq
    );
    assert_eq!(
        str_member(&value, "tenant").as_deref(),
        Some(tenant.as_str())
    );
    assert_eq!(u64_member(&value, "seq"), Some(event.seq));
    let received_at = str_member(&value, "received_at").expect("received_at member");
    assert_eq!(
        Timestamp::parse_rfc3339(&received_at).expect("received_at is RFC 3339"),
        event.received_at
    );
    assert!(
        value.get("leaf_hash").is_none(),
        "the hashed form must not hold its own hash"
    );
    assert_eq!(event.leaf_hash, leaf_hash(&event.canonical));
}

fn verifier(store: &impl Store, tenant: &TenantId) -> NoteVerifier {
    let key = store
        .verifier_key(tenant)
        .unwrap_or_else(|e| panic!("verifier key of {tenant}: {e}"));
    NoteVerifier::parse(&key).unwrap_or_else(|e| panic!("verifier key {key:?} of {tenant}: {e}"))
}

/// The latest stored checkpoint, opened with the tenant's verifier key.
fn latest_checkpoint(store: &impl Store, tenant: &TenantId) -> Option<Checkpoint> {
    let stored = store
        .latest_checkpoint(tenant)
        .unwrap_or_else(|e| panic!("latest checkpoint of {tenant}: {e}"))?;
    let checkpoint = open_checkpoint(&verifier(store, tenant), &stored.note).unwrap_or_else(|e| {
        panic!(
            "checkpoint of {tenant} does not open with its verifier key: {e}\n{}",
            stored.note
        )
    });
    assert_eq!(checkpoint.size, stored.size, "stored size and signed size");
    assert_eq!(checkpoint.origin, format!("auditlog/{tenant}"));
    Some(checkpoint)
}

/// Sign now and return the checkpoint, which must be of the current tree size.
fn sign_now(store: &impl Store, tenant: &TenantId) -> Checkpoint {
    store.sign_pending().expect("sign_pending");
    let checkpoint = latest_checkpoint(store, tenant).expect("a checkpoint after sign_pending");
    assert_eq!(checkpoint.size, tree_size(store, tenant));
    checkpoint
}

/// Grow the tenant's tree to each of `sizes` in turn and sign a checkpoint at each.
fn grow_and_sign(store: &impl Store, tenant: &TenantId, sizes: &[u64]) -> Vec<Checkpoint> {
    let mut checkpoints = Vec::new();
    for &size in sizes {
        let current = tree_size(store, tenant);
        append(store, tenant, anonymous_events(current + 1, size - current));
        let checkpoint = sign_now(store, tenant);
        assert_eq!(checkpoint.size, size);
        checkpoints.push(checkpoint);
    }
    checkpoints
}

fn assert_bad_request<T: Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::BadRequest(_)) => {}
        other => panic!("{what}: want StoreError::BadRequest, got {other:?}"),
    }
}

/// An error the caller caused (HTTP 4xx), for the cases where "not found" and "bad request"
/// are both fair answers.
fn assert_client_error<T: Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::BadRequest(_) | StoreError::NotFound(_)) => {}
        other => panic!("{what}: want BadRequest or NotFound, got {other:?}"),
    }
}

fn assert_verify_clean(store: &impl Store, tenant: &TenantId, n_events: u64) {
    let calls = Mutex::new(Vec::new());
    let report = store
        .verify(tenant, &|done, total| {
            calls.lock().expect("progress lock").push((done, total))
        })
        .unwrap_or_else(|e| panic!("verify {tenant}: {e}"));
    assert!(
        report.is_clean(),
        "verify of {tenant} found problems: {:?} (+{} more)",
        report.findings,
        report.more_findings
    );
    assert_eq!(report.tree_size, n_events);
    assert_eq!(report.events_checked, n_events);
    let calls = calls.into_inner().expect("progress lock");
    for &(done, total) in &calls {
        assert!(done <= total, "progress {done} of {total}");
    }
    if n_events > 0 {
        assert_eq!(calls.last(), Some(&(n_events, n_events)), "last progress");
    }
}

// ---------------------------------------------------------------------------------------------
// Checks.

pub fn a_fresh_store_is_empty_and_writable(store: &impl Store) {
    let health = store.health();
    assert!(health.writable, "fresh store not writable: {health:?}");
    assert_eq!(health.problem, None);
    let t = tenant("fresh");
    assert_eq!(tree_size(store, &t), 0);
    assert!(
        store
            .events_from(&t, 1, 10)
            .expect("events_from")
            .is_empty()
    );
    assert!(store.event(&t, 1).expect("event").is_none());
    assert!(store.latest_checkpoint(&t).expect("checkpoint").is_none());
    assert!(store.list_tokens(&t).expect("list_tokens").is_empty());
    assert_verify_clean(store, &t, 0);
    store
        .sign_pending()
        .expect("sign_pending with nothing to sign");
    assert!(store.latest_checkpoint(&t).expect("checkpoint").is_none());

    store.ensure_tenant(&t).expect("ensure_tenant");
    store.ensure_tenant(&t).expect("ensure_tenant twice");
    assert_eq!(tree_size(store, &t), 0);
    assert_eq!(
        store.verifier_key(&t).expect("key"),
        store.verifier_key(&t).expect("key again"),
        "the verifier key is stable"
    );
    verifier(store, &t);
    // A tenant made ready has a signed head of its empty tree (RFC 9162: SHA-256 of nothing).
    let empty = latest_checkpoint(store, &t).expect("the empty tree's checkpoint");
    assert_eq!(empty.size, 0);
    assert_eq!(
        auditlog_ledger::merkle::empty_root(),
        <[u8; 32]>::try_from(
            &[
                0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f,
                0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b,
                0x78, 0x52, 0xb8, 0x55
            ][..]
        )
        .expect("32 bytes")
    );
    assert_eq!(empty.root, auditlog_ledger::merkle::empty_root());
    assert_verify_clean(store, &t, 0);
    // The first events are signed on top of it.
    append(store, &t, anonymous_events(1, 2));
    store.sign_pending().expect("sign_pending");
    assert_eq!(latest_checkpoint(store, &t).expect("checkpoint").size, 2);
    assert_verify_clean(store, &t, 2);
}

pub fn appends_assign_dense_seqs_from_one_per_tenant(store: &impl Store) {
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    let first = append(store, &a, anonymous_events(1, 3));
    assert_eq!(seqs(&first), [1, 2, 3]);
    assert_eq!(first.tree_size, 3);
    let other = append(store, &b, anonymous_events(1, 2));
    assert_eq!(seqs(&other), [1, 2], "tenant b starts at seq 1 too");
    assert_eq!(other.tree_size, 2);
    let second = append(store, &a, anonymous_events(4, 2));
    assert_eq!(
        seqs(&second),
        [4, 5],
        "tenant b's events take no seq of tenant a"
    );
    assert_eq!(second.tree_size, 5);
    for n in 3..=12 {
        let single = append(store, &b, vec![event(None, n)]);
        assert_eq!(seqs(&single), [n]);
        assert_eq!(single.tree_size, n);
    }
    assert_eq!(tree_size(store, &a), 5);
    assert_eq!(tree_size(store, &b), 12);
    for (t, n) in [(&a, 5), (&b, 12)] {
        let stored: Vec<u64> = all_events(store, t).iter().map(|e| e.seq).collect();
        assert_eq!(stored, (1..=n).collect::<Vec<_>>(), "seqs of {t}");
    }
}

pub fn tenants_are_independent_and_none_reads_another(store: &impl Store) {
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    // The same bodies, ids included, in both tenants: ids are per tenant.
    let shared = |count: u64| -> Vec<PreparedEvent> {
        (1..=count)
            .map(|n| event(Some(&format!("shared-{n}")), n))
            .collect()
    };
    let in_a = append(store, &a, shared(3));
    let in_b = append(store, &b, shared(10));
    assert_eq!(seqs(&in_a), [1, 2, 3]);
    assert_eq!(
        seqs(&in_b),
        (1..=10).collect::<Vec<_>>(),
        "an id used in tenant a is new in tenant b"
    );
    assert_ne!(
        in_a.receipts[0].leaf_hash, in_b.receipts[0].leaf_hash,
        "seq 1 of two tenants is two different leaves"
    );
    let (a1, b1) = (stored_event(store, &a, 1), stored_event(store, &b, 1));
    assert_ne!(a1.canonical, b1.canonical);
    assert_self_describing(&a1, &a);
    assert_self_describing(&b1, &b);

    // Nothing of b is visible through a.
    for seq in 4..=11 {
        assert!(
            store.event(&a, seq).expect("event").is_none(),
            "tenant a sees seq {seq}"
        );
    }
    let a_events = all_events(store, &a);
    assert_eq!(a_events.len(), 3);
    for stored in &a_events {
        assert_self_describing(stored, &a);
    }
    assert!(
        store
            .events_from(&a, 4, 100)
            .expect("events_from")
            .is_empty()
    );
    assert_eq!(tree_size(store, &a), 3);
    assert_bad_request(
        store.inclusion_proof(&a, 3, 4),
        "inclusion of a seq only b has",
    );
    assert_bad_request(
        store.inclusion_proof(&a, 0, 10),
        "inclusion in b's tree size",
    );
    assert_bad_request(
        store.consistency_proof(&a, 3, 10),
        "consistency to b's tree size",
    );
    let (leaf, _) = store.inclusion_proof(&a, 0, 3).expect("inclusion in a");
    assert_eq!(
        leaf, in_a.receipts[0].leaf_hash,
        "a's proof is about a's leaf"
    );

    // Replays answer from the tenant's own log.
    let replay_a = append(store, &a, shared(1));
    let replay_b = append(store, &b, shared(1));
    assert_eq!(replay_a.receipts[0], in_a.receipts[0]);
    assert_eq!(replay_b.receipts[0], in_b.receipts[0]);

    // Keys and checkpoints are per tenant: b's checkpoint does not open with a's key.
    let key_a = store.verifier_key(&a).expect("key a");
    let key_b = store.verifier_key(&b).expect("key b");
    assert_ne!(key_a, key_b);
    store.sign_pending().expect("sign_pending");
    let checkpoint_a = latest_checkpoint(store, &a).expect("checkpoint a");
    let checkpoint_b = latest_checkpoint(store, &b).expect("checkpoint b");
    assert_eq!((checkpoint_a.size, checkpoint_b.size), (3, 10));
    let note_b = store.latest_checkpoint(&b).expect("b").expect("b").note;
    assert!(
        open_checkpoint(&verifier(store, &a), &note_b).is_err(),
        "tenant b's checkpoint verifies with tenant a's key"
    );
    assert_verify_clean(store, &a, 3);
    assert_verify_clean(store, &b, 10);
}

pub fn receipts_carry_the_leaf_hash_of_the_stored_canonical_event(store: &impl Store) {
    let t = tenant("receipts");
    let ids: Vec<Option<String>> = (0..20u64)
        .map(|n| (n % 3 != 0).then(|| format!("r-{n}")))
        .collect();
    let batch = ids
        .iter()
        .zip(0u64..)
        .map(|(id, n)| event(id.as_deref(), n))
        .collect();
    let outcome = append(store, &t, batch);
    assert_eq!(outcome.receipts.len(), ids.len());
    for (receipt, id) in outcome.receipts.iter().zip(&ids) {
        assert_eq!(&receipt.id, id, "receipts are in request order");
        let stored = stored_event(store, &t, receipt.seq);
        assert_eq!(stored.seq, receipt.seq);
        assert_eq!(stored.leaf_hash, receipt.leaf_hash);
        assert_eq!(
            leaf_hash(&stored.canonical),
            receipt.leaf_hash,
            "seq {}: the receipt's leaf hash is RFC 9162's hash of the stored bytes",
            receipt.seq
        );
        assert_self_describing(&stored, &t);
        let value = parse_canonical(&stored);
        assert_eq!(&str_member(&value, "id"), id);
        assert_eq!(str_member(&value, "user").as_deref(), Some("alice"));
    }
}

pub fn events_from_pages_in_seq_order(store: &impl Store) {
    let t = tenant("pages");
    let mut next = 1;
    for size in [1u64, 7, 50, 192] {
        append(store, &t, anonymous_events(next, size));
        next += size;
    }
    let n_events = next - 1;
    assert_eq!(n_events, 250);
    let mut seen = Vec::new();
    let mut from = 1;
    loop {
        let page = store.events_from(&t, from, 7).expect("page");
        assert!(page.len() <= 7, "a page holds at most `limit` events");
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        seen.extend(page.iter().map(|e| e.seq));
    }
    assert_eq!(seen, (1..=n_events).collect::<Vec<_>>());
    let head: Vec<u64> = store
        .events_from(&t, 0, 3)
        .expect("from 0")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(head, [1, 2, 3], "from seq 0 starts at the first event");
    let middle: Vec<u64> = store
        .events_from(&t, 100, 1)
        .expect("one")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(middle, [100]);
    let tail: Vec<u64> = store
        .events_from(&t, n_events, 10)
        .expect("tail")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(tail, [n_events]);
    assert!(
        store
            .events_from(&t, n_events + 1, 10)
            .expect("past")
            .is_empty()
    );
    assert!(store.events_from(&t, u64::MAX, 10).expect("far").is_empty());
    assert!(store.event(&t, 0).expect("seq 0").is_none());
    assert!(store.event(&t, n_events + 1).expect("past").is_none());
    assert_eq!(stored_event(store, &t, 137).seq, 137);
}

pub fn an_empty_batch_stores_nothing(store: &impl Store) {
    let t = tenant("empty-batch");
    let outcome = append(store, &t, Vec::new());
    assert!(outcome.receipts.is_empty());
    assert_eq!(outcome.tree_size, 0);
    append(store, &t, anonymous_events(1, 2));
    let outcome = append(store, &t, Vec::new());
    assert!(outcome.receipts.is_empty());
    assert_eq!(outcome.tree_size, 2);
    assert_eq!(tree_size(store, &t), 2);
}

pub fn replaying_an_id_with_the_same_body_returns_the_first_receipt(store: &impl Store) {
    let t = tenant("replay");
    let first = append(store, &t, vec![event(Some("order-1"), 1)]);
    let original = first.receipts[0].clone();
    assert_eq!(original.id.as_deref(), Some("order-1"));
    let bytes_before = stored_event(store, &t, original.seq).canonical;
    append(store, &t, anonymous_events(2, 3));
    store.sign_pending().expect("sign_pending");

    let replay = append(store, &t, vec![event(Some("order-1"), 1)]);
    assert_eq!(replay.receipts, std::slice::from_ref(&original));
    assert_eq!(replay.tree_size, 4, "a replay adds nothing");
    assert_eq!(tree_size(store, &t), 4);

    // The same JSON value is the same body, however its members are ordered and spaced.
    let reordered = r#"{ "after": {"credit_limit": 2}, "before": {"credit_limit": 1},
        "message": "changed credit limit of 1", "primary_key": "1", "table": "customer",
        "action": "UPDATE", "ip": "203.0.113.7", "user": "alice", "id": "order-1" }"#;
    let replay = append(store, &t, vec![prepared(reordered)]);
    assert_eq!(replay.receipts, std::slice::from_ref(&original));

    // A replay in a batch with new events: the new ones get the next seqs, in order.
    let mixed = append(
        store,
        &t,
        vec![
            event(Some("order-2"), 2),
            event(Some("order-1"), 1),
            event(None, 99),
        ],
    );
    assert_eq!(seqs(&mixed), [5, original.seq, 6]);
    assert_eq!(mixed.receipts[1], original);
    assert_eq!(mixed.tree_size, 6);
    assert_eq!(
        stored_event(store, &t, original.seq).canonical,
        bytes_before,
        "a replay leaves the stored event as it was"
    );
    assert_verify_clean(store, &t, 6);
}

pub fn replaying_an_id_with_a_different_body_is_a_conflict_and_stores_nothing(store: &impl Store) {
    let t = tenant("conflict");
    append(store, &t, vec![event(Some("order-1"), 1)]);
    append(store, &t, anonymous_events(2, 4));
    let checkpoint = sign_now(store, &t);
    let size = tree_size(store, &t);

    let result = store.append_blocking(
        &t,
        vec![event(Some("fresh-1"), 10), event(Some("order-1"), 2)],
    );
    match result {
        Err(StoreError::Conflict { index, id }) => {
            assert_eq!(
                index, 1,
                "the conflict names the event's index in the batch"
            );
            assert_eq!(id, "order-1");
        }
        other => panic!("want StoreError::Conflict, got {other:?}"),
    }
    assert_eq!(
        tree_size(store, &t),
        size,
        "a conflicting batch stores nothing"
    );
    assert!(
        store
            .events_from(&t, size + 1, 10)
            .expect("tail")
            .is_empty()
    );
    store.sign_pending().expect("sign_pending");
    assert_eq!(
        latest_checkpoint(store, &t).expect("checkpoint"),
        checkpoint,
        "nothing new to sign"
    );
    // "fresh-1" was not kept either: it is still free for any body.
    let fresh = append(store, &t, vec![event(Some("fresh-1"), 11)]);
    assert_eq!(seqs(&fresh), [size + 1]);
    // The original still answers replays.
    let replay = append(store, &t, vec![event(Some("order-1"), 1)]);
    assert_eq!(seqs(&replay), [1]);
    assert_verify_clean(store, &t, size + 1);
}

pub fn duplicate_ids_inside_one_batch_are_one_event_or_a_conflict(store: &impl Store) {
    let t = tenant("batch-dups");
    let batch = vec![
        event(Some("a"), 1),
        event(Some("b"), 2),
        event(Some("a"), 1),
        event(None, 3),
        event(Some("b"), 2),
    ];
    let outcome = append(store, &t, batch);
    assert_eq!(seqs(&outcome), [1, 2, 1, 3, 2]);
    assert_eq!(outcome.receipts[0], outcome.receipts[2]);
    assert_eq!(outcome.receipts[1], outcome.receipts[4]);
    assert_eq!(outcome.tree_size, 3);

    let result = store.append_blocking(
        &t,
        vec![event(None, 4), event(Some("c"), 5), event(Some("c"), 6)],
    );
    match result {
        Err(StoreError::Conflict { index, id }) => {
            assert_eq!((index, id.as_str()), (2, "c"));
        }
        other => panic!("want StoreError::Conflict, got {other:?}"),
    }
    assert_eq!(
        tree_size(store, &t),
        3,
        "the conflicting batch stored nothing"
    );
    let c = append(store, &t, vec![event(Some("c"), 6)]);
    assert_eq!(seqs(&c), [4], "c was not kept by the refused batch");

    // A stored id repeated inside one batch answers the stored receipt every time.
    let replays = append(store, &t, vec![event(Some("a"), 1), event(Some("a"), 1)]);
    assert_eq!(
        replays.receipts,
        [outcome.receipts[0].clone(), outcome.receipts[0].clone()]
    );
    assert_eq!(replays.tree_size, 4);
    assert_verify_clean(store, &t, 4);
}

pub fn batches_queued_together_succeed_or_fail_alone(store: &impl Store) {
    let t = tenant("queued");
    append(store, &t, vec![event(Some("taken"), 1)]);
    // Queued without waiting, so a backend that commits in groups may take them together.
    let (tx, rx) = mpsc::channel();
    let batches = vec![
        anonymous_events(10, 3),
        vec![event(None, 20), event(Some("taken"), 2)],
        anonymous_events(30, 2),
        vec![event(Some("taken"), 1)],
    ];
    let n_batches = batches.len();
    for (index, batch) in batches.into_iter().enumerate() {
        let tx = tx.clone();
        store.append(
            &t,
            batch,
            Box::new(move |result| {
                let _ = tx.send((index, result));
            }),
        );
    }
    drop(tx);
    let mut results: Vec<(usize, Result<AppendOutcome, StoreError>)> = rx.iter().collect();
    assert_eq!(results.len(), n_batches, "every `done` runs exactly once");
    results.sort_by_key(|(index, _)| *index);
    let mut new_seqs = Vec::new();
    for (index, result) in results {
        match (index, result) {
            (0 | 2, Ok(outcome)) => new_seqs.extend(seqs(&outcome)),
            (1, Err(StoreError::Conflict { index, id })) => {
                assert_eq!((index, id.as_str()), (1, "taken"));
            }
            (3, Ok(outcome)) => assert_eq!(seqs(&outcome), [1]),
            (index, other) => panic!("batch {index}: unexpected {other:?}"),
        }
    }
    new_seqs.sort_unstable();
    assert_eq!(new_seqs, [2, 3, 4, 5, 6]);
    assert_eq!(tree_size(store, &t), 6);
    assert_verify_clean(store, &t, 6);
}

pub fn concurrent_appends_get_unique_dense_seqs(store: &impl Store) {
    let t = tenant("concurrent");
    let (n_threads, n_batches, batch_size) = (4u64, 15u64, 5u64);
    let outcomes: Vec<Vec<Receipt>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n_threads)
            .map(|thread_no| {
                let t = &t;
                scope.spawn(move || {
                    let mut receipts = Vec::new();
                    for batch_no in 0..n_batches {
                        let first = (thread_no * n_batches + batch_no) * batch_size;
                        let batch: Vec<PreparedEvent> = (first..first + batch_size)
                            .map(|n| event(Some(&format!("c-{n}")), n))
                            .collect();
                        let outcome = append(store, t, batch);
                        let batch_seqs = seqs(&outcome);
                        // A batch is appended as one unit: its new events are consecutive.
                        for pair in batch_seqs.windows(2) {
                            assert_eq!(pair[1], pair[0] + 1, "batch seqs {batch_seqs:?}");
                        }
                        receipts.extend(outcome.receipts);
                    }
                    receipts
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("append thread"))
            .collect()
    });
    let n_events = n_threads * n_batches * batch_size;
    let mut all_seqs: Vec<u64> = outcomes.iter().flatten().map(|r| r.seq).collect();
    all_seqs.sort_unstable();
    assert_eq!(all_seqs, (1..=n_events).collect::<Vec<_>>());
    for receipt in outcomes.iter().flatten() {
        let stored = stored_event(store, &t, receipt.seq);
        assert_eq!(stored.leaf_hash, receipt.leaf_hash);
        assert_eq!(
            str_member(&parse_canonical(&stored), "id"),
            receipt.id,
            "seq {} holds another event",
            receipt.seq
        );
    }
    assert_verify_clean(store, &t, n_events);
}

/// Tree sizes around the edges of 256-leaf tiles and of powers of two.
const PROOF_SIZES: [u64; 15] = [1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 511, 512, 513, 700];

pub fn inclusion_proofs_of_every_seq_verify_against_signed_checkpoints(store: &impl Store) {
    let t = tenant("inclusion");
    let check = |checkpoint: &Checkpoint, leaves: &[[u8; 32]]| {
        let size = checkpoint.size;
        for leaf_index in 0..size {
            let (leaf, proof) = store
                .inclusion_proof(&t, leaf_index, size)
                .unwrap_or_else(|e| panic!("inclusion proof of leaf {leaf_index} in {size}: {e}"));
            assert_eq!(leaf, leaves[leaf_index as usize], "leaf {leaf_index}");
            verify_inclusion(leaf_index, size, &leaf, &proof, &checkpoint.root)
                .unwrap_or_else(|e| panic!("seq {} in the tree of {size}: {e}", leaf_index + 1));
        }
    };
    let mut leaves = Vec::new();
    let mut checkpoints = Vec::new();
    for &size in &PROOF_SIZES {
        let current = tree_size(store, &t);
        let outcome = append(store, &t, anonymous_events(current + 1, size - current));
        leaves.extend(outcome.receipts.iter().map(|r| r.leaf_hash));
        let checkpoint = sign_now(store, &t);
        assert_eq!(checkpoint.size, size);
        check(&checkpoint, &leaves);
        checkpoints.push(checkpoint);
    }
    // Proofs in older, smaller trees still verify once the tree has grown past them.
    for checkpoint in &checkpoints {
        check(checkpoint, &leaves);
    }
}

pub fn consistency_proofs_between_every_pair_of_checkpoints_verify(store: &impl Store) {
    let t = tenant("consistency");
    let checkpoints = grow_and_sign(store, &t, &PROOF_SIZES);
    for (i, old) in checkpoints.iter().enumerate() {
        for new in &checkpoints[i..] {
            let proof = store
                .consistency_proof(&t, old.size, new.size)
                .unwrap_or_else(|e| panic!("consistency proof {} to {}: {e}", old.size, new.size));
            verify_consistency(old.size, new.size, &old.root, &new.root, &proof)
                .unwrap_or_else(|e| panic!("consistency of {} with {}: {e}", old.size, new.size));
            if old.size < new.size {
                assert!(
                    verify_consistency(old.size, new.size, &new.root, &old.root, &proof).is_err(),
                    "the proof {} to {} also fits swapped roots",
                    old.size,
                    new.size
                );
            }
        }
    }
}

pub fn sign_pending_signs_a_checkpoint_of_the_current_size(store: &impl Store) {
    let t = tenant("signing");
    store
        .sign_pending()
        .expect("sign_pending on an empty store");
    assert!(latest_checkpoint(store, &t).is_none());
    append(store, &t, anonymous_events(1, 5));
    append(store, &t, anonymous_events(6, 3));
    store.sign_pending().expect("sign_pending");
    let checkpoint = latest_checkpoint(store, &t).expect("checkpoint");
    assert_eq!(
        checkpoint.size, 8,
        "sign_pending covers every stored event at once"
    );
    let all_leaves: Vec<[u8; 32]> = all_events(store, &t).iter().map(|e| e.leaf_hash).collect();
    assert_eq!(
        checkpoint.root,
        auditlog_ledger::merkle::root_of(&all_leaves),
        "the signed root is the RFC 9162 root of the stored leaves"
    );
    store.sign_pending().expect("sign_pending with nothing new");
    assert_eq!(latest_checkpoint(store, &t), Some(checkpoint));
    append(store, &t, vec![event(None, 9)]);
    assert_eq!(sign_now(store, &t).size, 9);
}

pub fn a_checkpoint_is_signed_without_being_asked(store: &impl Store) {
    let t = tenant("auto-signing");
    append(store, &t, anonymous_events(1, 3));
    append(store, &t, anonymous_events(4, 2));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let size = latest_checkpoint(store, &t).map(|c| c.size);
        if size == Some(5) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of size 5 within 30 s (latest: {size:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn bad_proof_parameters_are_bad_requests(store: &impl Store) {
    let t = tenant("bad-params");
    append(store, &t, anonymous_events(1, 10));
    for (leaf_index, size) in [
        (0, 0),
        (0, 11),
        (10, 10),
        (10, 5),
        (5, 5),
        (0, u64::MAX),
        (u64::MAX, u64::MAX),
        (u64::MAX, 10),
    ] {
        assert_bad_request(
            store.inclusion_proof(&t, leaf_index, size),
            &format!("inclusion proof of leaf {leaf_index} in size {size}"),
        );
    }
    for (from, to) in [
        (0, 0),
        (0, 5),
        (6, 5),
        (1, 11),
        (5, u64::MAX),
        (u64::MAX, u64::MAX),
        (11, 11),
    ] {
        assert_bad_request(
            store.consistency_proof(&t, from, to),
            &format!("consistency proof from {from} to {to}"),
        );
    }
    // The edges that are fine.
    store.inclusion_proof(&t, 9, 10).expect("last leaf");
    store.inclusion_proof(&t, 0, 1).expect("tree of one");
    assert!(
        store
            .consistency_proof(&t, 10, 10)
            .expect("same size")
            .is_empty(),
        "from == to has the empty proof"
    );
    store.consistency_proof(&t, 1, 10).expect("1 to 10");

    // An empty log and an unknown tenant have nothing to prove.
    let empty = tenant("bad-params-empty");
    store.ensure_tenant(&empty).expect("ensure_tenant");
    let unknown = tenant("bad-params-unknown");
    for t in [&empty, &unknown] {
        assert_client_error(store.inclusion_proof(t, 0, 1), &format!("inclusion in {t}"));
        assert_client_error(
            store.consistency_proof(t, 1, 1),
            &format!("consistency in {t}"),
        );
    }
}

pub fn verify_is_clean_after_many_appends(store: &impl Store) {
    let (t, other) = (tenant("verify"), tenant("verify-other"));
    let mut n_events = 0;
    let mut n_signed = 0;
    for round in 1..=40u64 {
        let size = 1 + (round * 7) % 23;
        append(store, &t, anonymous_events(n_events + 1, size));
        n_events += size;
        if round % 5 == 0 {
            sign_now(store, &t);
            n_signed += 1;
        }
        if round % 10 == 0 {
            append(store, &other, anonymous_events(round, 2));
        }
    }
    append(store, &t, anonymous_events(n_events + 1, 3));
    n_events += 3;
    sign_now(store, &t);
    n_signed += 1;
    let report = store.verify(&t, &|_, _| {}).expect("verify");
    assert!(report.checkpoints_checked >= n_signed, "{report:?}");
    assert_eq!(report.latest_checkpoint, Some(n_events));
    assert_eq!(report.tenant, t.as_str());
    assert_verify_clean(store, &t, n_events);
    assert_verify_clean(store, &other, 8);
    assert_verify_clean(store, &tenant("verify-unknown"), 0);
}

/// How many events the dictionary check stores before it looks for a dictionary: more than
/// the 4096 the SQLite backend trains from.
const EVENTS_BEFORE_DICTIONARY: u64 = 5000;

pub fn a_trained_dictionary_keeps_old_and_new_events_readable_and_verify_clean(
    store: &impl Store,
    probe: &impl StoreProbe,
) {
    let t = tenant("dictionary");
    let start_unix_secs = unix_nanos_now() / 1_000_000_000 - 30 * 86_400;
    let mut generator = Generator::new(GenerateOptions {
        seed: 7,
        start_unix_secs,
        mean_gap_ms: 1_000,
    });
    let mut sent: Vec<String> = Vec::new();
    let mut next_batch = |count: u64| -> Vec<PreparedEvent> {
        (0..count)
            .map(|_| {
                let text = generator.next().expect("the generator never ends");
                let event = prepared(&text);
                sent.push(text);
                event
            })
            .collect()
    };
    let mut n_events = 0;
    while n_events < EVENTS_BEFORE_DICTIONARY {
        n_events += append(store, &t, next_batch(500)).receipts.len() as u64;
    }
    assert_eq!(tree_size(store, &t), n_events);
    // Training may run in the background: keep appending until new events use a dictionary,
    // or for a while when the backend cannot tell.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rounds = 0;
    loop {
        n_events += append(store, &t, next_batch(50)).receipts.len() as u64;
        rounds += 1;
        match probe.events_with_dictionary(&t) {
            Some(n) if n > 0 => break,
            Some(_) => assert!(
                Instant::now() < deadline,
                "no event is stored with a dictionary after {n_events} events"
            ),
            None if rounds >= 30 => break,
            None => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let with_dictionary_before = probe.events_with_dictionary(&t);
    for _ in 0..2 {
        n_events += append(store, &t, next_batch(500)).receipts.len() as u64;
    }
    if let Some(before) = with_dictionary_before {
        let after = probe
            .events_with_dictionary(&t)
            .expect("the probe answered before");
        assert!(
            after >= before + 1000,
            "the newest events use the dictionary"
        );
    }
    sign_now(store, &t);
    assert_verify_clean(store, &t, n_events);

    // Every event, from before and after the dictionary, reads back as sent.
    let stored = all_events(store, &t);
    assert_eq!(stored.len() as u64, n_events);
    for (index, (event, text)) in stored.iter().zip(&sent).enumerate() {
        assert_eq!(event.seq, index as u64 + 1);
        assert_self_describing(event, &t);
        let sent_value = parse(text.as_bytes(), &JsonLimits::default()).expect("sent");
        let value = parse_canonical(event);
        for key in ["id", "user", "action", "table", "message"] {
            assert_eq!(
                value.get(key),
                sent_value.get(key),
                "seq {}: {key} differs from what was sent",
                event.seq
            );
        }
        let time = |value: &Value| {
            str_member(value, "time").map(|t| Timestamp::parse_rfc3339(&t).expect("time"))
        };
        assert_eq!(time(&value), time(&sent_value), "seq {}: time", event.seq);
        // Objects compare by their canonical form; an absent member and null are alike.
        let object = |value: &Value, key: &str| match value.get(key) {
            None | Some(Value::Null) => None,
            Some(member) => Some(member.to_canonical()),
        };
        for key in ["before", "after", "context"] {
            assert_eq!(
                object(&value, key),
                object(&sent_value, key),
                "seq {}: {key} differs from what was sent",
                event.seq
            );
        }
    }
    // Replays read the stored rows of both kinds.
    for seq in [1, n_events] {
        let text = &sent[seq as usize - 1];
        let replay = append(store, &t, vec![prepared(text)]);
        assert_eq!(seqs(&replay), [seq]);
        assert_eq!(
            replay.receipts[0].leaf_hash,
            stored[seq as usize - 1].leaf_hash
        );
        // These bodies name their time and ip, so the stored record itself identifies them:
        // any change to one under the same id is a conflict, with or without a dictionary.
        let sent_value = parse(text.as_bytes(), &JsonLimits::default()).expect("sent");
        let Value::Object(members) = sent_value else {
            panic!("an event is an object")
        };
        let changed_message = members
            .iter()
            .map(|(key, value)| match key.as_str() {
                "message" => (key.clone(), Value::String("another message".to_owned())),
                _ => (key.clone(), value.clone()),
            })
            .collect();
        let without_ip = members
            .iter()
            .filter(|(key, _)| key != "ip")
            .cloned()
            .collect();
        for changed in [Value::Object(changed_message), Value::Object(without_ip)] {
            let changed = prepare_event(changed, now(), PEER).expect("valid");
            match store.append_blocking(&t, vec![changed]) {
                Err(StoreError::Conflict { index: 0, .. }) => {}
                other => panic!("seq {seq}: want a conflict, got {other:?}"),
            }
        }
    }
    assert_eq!(tree_size(store, &t), n_events);
}

pub fn tokens_authenticate_until_revoked(store: &impl Store) {
    let t = tenant("tokens");
    let scopes = Scopes {
        ingest: true,
        read: false,
        admin: false,
    };
    let token = create_token(store, &t, "ci-bot", scopes).expect("create");
    assert!(!token.is_empty());
    let principal = store
        .authenticate(&token)
        .expect("authenticate")
        .expect("a fresh token authenticates");
    assert_eq!(principal.tenant, t);
    assert_eq!(principal.name, "ci-bot");
    assert_eq!(principal.scopes, scopes);
    let listed = store.list_tokens(&t).expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "ci-bot");
    assert_eq!(listed[0].scopes, scopes);
    assert_eq!(listed[0].revoked_at, None);
    assert!(
        !format!("{listed:?}").contains(&token),
        "listing shows the secret"
    );

    assert!(revoke_token(store, &t, "ci-bot").expect("revoke"));
    assert!(
        store.authenticate(&token).expect("authenticate").is_none(),
        "a revoked token fails at once"
    );
    assert!(
        !revoke_token(store, &t, "ci-bot").expect("revoke again"),
        "nothing left to revoke"
    );
    assert!(!revoke_token(store, &t, "never-made").expect("revoke unknown"));
    let listed = store.list_tokens(&t).expect("list");
    assert_eq!(listed.len(), 1, "a revoked token is still listed");
    assert!(listed[0].revoked_at.is_some());

    // The name is free again; the old secret stays dead.
    let again = create_token(store, &t, "ci-bot", Scopes::all()).expect("create again");
    assert_ne!(again, token);
    assert!(store.authenticate(&token).expect("old").is_none());
    let principal = store.authenticate(&again).expect("new").expect("new token");
    assert_eq!(principal.scopes, Scopes::all());
}

pub fn unknown_tokens_authenticate_as_nobody(store: &impl Store) {
    let t = tenant("tokens-unknown");
    let token = create_token(store, &t, "real", Scopes::all()).expect("create");
    let mut altered = token.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).expect("ascii");
    let long = "alog_".to_owned() + &"x".repeat(10_000);
    let mut truncated = token.clone();
    truncated.pop();
    let with_space = format!("{token} ");
    for candidate in [
        "",
        "alog_",
        "alog_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "Bearer",
        "not-a-token",
        "\u{0}",
        long.as_str(),
        altered.as_str(),
        truncated.as_str(),
        with_space.as_str(),
    ] {
        let shown: String = candidate.chars().take(40).collect();
        match store.authenticate(candidate) {
            Ok(None) => {}
            other => panic!("token {shown:?}: want Ok(None), got {other:?}"),
        }
    }
    assert!(store.authenticate(&token).expect("real").is_some());
}

pub fn token_names_are_validated(store: &impl Store) {
    let t = tenant("token-names");
    let too_long = "n".repeat(65);
    for name in [
        "",
        " ",
        "has space",
        "a/b",
        "semi;colon",
        "new\nline",
        "ünïcode",
        "quote\"",
        too_long.as_str(),
    ] {
        assert_bad_request(
            create_token(store, &t, name, Scopes::all()),
            &format!("token name {name:?}"),
        );
    }
    assert!(
        store.list_tokens(&t).expect("list").is_empty(),
        "a refused name leaves no token"
    );
    let longest = "n".repeat(64);
    for name in ["a", "ci-bot_1.v2:prod@example", longest.as_str()] {
        create_token(store, &t, name, Scopes::all())
            .unwrap_or_else(|e| panic!("token name {name:?}: {e}"));
    }
    let names: Vec<String> = store
        .list_tokens(&t)
        .expect("list")
        .into_iter()
        .map(|info| info.name)
        .collect();
    assert_eq!(names, ["a", "ci-bot_1.v2:prod@example", longest.as_str()]);
}

pub fn token_names_are_unique_among_a_tenants_active_tokens(store: &impl Store) {
    let (a, b) = (tenant("unique-a"), tenant("unique-b"));
    let first = create_token(store, &a, "deploy", Scopes::all()).expect("create");
    assert_bad_request(
        create_token(store, &a, "deploy", Scopes::all()),
        "a second active token with one name",
    );
    assert!(store.authenticate(&first).expect("first").is_some());
    create_token(store, &b, "deploy", Scopes::all()).expect("the same name in another tenant");
    assert_eq!(store.list_tokens(&a).expect("list a").len(), 1);
}

pub fn tokens_belong_to_one_tenant_and_keep_their_scopes(store: &impl Store) {
    let (a, b) = (tenant("owner-a"), tenant("owner-b"));
    let cases = [
        ("ingest-only", "ingest"),
        ("reader", "read"),
        ("admin-only", "admin"),
        ("ingest-read", "ingest,read"),
        ("everything", "ingest,read,admin"),
    ];
    let mut tokens = Vec::new();
    for (name, scopes) in cases {
        let scopes = Scopes::parse(scopes).expect("scopes");
        tokens.push((
            name,
            scopes,
            create_token(store, &a, name, scopes).expect("create"),
        ));
    }
    let token_b = create_token(store, &b, "reader", Scopes::parse("read").expect("scopes"))
        .expect("create b");
    for (name, scopes, token) in &tokens {
        let principal = store.authenticate(token).expect("auth").expect("known");
        assert_eq!(
            (
                principal.tenant.as_str(),
                principal.name.as_str(),
                principal.scopes
            ),
            (a.as_str(), *name, *scopes)
        );
    }
    let listed = store.list_tokens(&a).expect("list a");
    let listed: Vec<(String, Scopes)> = listed.into_iter().map(|i| (i.name, i.scopes)).collect();
    let want: Vec<(String, Scopes)> = tokens
        .iter()
        .map(|(name, scopes, _)| (name.to_string(), *scopes))
        .collect();
    assert_eq!(listed, want);
    let listed_b = store.list_tokens(&b).expect("list b");
    assert_eq!(listed_b.len(), 1, "tenant b lists only its own token");
    // Tenant b cannot revoke a's token by naming it, only its own of the same name.
    assert!(!revoke_token(store, &b, "ingest-only").expect("revoke"));
    assert!(store.authenticate(&tokens[0].2).expect("auth").is_some());
    assert!(revoke_token(store, &b, "reader").expect("revoke b's own"));
    assert!(store.authenticate(&token_b).expect("auth").is_none());
    let principal = store
        .authenticate(&tokens[1].2)
        .expect("auth")
        .expect("a's reader");
    assert_eq!(principal.tenant, a, "revoking b's reader left a's alone");
}

pub fn received_at_never_decreases(store: &impl Store) {
    let (a, b) = (tenant("clock-a"), tenant("clock-b"));
    let started = unix_nanos_now();
    let mut in_append_order: Vec<(TenantId, u64)> = Vec::new();
    for round in 0..40u64 {
        let t = if round % 3 == 0 { &b } else { &a };
        let outcome = append(store, t, anonymous_events(round * 10, 1 + round % 5));
        in_append_order.extend(outcome.receipts.iter().map(|r| (t.clone(), r.seq)));
    }
    let finished = unix_nanos_now();
    let mut last = Timestamp::from_unix_nanos(i64::MIN);
    for (t, seq) in &in_append_order {
        let received_at = stored_event(store, t, *seq).received_at;
        assert!(
            received_at >= last,
            "{t} seq {seq} was received at {received_at}, before {last}"
        );
        last = received_at;
        // The server's clock, not the client's: within the test's run, with a second of slack.
        let nanos = received_at.unix_nanos();
        assert!(
            nanos >= started - 1_000_000_000 && nanos <= finished + 1_000_000_000,
            "{t} seq {seq}: received_at {received_at} is not the time of the append"
        );
    }
}

/// Random batches for the property test: each event is an id from a small pool (so ids
/// repeat inside and across batches), or no id.
pub fn arb_batches() -> impl Strategy<Value = Vec<Vec<Option<u8>>>> {
    let event = prop_oneof![3 => (0u8..30).prop_map(Some), 1 => Just(None)];
    prop::collection::vec(prop::collection::vec(event, 1..=50), 1..=6)
}

pub fn random_batches_keep_the_log_dense_and_verifiable(
    store: &impl Store,
    batches: &[Vec<Option<u8>>],
) {
    let t = tenant("random");
    let mut seq_of_id: HashMap<u8, (u64, [u8; 32])> = HashMap::new();
    let mut n_new = 0u64;
    let mut n_anonymous = 0u64;
    for batch in batches {
        let events = batch
            .iter()
            .map(|id| match id {
                // The body is a function of the id, so a repeated id is a replay.
                Some(k) => event(Some(&format!("p-{k}")), u64::from(*k)),
                None => {
                    n_anonymous += 1;
                    event(None, 1000 + n_anonymous)
                }
            })
            .collect();
        let outcome = append(store, &t, events);
        assert_eq!(outcome.receipts.len(), batch.len());
        for (id, receipt) in batch.iter().zip(&outcome.receipts) {
            let first_seen = match id {
                Some(k) => match seq_of_id.entry(*k) {
                    Entry::Occupied(known) => {
                        assert_eq!(
                            (receipt.seq, receipt.leaf_hash),
                            *known.get(),
                            "replay of p-{k}"
                        );
                        false
                    }
                    Entry::Vacant(slot) => {
                        slot.insert((receipt.seq, receipt.leaf_hash));
                        true
                    }
                },
                None => true,
            };
            if first_seen {
                n_new += 1;
                assert_eq!(receipt.seq, n_new, "new events take the next seq, in order");
            }
        }
        assert_eq!(outcome.tree_size, n_new);
    }
    let n_distinct = seq_of_id.len() as u64 + n_anonymous;
    assert_eq!(tree_size(store, &t), n_distinct);
    assert_verify_clean(store, &t, n_distinct);
}

pub fn events_by_seq_come_in_the_order_asked_and_skip_absent_seqs(store: &impl Store) {
    let t = tenant("byseq");
    append(store, &t, anonymous_events(1, 30));
    let asked = [7, 3, 30, 31, 1, 3, 0];
    let got: Vec<u64> = store
        .events(&t, &asked)
        .expect("events")
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(got, vec![7, 3, 30, 1, 3]);
    for event in store.events(&t, &[5, 9]).expect("events") {
        let single = stored_event(store, &t, event.seq);
        assert_eq!(event.canonical, single.canonical);
        assert_eq!(event.leaf_hash, single.leaf_hash);
    }
    assert!(
        store
            .events(&tenant("nobody"), &[1])
            .expect("events")
            .is_empty()
    );
}

pub fn bulk_inclusion_proofs_equal_single_ones(store: &impl Store) {
    let t = tenant("bulkproofs");
    append(store, &t, anonymous_events(1, 300));
    let checkpoint = sign_now(store, &t);
    let leaves: Vec<u64> = vec![0, 1, 2, 255, 256, 299, 17, 17];
    let bulk = store
        .inclusion_proofs(&t, checkpoint.size, &leaves)
        .expect("bulk proofs");
    assert_eq!(bulk.len(), leaves.len());
    for (leaf_index, proof) in leaves.iter().zip(&bulk) {
        let (leaf, single) = store
            .inclusion_proof(&t, *leaf_index, checkpoint.size)
            .expect("proof");
        assert_eq!(proof, &single, "leaf {leaf_index}");
        verify_inclusion(*leaf_index, checkpoint.size, &leaf, proof, &checkpoint.root)
            .expect("verifies");
    }
    assert_bad_request(
        store.inclusion_proofs(&t, checkpoint.size, &[300]),
        "a leaf outside the tree",
    );
    assert_bad_request(
        store.inclusion_proofs(&t, checkpoint.size + 1, &[0]),
        "a size beyond the tree",
    );
}

pub fn notes_are_signed_with_the_log_key_but_never_as_checkpoints(store: &impl Store) {
    let t = tenant("notes");
    store.ensure_tenant(&t).expect("tenant");
    let note = store
        .sign_note(&t, "auditlog export v1\nsomething\n")
        .expect("sign");
    let body = verifier(store, &t)
        .verify(&note)
        .expect("verifies with the log key");
    assert_eq!(body, "auditlog export v1\nsomething\n");
    let origin = latest_checkpoint(store, &t)
        .map_or_else(|| format!("auditlog/{}", t.as_str()), |cp| cp.origin);
    assert_bad_request(
        store.sign_note(&t, &format!("{origin}\n1\nAAAA\n")),
        "a checkpoint-shaped note",
    );
}

pub fn every_tenant_is_listed(store: &impl Store) {
    for name in ["listed-b", "listed-a"] {
        store.ensure_tenant(&tenant(name)).expect("tenant");
    }
    let names: Vec<String> = store
        .tenants()
        .expect("tenants")
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    assert!(names.contains(&"listed-a".to_owned()) && names.contains(&"listed-b".to_owned()));
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

fn create_token(
    store: &impl Store,
    tenant: &TenantId,
    name: &str,
    scopes: Scopes,
) -> Result<String, StoreError> {
    store.create_token(tenant, name, scopes, &Actor::operator())
}

fn revoke_token(store: &impl Store, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
    store.revoke_token(tenant, name, &Actor::operator())
}

fn admin_actor() -> Actor {
    Actor::new(
        "root-admin",
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 44)),
        "panel",
    )
}

pub fn people_sign_in_and_their_sessions_end(store: &impl Store) {
    let t = tenant("people");
    let other = tenant("people-other");
    let hash = hash_password("a long enough password").expect("hash");
    store
        .create_person(&t, "alice", Role::Auditor, &hash, &admin_actor())
        .expect("create");
    assert!(
        matches!(
            store.create_person(&t, "alice", Role::Viewer, &hash, &admin_actor()),
            Err(StoreError::BadRequest(_))
        ),
        "names are unique in a tenant"
    );
    for bad in ["", "has space", "new\nline", "<script>"] {
        assert_bad_request(
            store.create_person(&t, bad, Role::Viewer, &hash, &admin_actor()),
            &format!("person name {bad:?}"),
        );
    }
    let credential = store
        .credential(&t, "alice")
        .expect("credential")
        .expect("alice exists");
    assert_eq!(credential.person.role, Role::Auditor);
    assert!(crate::people::verify_password(
        &credential.password_hash,
        "a long enough password"
    ));
    assert!(store.credential(&other, "alice").expect("other").is_none());
    assert!(
        !store.tenant_exists(&tenant("never-made")).expect("exists"),
        "asking does not create a tenant"
    );

    let limits = SessionLimits::default();
    let session = store
        .create_session(&t, "alice", limits)
        .expect("session")
        .expect("alice may sign in");
    assert!(!session.secret.contains(&session.info.csrf));
    let live = store
        .session(&session.secret, limits)
        .expect("lookup")
        .expect("live");
    assert_eq!(
        (live.tenant.as_str(), live.person.as_str(), live.role),
        (t.as_str(), "alice", Role::Auditor)
    );
    assert_eq!(live.csrf, session.info.csrf);
    assert!(
        store
            .session("alsess_nope", limits)
            .expect("unknown")
            .is_none()
    );
    assert!(store.session("", limits).expect("empty").is_none());
    assert!(store.end_session(&session.secret).expect("end"));
    assert!(
        store
            .session(&session.secret, limits)
            .expect("ended")
            .is_none()
    );
    assert!(!store.end_session(&session.secret).expect("end twice"));

    // A new password and disabling both end every session.
    let s1 = store
        .create_session(&t, "alice", limits)
        .expect("s1")
        .expect("s1");
    let new_hash = hash_password("another long password").expect("hash");
    assert!(
        store
            .set_password(&t, "alice", &new_hash, &admin_actor())
            .expect("set")
    );
    assert!(store.session(&s1.secret, limits).expect("after").is_none());
    let s2 = store
        .create_session(&t, "alice", limits)
        .expect("s2")
        .expect("s2");
    assert!(
        store
            .disable_person(&t, "alice", &admin_actor())
            .expect("disable")
    );
    assert!(
        store
            .session(&s2.secret, limits)
            .expect("disabled")
            .is_none()
    );
    assert!(
        store
            .create_session(&t, "alice", limits)
            .expect("s3")
            .is_none(),
        "a disabled person gets no session"
    );
    assert!(
        !store
            .disable_person(&t, "alice", &admin_actor())
            .expect("again")
    );
    assert!(
        !store
            .disable_person(&other, "alice", &admin_actor())
            .expect("other")
    );
    let listed = store.list_people(&t).expect("list");
    assert_eq!(listed.len(), 1);
    assert!(listed[0].disabled_at.is_some());
    assert!(store.list_people(&other).expect("list other").is_empty());
}

pub fn sessions_expire_when_idle_or_old(store: &impl Store) {
    let t = tenant("expiry");
    let hash = hash_password("a long enough password").expect("hash");
    store
        .create_person(&t, "bob", Role::Viewer, &hash, &admin_actor())
        .expect("create");
    let idle = SessionLimits {
        idle_secs: 2,
        absolute_secs: 3600,
    };
    let session = store
        .create_session(&t, "bob", idle)
        .expect("s")
        .expect("s");
    assert!(
        store
            .session(&session.secret, idle)
            .expect("fresh")
            .is_some()
    );
    std::thread::sleep(Duration::from_millis(3100));
    assert!(
        store
            .session(&session.secret, idle)
            .expect("idle")
            .is_none(),
        "an idle session ends"
    );
    let old = SessionLimits {
        idle_secs: 3600,
        absolute_secs: 2,
    };
    let session = store.create_session(&t, "bob", old).expect("s").expect("s");
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1100));
        let _ = store.session(&session.secret, old).expect("use");
    }
    assert!(
        store.session(&session.secret, old).expect("old").is_none(),
        "a used but old session ends"
    );
}

/// Wait until the tenant's log has at least `size` events.
fn wait_for_size(store: &impl Store, t: &TenantId, size: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.tree_size(t).expect("size") < size {
        assert!(
            Instant::now() < deadline,
            "the trail did not reach {size} events"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    store
        .events_from(t, 1, 1000)
        .expect("events")
        .into_iter()
        .map(|e| String::from_utf8(e.canonical).expect("utf-8"))
        .collect()
}

pub fn administration_is_recorded_in_the_trail_without_secrets(store: &impl Store) {
    let t = tenant("trail");
    let actor = admin_actor();
    let token = store
        .create_token(
            &t,
            "deployer",
            Scopes::parse("ingest").expect("scopes"),
            &actor,
        )
        .expect("token");
    assert!(store.revoke_token(&t, "deployer", &actor).expect("revoke"));
    let password = "secret horse battery staple";
    let hash = hash_password(password).expect("hash");
    store
        .create_person(&t, "carol", Role::Viewer, &hash, &actor)
        .expect("person");
    let new_hash = hash_password("another secret password").expect("hash");
    assert!(
        store
            .set_password(&t, "carol", &new_hash, &actor)
            .expect("pw")
    );
    assert!(store.disable_person(&t, "carol", &actor).expect("disable"));
    let events = wait_for_size(store, &t.trail(), 5);
    assert_eq!(
        store.tree_size(&t).expect("size"),
        0,
        "the tenant's events are untouched"
    );
    let want = [
        ("CREATE", "auditlog.token", "deployer"),
        ("DELETE", "auditlog.token", "deployer"),
        ("CREATE", "auditlog.user", "carol"),
        ("UPDATE", "auditlog.user", "carol"),
        ("UPDATE", "auditlog.user", "carol"),
    ];
    assert_eq!(events.len(), want.len(), "{events:#?}");
    for (event, (action, table, key)) in events.iter().zip(want) {
        let value = parse(event.as_bytes(), &JsonLimits::default()).expect("json");
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        assert_eq!(field("action").as_deref(), Some(action), "{event}");
        assert_eq!(field("table").as_deref(), Some(table), "{event}");
        assert_eq!(field("primary_key").as_deref(), Some(key), "{event}");
        assert_eq!(field("user").as_deref(), Some("root-admin"), "{event}");
        assert_eq!(field("ip").as_deref(), Some("192.0.2.44"), "{event}");
        for secret in [
            token.as_str(),
            password,
            hash.as_str(),
            new_hash.as_str(),
            "argon2",
        ] {
            assert!(
                !event.contains(secret),
                "a trail record holds a secret: {event}"
            );
        }
    }
    assert!(
        store
            .verify(&t, &|_, _| {})
            .expect("verify")
            .findings
            .is_empty()
    );
}

pub fn records_go_to_the_tenants_trail_log(store: &impl Store) {
    let t = tenant("records");
    store.ensure_tenant(&t).expect("tenant");
    let event = TrailEvent::new(&admin_actor(), "SEARCH", "auditlog.search")
        .message("root-admin searched: <script>alert(1)</script>");
    store.record(&t, &event).expect("record");
    store.record(&t, &event).expect("record twice");
    // In a tree of their own: the tenant's events keep their seqs.
    let events = wait_for_size(store, &t.trail(), 2);
    assert_eq!(events.len(), 2);
    assert!(events[0].contains("\"action\":\"SEARCH\""), "{}", events[0]);
    assert!(
        events[0].contains("\"tenant\":\"records.trail\""),
        "{}",
        events[0]
    );
    assert!(events[0].contains("<script>alert(1)</script>"));
    assert_eq!(store.pending_records().expect("pending"), 0);
    assert_eq!(store.tree_size(&t).expect("size"), 0);
    let outcome = store
        .append_blocking(
            &t,
            vec![prepared(
                r#"{"user":"first","ip":"192.0.2.1","action":"SEND","table":"t"}"#,
            )],
        )
        .expect("append");
    assert_eq!(outcome.receipts[0].seq, 1);
    // Signed and verified like any log, and listed among the logs.
    assert!(
        store
            .verify(&t.trail(), &|_, _| {})
            .expect("verify")
            .is_clean()
    );
    assert!(store.tenants().expect("tenants").contains(&t.trail()));
    // The operator's own actions are not recorded.
    store
        .record(
            &t,
            &TrailEvent::new(&Actor::operator(), "SEARCH", "auditlog.search"),
        )
        .expect("record");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(store.tree_size(&t.trail()).expect("size"), 2);
}

pub fn a_sessions_csrf_token_is_derived_from_its_secret(store: &impl Store) {
    let t = tenant("csrf");
    let hash = hash_password("correct horse battery staple").expect("hash");
    store
        .create_person(&t, "alice", Role::Admin, &hash, &Actor::operator())
        .expect("person");
    let limits = SessionLimits::default();
    let first = store
        .create_session(&t, "alice", limits)
        .expect("session")
        .expect("alice may sign in");
    let second = store
        .create_session(&t, "alice", limits)
        .expect("session")
        .expect("alice may sign in");
    assert_eq!(
        first.info.csrf,
        crate::people::csrf_token(&first.secret),
        "the CSRF token is base64url(SHA-256(\"auditlog csrf v1\" || secret))"
    );
    assert_ne!(
        first.info.csrf, second.info.csrf,
        "each session has its own"
    );
    assert_ne!(first.info.csrf, first.secret);
    for session in [&first, &second] {
        let looked_up = store
            .session(&session.secret, limits)
            .expect("lookup")
            .expect("live session");
        assert_eq!(
            looked_up.csrf, session.info.csrf,
            "a lookup gives the token sign-in gave"
        );
    }
}

pub fn disabling_a_person_revokes_the_tokens_they_created_and_records_it(store: &impl Store) {
    let t = tenant("creators");
    let hash = hash_password("correct horse battery staple").expect("hash");
    for name in ["dave", "erin"] {
        store
            .create_person(&t, name, Role::Admin, &hash, &Actor::operator())
            .expect("person");
    }
    let person = |name: &str| Actor::new(name, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 45)), "panel");
    let ingest = Scopes::parse("ingest").expect("scopes");
    let by_dave = store
        .create_token(&t, "dave-ci", ingest, &person("dave"))
        .expect("token");
    let by_dave_revoked = store
        .create_token(&t, "dave-old", ingest, &person("dave"))
        .expect("token");
    assert!(
        store
            .revoke_token(&t, "dave-old", &person("dave"))
            .expect("revoke")
    );
    let by_erin = store
        .create_token(&t, "erin-ci", ingest, &person("erin"))
        .expect("token");
    let by_operator = store
        .create_token(&t, "deploy", ingest, &Actor::operator())
        .expect("token");
    let trail_before = store.tree_size(&t.trail()).expect("size");
    let _ = wait_for_size(store, &t.trail(), 4);

    assert!(
        store
            .disable_person(&t, "dave", &person("erin"))
            .expect("disable")
    );
    assert!(
        store.authenticate(&by_dave).expect("auth").is_none(),
        "a disabled person's token stops working"
    );
    assert!(
        store
            .authenticate(&by_dave_revoked)
            .expect("auth")
            .is_none()
    );
    assert!(
        store.authenticate(&by_erin).expect("auth").is_some(),
        "another person's token stays"
    );
    assert!(
        store.authenticate(&by_operator).expect("auth").is_some(),
        "the operator's token stays"
    );
    let listed = store.list_tokens(&t).expect("tokens");
    let revoked = |name: &str| {
        listed
            .iter()
            .find(|token| token.name == name)
            .unwrap_or_else(|| panic!("token {name} listed"))
            .revoked_at
            .is_some()
    };
    assert!(revoked("dave-ci") && revoked("dave-old"));
    assert!(!revoked("erin-ci") && !revoked("deploy"));

    // The trail: dave-old's own revocation before, then the disable and dave-ci's revocation
    // (recorded once: dave-old was revoked already).
    let events = wait_for_size(store, &t.trail(), 6);
    assert!(trail_before <= 4);
    let tail: Vec<(String, String, String)> = events[4..]
        .iter()
        .map(|event| {
            let value = parse(event.as_bytes(), &JsonLimits::default()).expect("json");
            let field = |name: &str| {
                value
                    .get(name)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            (field("action"), field("table"), field("primary_key"))
        })
        .collect();
    let want = [
        ("UPDATE", "auditlog.user", "dave"),
        ("DELETE", "auditlog.token", "dave-ci"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(tail, want, "{events:#?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        store.tree_size(&t.trail()).expect("size"),
        6,
        "nothing else recorded"
    );
}
