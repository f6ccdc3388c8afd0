//! Engine behaviour beyond matching: the index survives a restart, follows a replaced log and
//! rebuilds to the same answers.

use std::sync::Arc;
use std::time::Duration;

use auditlog_query::parse;
use auditlog_search::{SearchEngine, SearchOptions, SearchRequest, SortField, SortOrder};
use auditlog_store::{SqliteStore, Store, StoreOptions};

use crate::support::{Rng, Setup, now};

fn events(seed: u64, count: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|idx| {
            format!(
                r#"{{"id":"s{seed}-{idx}","user":"u{}","ip":"10.0.0.{}","action":"UPDATE","table":"t","primary_key":"{idx}","after":{{"account_id":{}}}}}"#,
                rng.below(5),
                rng.below(200),
                4700 + rng.below(20)
            )
        })
        .collect()
}

fn seqs(
    engine: &SearchEngine,
    setup_tenant: &auditlog_core::tenant::TenantId,
    q: &str,
) -> Vec<u64> {
    engine
        .search(
            setup_tenant,
            &SearchRequest {
                query: parse(q).expect("query"),
                sort: SortField::Seq,
                order: SortOrder::Asc,
                limit: 1000,
                cursor: None,
            },
            now(),
        )
        .expect("search")
        .hits
        .into_iter()
        .map(|(_, seq)| seq)
        .collect()
}

fn reopen(dir: &std::path::Path) -> (Arc<dyn Store>, SearchEngine) {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.join("data"), StoreOptions::default()).expect("store"));
    let engine = SearchEngine::open(
        store.clone(),
        &dir.join("data").join("index"),
        SearchOptions {
            commit_interval: Duration::from_millis(100),
            writer_memory_bytes: 15 << 20,
            visible_timeout: Duration::from_secs(30),
            ..SearchOptions::default()
        },
    )
    .expect("engine");
    (store, engine)
}

#[test]
fn the_index_survives_a_restart_without_reindexing() {
    let setup = Setup::new();
    setup.append(&events(1, 300));
    let before = seqs(&setup.engine, &setup.tenant, "account_id:4711");
    assert!(!before.is_empty());
    let Setup {
        store,
        engine,
        tenant,
        dir,
    } = setup;
    drop(engine);
    drop(store);
    let (_store, engine) = reopen(dir.path());
    // The committed record is read back: nothing to index again.
    assert_eq!(engine.indexed_through(&tenant).expect("indexed"), 300);
    assert_eq!(seqs(&engine, &tenant, "account_id:4711"), before);
}

#[test]
fn an_index_that_does_not_match_the_log_is_rebuilt_from_the_log() {
    let setup = Setup::new();
    setup.append(&events(1, 200));
    let Setup {
        store,
        engine,
        tenant,
        dir,
    } = setup;
    drop(engine);
    drop(store);
    // Another log in the same place (restored from elsewhere): same size, other events.
    let data = dir.path().join("data");
    for entry in std::fs::read_dir(&data).expect("data dir").flatten() {
        if entry.file_name() != "index" && entry.file_name() != "keys" {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(path).expect("rm");
            } else {
                std::fs::remove_file(path).expect("rm");
            }
        }
    }
    let (store, engine) = reopen(dir.path());
    store.ensure_tenant(&tenant).expect("tenant");
    let other = Setup {
        store: store.clone(),
        engine,
        tenant: tenant.clone(),
        dir,
    };
    other.append(&events(2, 200));
    let all = seqs(&other.engine, &tenant, "");
    assert_eq!(all, (1..=200).collect::<Vec<u64>>());
    // Ids of the old log are gone from the index, those of the new one are there.
    assert!(seqs(&other.engine, &tenant, "id:s1-5").is_empty());
    assert_eq!(seqs(&other.engine, &tenant, "id:s2-5"), vec![6]);
}

#[test]
fn a_rebuild_gives_the_same_answers() {
    let setup = Setup::new();
    setup.append(&events(3, 250));
    setup.append(&events(4, 250));
    let queries = [
        "",
        "account_id:4711",
        "user:u1 -ip:10.0.0.0/30",
        "u2",
        "pk:1*",
    ];
    let before: Vec<Vec<u64>> = queries
        .iter()
        .map(|q| seqs(&setup.engine, &setup.tenant, q))
        .collect();
    let mut reported = Vec::new();
    let progress = std::sync::Mutex::new(&mut reported);
    setup
        .engine
        .rebuild(&setup.tenant, &|done, total| {
            progress.lock().expect("lock").push((done, total));
        })
        .expect("rebuild");
    assert_eq!(reported.last(), Some(&(500, 500)));
    let after: Vec<Vec<u64>> = queries
        .iter()
        .map(|q| seqs(&setup.engine, &setup.tenant, q))
        .collect();
    assert_eq!(after, before);
}
