//! The conformance suite (`auditlog_store::conformance`, feature `conformance`) instantiated
//! for `SqliteStore`, and the checks that only SQLite's files can answer.

use auditlog_store::conformance::{
    StoreProbe, all_events, anonymous_events, append, tenant, tree_size,
};

mod sqlite {
    use std::time::Duration;

    use auditlog_core::tenant::TenantId;
    use auditlog_store::{SqliteStore, StoreOptions};
    use rusqlite::{Connection, OpenFlags};

    use super::StoreProbe;
    use auditlog_store::store_conformance_suite;

    /// The temporary data directory of one store.
    pub struct SqliteDir(tempfile::TempDir);

    impl StoreProbe for SqliteDir {
        fn events_with_dictionary(&self, tenant: &TenantId) -> Option<u64> {
            let conn = Connection::open_with_flags(
                self.0.path().join("auditlog.db"),
                OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .expect("open the database read-only");
            let count: i64 = conn
                .query_row(
                    "SELECT count(*) FROM events JOIN tenants ON tenants.id = events.tenant
                     WHERE tenants.name = ?1 AND events.dict <> 0",
                    [tenant.as_str()],
                    |row| row.get(0),
                )
                .expect("count events stored with a dictionary");
            Some(count as u64)
        }
    }

    pub fn sqlite_store() -> (SqliteStore, SqliteDir) {
        let dir = tempfile::Builder::new()
            .prefix("auditlog-store-it-")
            .tempdir()
            .expect("tempdir");
        let options = StoreOptions {
            checkpoint_interval: Duration::from_millis(100),
            ..StoreOptions::default()
        };
        let store = SqliteStore::open(dir.path(), options).expect("open sqlite store");
        (store, SqliteDir(dir))
    }

    store_conformance_suite!(sqlite_store());

    /// No commit checkpoints the WAL (`wal_autocheckpoint = 0`); the checkpointer thread copies
    /// it into the database file while the store is open, empties the WAL file once nothing
    /// has been written for a while, and the events read back whole.
    #[test]
    fn the_checkpointer_copies_committed_events_into_the_database_file() {
        let (store, dir) = sqlite_store();
        let db = dir.0.path().join("auditlog.db");
        let wal = dir.0.path().join("auditlog.db-wal");
        let size = |path: &std::path::Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let before = size(&db);
        let t = super::tenant("ckpt");
        for batch in 0..60 {
            super::append(&store, &t, super::anonymous_events(batch * 100, 100));
        }
        let wal_after_writes = size(&wal);
        assert!(
            wal_after_writes > 4 << 20,
            "WAL of {wal_after_writes} bytes"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let copied = loop {
            let (db_bytes, wal_bytes) = (size(&db), size(&wal));
            if db_bytes > before + 1024 * 1024 && wal_bytes == 0 {
                break db_bytes;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the database file stayed at {db_bytes} bytes, the WAL at {wal_bytes}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(copied > before);
        assert_eq!(super::tree_size(&store, &t), 6000);
        assert_eq!(super::all_events(&store, &t).len(), 6000);
        // Writing goes on after the WAL was emptied.
        super::append(&store, &t, super::anonymous_events(6000, 10));
        assert_eq!(super::tree_size(&store, &t), 6010);
    }

    /// The database, its WAL and shared memory, the lock and the key files are readable by
    /// their owner only.
    #[test]
    fn the_data_files_are_private_to_their_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let (store, dir) = sqlite_store();
        let t = super::tenant("modes");
        super::append(&store, &t, super::anonymous_events(0, 10));
        let mode = |name: &str| {
            let path = dir.0.path().join(name);
            let meta = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{} exists: {e}", path.display()));
            meta.permissions().mode() & 0o777
        };
        for name in [
            "auditlog.db",
            "auditlog.db-wal",
            "auditlog.db-shm",
            "lock",
            "keys/modes.key",
        ] {
            assert_eq!(mode(name), 0o600, "mode of {name}");
        }
        assert_eq!(mode("keys"), 0o700);
        drop(store);
    }

    /// A database of an older install with group- and world-readable files is made private
    /// when it is opened again.
    #[test]
    fn an_open_makes_older_readable_database_files_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let (store, dir) = sqlite_store();
        super::append(&store, &super::tenant("old"), super::anonymous_events(0, 3));
        drop(store);
        let db = dir.0.path().join("auditlog.db");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let store = SqliteStore::open_shared(dir.0.path(), StoreOptions::default()).expect("open");
        let mode = std::fs::metadata(&db).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(store);
    }

    /// Sessions keep only the hash of their secret: no CSRF token or anything else a thief of
    /// the file could present is stored.
    #[test]
    fn sessions_store_no_csrf_token() {
        use auditlog_store::{Actor, Role, SessionLimits, Store as _};
        let (store, dir) = sqlite_store();
        let t = super::tenant("csrfrows");
        let hash =
            auditlog_store::people::hash_password("correct horse battery staple").expect("hash");
        store
            .create_person(&t, "alice", Role::Admin, &hash, &Actor::operator())
            .expect("person");
        let session = store
            .create_session(&t, "alice", SessionLimits::default())
            .expect("session")
            .expect("signed in");
        let conn = Connection::open_with_flags(
            dir.0.path().join("auditlog.db"),
            OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the database read-only");
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('sessions')")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("columns")
            .collect::<Result<_, _>>()
            .expect("columns");
        assert!(!columns.iter().any(|c| c == "csrf"), "{columns:?}");
        let dump: Vec<Vec<u8>> = conn
            .prepare("SELECT hash FROM sessions")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(dump.len(), 1);
        for secret in [&session.secret, &session.info.csrf] {
            assert!(
                !dump
                    .iter()
                    .any(|row| row.windows(secret.len()).any(|w| w == secret.as_bytes())),
                "a session row holds a usable secret"
            );
        }
        drop(conn);
        drop(store);
    }
}
