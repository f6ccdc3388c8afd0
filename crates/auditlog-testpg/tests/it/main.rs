//! The private PostgreSQL cluster of `auditlog-testpg`: it starts, serves a fresh database
//! per caller, and is stopped by its guard, also when the test that owns it panics.

use std::path::PathBuf;

use auditlog_testpg::PgCluster;

fn running(data_dir: &std::path::Path) -> bool {
    data_dir.join("postmaster.pid").exists()
}

#[test]
fn a_cluster_serves_fresh_databases_and_stops_when_dropped() {
    let cluster = PgCluster::start().expect("start a private PostgreSQL");
    let data_dir = cluster.data_dir();
    assert!(running(&data_dir), "{}", cluster.log_text());
    let url = cluster
        .create_database("first_test")
        .expect("create database");
    assert_eq!(
        url,
        format!("postgres://test@127.0.0.1:{}/first_test", cluster.port())
    );
    cluster
        .psql(
            "first_test",
            "CREATE TABLE t (tenant text, seq bigint, PRIMARY KEY (tenant, seq))",
        )
        .expect("create table");
    cluster
        .psql(
            "first_test",
            "INSERT INTO t VALUES ('acme', 1), ('acme', 2)",
        )
        .expect("insert");
    assert_eq!(
        cluster
            .psql("first_test", "SELECT count(*) FROM t")
            .expect("count"),
        "2"
    );
    cluster
        .create_database("second_test")
        .expect("create database");
    assert!(
        cluster
            .psql("second_test", "SELECT count(*) FROM t")
            .is_err(),
        "a second database is empty"
    );
    assert!(cluster.create_database("no-dashes").is_err());
    assert!(
        cluster
            .create_database("x; DROP DATABASE first_test")
            .is_err()
    );
    drop(cluster);
    assert!(!running(&data_dir), "the server stopped");
    assert!(!data_dir.exists(), "its files are removed");
}

#[test]
fn a_panicking_test_still_stops_its_cluster() {
    let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
    let outcome = std::thread::spawn(move || {
        let cluster = PgCluster::start().expect("start a private PostgreSQL");
        tx.send(cluster.data_dir()).expect("send");
        panic!("the test fails while its cluster runs");
    })
    .join();
    assert!(outcome.is_err(), "the thread panicked");
    let data_dir = rx.recv().expect("the cluster had started");
    assert!(
        !running(&data_dir),
        "the guard stopped the server while unwinding"
    );
    assert!(!data_dir.exists());
}
