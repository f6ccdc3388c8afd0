//! The SQLite baseline of the search benchmark: the generated events in one SQLite database
//! with btree indexes for the column queries and an FTS5 index for bare terms, answering the
//! standard query set that our own search engine answers in the same run.
//!
//! It is meant to be a fair, competent baseline:
//! - WAL, `synchronous=FULL` (every commit fsyncs the WAL, durability as ours), one
//!   transaction per `batch` events, prepared (cached) statements, indexes and the FTS index
//!   maintained while inserting (no bulk load, no rebuild or `optimize` afterwards);
//! - an index for every ordered query, so none of them sorts the table (checked with
//!   `EXPLAIN QUERY PLAN` in [`self_check`]); all of them are covering indexes;
//! - a contentless FTS5 table (`content=''`, rowid = seq, `columnsize=0`): only the postings
//!   are stored, the text stays in `events.body`.
//!
//! # FTS text and terms
//!
//! The indexed text of an event is its text columns (`id`, `user`, `ip`, `primary_key`,
//! `action`, `table`, `source`, `message`) and every string and number at any depth in
//! `before`, `after` and `context` (numbers in serde_json's text form), one per line; like the
//! query language's bare terms, not `time` and not booleans or nulls. The `unicode61`
//! tokenizer (with `remove_diacritics 0`, so folding is lowercasing only, as `fold`) splits
//! it into alphanumeric runs, so a term finds a *word* of a value: `2442` finds
//! `"account_id": 2442` and "customer 2442", and also `"12.2442"`, which the query language's
//! whole-value equality would not. [`self_check`] prints how far apart the two are on the
//! standard terms.
//!
//! `detail=full` (positions kept) so that phrases, which the query language has, work too;
//! `detail=none` would make the index smaller and faster for the single-token queries here.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

/// Schema of [`SqliteBaseline::create`]. The rowid (`seq`) is the last key of every index,
/// so `(time)` orders by `(time, seq)` without storing `seq` a second time; likewise the
/// other indexes.
const SCHEMA: &str = "
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        time INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        user TEXT,
        ip TEXT,
        action TEXT,
        tbl TEXT,
        primary_key TEXT,
        message TEXT,
        source TEXT,
        body TEXT NOT NULL
    );
    -- newest, page_after, position: (time, seq).
    CREATE INDEX events_time ON events (time);
    -- action_newest: (action, time, seq).
    CREATE INDEX events_action_time ON events (action, time);
    -- user_table_by_pk: (user, tbl, primary_key, seq).
    CREATE INDEX events_user_tbl_pk ON events (user, tbl, primary_key);
    -- facet_user: a covering index, grouped by user within one action without sorting.
    CREATE INDEX events_action_user ON events (action, user);
    -- Bare terms. Contentless (rowid = seq), no per-document sizes (no bm25 ranking needed).
    CREATE VIRTUAL TABLE fts USING fts5 (
        text,
        content = '',
        columnsize = 0,
        detail = full,
        tokenize = 'unicode61 remove_diacritics 0'
    );
";

const INSERT_EVENT: &str = "INSERT INTO events
    (seq, time, received_at, user, ip, action, tbl, primary_key, message, source, body)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
const INSERT_FTS: &str = "INSERT INTO fts (rowid, text) VALUES (?1, ?2)";

const Q_NEWEST: &str = "SELECT seq FROM events ORDER BY time DESC, seq DESC LIMIT ?1";
const Q_ACTION_NEWEST: &str =
    "SELECT seq FROM events WHERE action = ?1 ORDER BY time DESC, seq DESC LIMIT ?2";
/// `term_newest` for few matches (SQLite's own plan): the matching rowids come from FTS5,
/// each is looked up in `events` for its time, and all matches are sorted (FTS5 yields rowid
/// order, which need not be time order). Cost grows with the number of matches.
const Q_TERM_NEWEST_SORT: &str = "SELECT e.seq FROM fts JOIN events AS e ON e.seq = fts.rowid
    WHERE fts MATCH ?1 ORDER BY e.time DESC, e.seq DESC LIMIT ?2";
/// `term_newest` for many matches: the matching rowids go into a temporary b-tree, then
/// `events_time` is walked newest first, probing it, until `limit` are found. Cost grows with
/// the number of matches plus (table size × limit / matches) index entries.
const Q_TERM_NEWEST_SCAN: &str = "SELECT seq FROM events INDEXED BY events_time
    WHERE seq IN (SELECT rowid FROM fts WHERE fts MATCH ?1)
    ORDER BY time DESC, seq DESC LIMIT ?2";
/// How much more a match costs in [`Q_TERM_NEWEST_SORT`] (a table lookup and a sort) than an
/// index entry in [`Q_TERM_NEWEST_SCAN`] (measured on 20,000 events: 10–15×; the choice is not sensitive to it).
const SORT_COST_PER_SCAN_ENTRY: u64 = 10;
const Q_USER_TABLE_BY_PK: &str = "SELECT seq FROM events WHERE user = ?1 AND tbl = ?2
    ORDER BY primary_key ASC, seq ASC LIMIT ?3";
const Q_COUNT_TERM: &str = "SELECT count(*) FROM fts WHERE fts MATCH ?1";
const Q_FACET_USER: &str = "SELECT user, count(*) AS n FROM events
    WHERE action = ?1 AND user IS NOT NULL GROUP BY user ORDER BY n DESC, user ASC LIMIT ?2";
/// A row-value comparison, which SQLite turns into a range on `events_time`.
const Q_PAGE_AFTER: &str = "SELECT seq FROM events WHERE (time, seq) < (?1, ?2)
    ORDER BY time DESC, seq DESC LIMIT ?3";
const Q_POSITION: &str =
    "SELECT time, seq FROM events ORDER BY time DESC, seq DESC LIMIT 1 OFFSET ?1";

pub struct SqliteBaseline {
    conn: Connection,
    path: PathBuf,
    /// Events in the table (for the plan choice of `term_newest`).
    rows: u64,
}

/// The two plans of `term_newest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermPlan {
    Sort,
    Scan,
}

impl SqliteBaseline {
    /// New database file at `path` (WAL, synchronous=FULL) with the schema above.
    pub fn create(path: &Path) -> SqliteBaseline {
        assert!(!path.exists(), "{} already exists", path.display());
        let conn = Connection::open(path).expect("open the baseline database");
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA cache_size = -65536; -- 64 MiB page cache
             PRAGMA temp_store = MEMORY;",
        )
        .expect("set the pragmas");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("read journal_mode");
        assert_eq!(mode, "wal", "the baseline must run in WAL mode");
        conn.execute_batch(SCHEMA).expect("create the schema");
        // Room for every statement above, so none is ever re-prepared.
        conn.set_prepared_statement_cache_capacity(32);
        SqliteBaseline {
            conn,
            path: path.to_owned(),
            rows: 0,
        }
    }

    /// Inserts `lines` (generated NDJSON events, seq = index + 1, into an empty database) in
    /// transactions of `batch` events; indexes and FTS are maintained as it goes. Parsing the
    /// JSON and building the FTS text is part of the measured time, as it is for ours.
    pub fn ingest(&mut self, lines: &[String], batch: usize) -> Duration {
        assert!(batch > 0, "batch must be at least 1");
        let start = Instant::now();
        for (chunk_index, chunk) in lines.chunks(batch).enumerate() {
            let received_at = now_nanos();
            let tx = self.conn.transaction().expect("begin a transaction");
            {
                let mut insert_event = tx.prepare_cached(INSERT_EVENT).expect("prepare insert");
                let mut insert_fts = tx.prepare_cached(INSERT_FTS).expect("prepare fts insert");
                for (i, line) in chunk.iter().enumerate() {
                    let seq = (chunk_index * batch + i + 1) as i64;
                    let event = ParsedEvent::parse(line);
                    insert_event
                        .execute(params![
                            seq,
                            event.time,
                            received_at,
                            event.user,
                            event.ip,
                            event.action,
                            event.table,
                            event.primary_key,
                            event.message,
                            event.source,
                            line,
                        ])
                        .expect("insert an event");
                    insert_fts
                        .execute(params![seq, event.fts_text])
                        .expect("insert the FTS text");
                }
            }
            tx.commit().expect("commit a batch");
            self.rows += chunk.len() as u64;
        }
        start.elapsed()
    }

    /// The newest `limit` events.
    pub fn newest(&self, limit: usize) -> Vec<u64> {
        self.seqs(Q_NEWEST, params![limit as i64])
    }

    /// The newest `limit` events with this action.
    pub fn action_newest(&self, action: &str, limit: usize) -> Vec<u64> {
        self.seqs(Q_ACTION_NEWEST, params![action, limit as i64])
    }

    /// A bare term (e.g. an account id "2442"): every event whose FTS text contains the token
    /// (a term of several tokens is a phrase), newest first.
    ///
    /// SQLite cannot know how many events match, so this counts them first (FTS5 reads the
    /// term's doclist only) and picks the cheaper of the two plans, as a careful application
    /// would: sorting all matches when they are few, walking the time index when they are
    /// many (there, `limit` matches turn up after about `rows × limit / matches` entries).
    pub fn term_newest(&self, term: &str, limit: usize) -> Vec<u64> {
        let matches = self.count_term(term);
        if matches == 0 {
            return Vec::new();
        }
        let scan_entries = (self.rows * limit as u64 / matches).min(self.rows);
        let plan = if scan_entries < matches * SORT_COST_PER_SCAN_ENTRY {
            TermPlan::Scan
        } else {
            TermPlan::Sort
        };
        self.term_newest_with(plan, term, limit)
    }

    fn term_newest_with(&self, plan: TermPlan, term: &str, limit: usize) -> Vec<u64> {
        let sql = match plan {
            TermPlan::Sort => Q_TERM_NEWEST_SORT,
            TermPlan::Scan => Q_TERM_NEWEST_SCAN,
        };
        self.seqs(sql, params![fts_string(term), limit as i64])
    }

    /// user = ? AND tbl = ? ordered by primary_key ascending (string order, events without a
    /// primary key first), ties by seq ascending.
    pub fn user_table_by_pk(&self, user: &str, table: &str, limit: usize) -> Vec<u64> {
        self.seqs(Q_USER_TABLE_BY_PK, params![user, table, limit as i64])
    }

    /// How many events contain the token (FTS).
    pub fn count_term(&self, term: &str) -> u64 {
        let count: i64 = self
            .conn
            .prepare_cached(Q_COUNT_TERM)
            .expect("prepare count_term")
            .query_row(params![fts_string(term)], |r| r.get(0))
            .expect("run count_term");
        count as u64
    }

    /// Distinct users with counts among events with this action, most frequent first (ties by
    /// user ascending), at most `limit`. Events without a user are not counted.
    pub fn facet_user(&self, action: &str, limit: usize) -> Vec<(String, u64)> {
        let mut stmt = self
            .conn
            .prepare_cached(Q_FACET_USER)
            .expect("prepare facet_user");
        stmt.query_map(params![action, limit as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .expect("run facet_user")
        .collect::<Result<_, _>>()
        .expect("read facet_user rows")
    }

    /// A keyset page of the newest-first order: the `limit` events right after `after` =
    /// (time, seq) in that order (time < t, or time = t and seq < s).
    pub fn page_after(&self, after: (i64, u64), limit: usize) -> Vec<u64> {
        self.seqs(Q_PAGE_AFTER, params![after.0, after.1 as i64, limit as i64])
    }

    /// (time, seq) of the event at 0-based position `offset` in the newest-first order.
    /// Panics when there are not that many events.
    pub fn position(&self, offset: usize) -> (i64, u64) {
        self.conn
            .prepare_cached(Q_POSITION)
            .expect("prepare position")
            .query_row(params![offset as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .optional()
            .expect("run position")
            .expect("offset is within the table")
    }

    /// Bytes of the database files (db + wal + shm), as they are now (the WAL is not
    /// checkpointed first).
    /// Reads and parses the stored events of `seqs` (what a search page shows), returning
    /// how many were found: so a page costs the baseline what it costs auditlog.
    pub fn load(&self, seqs: &[u64]) -> usize {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT body FROM events WHERE seq = ?1")
            .expect("prepare the body lookup");
        seqs.iter()
            .filter(|seq| {
                let body: Option<String> = stmt.query_row([**seq as i64], |row| row.get(0)).ok();
                body.and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                    .is_some()
            })
            .count()
    }

    pub fn bytes(&self) -> u64 {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut name = self.path.clone().into_os_string();
                name.push(suffix);
                std::fs::metadata(name).ok().map(|m| m.len())
            })
            .sum()
    }

    /// Runs a query whose single column is a seq.
    fn seqs(&self, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Vec<u64> {
        let mut stmt = self.conn.prepare_cached(sql).expect("prepare a query");
        stmt.query_map(params, |r| r.get::<_, i64>(0))
            .expect("run a query")
            .map(|seq| seq.expect("read a seq") as u64)
            .collect()
    }

    /// The `EXPLAIN QUERY PLAN` lines of `sql` (parameters bound to NULL).
    fn plan(&self, sql: &str) -> Vec<String> {
        let mut stmt = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("prepare EXPLAIN QUERY PLAN");
        let nulls = std::iter::repeat_n(rusqlite::types::Null, stmt.parameter_count());
        stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
            .expect("run EXPLAIN QUERY PLAN")
            .collect::<Result<_, _>>()
            .expect("read the plan")
    }
}

/// `term` as one FTS5 string (a phrase of its tokens), so no character of it is syntax.
fn fts_string(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

fn now_nanos() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since_epoch.as_nanos()).expect("now fits in i64 nanoseconds")
}

/// RFC 3339 text to unix nanoseconds.
fn parse_time(text: &str) -> i64 {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .expect("event time is RFC 3339");
    i64::try_from(t.unix_timestamp_nanos()).expect("event time fits in i64 nanoseconds")
}

/// The columns of one generated event and its FTS text.
struct ParsedEvent {
    time: i64,
    user: Option<String>,
    ip: Option<String>,
    action: Option<String>,
    table: Option<String>,
    primary_key: Option<String>,
    message: Option<String>,
    source: Option<String>,
    fts_text: String,
}

/// The text columns that go into the FTS text, besides `message` (as the query language's
/// bare terms: not `time`).
const FTS_COLUMNS: [&str; 7] = [
    "id",
    "user",
    "ip",
    "primary_key",
    "action",
    "table",
    "source",
];

impl ParsedEvent {
    fn parse(line: &str) -> ParsedEvent {
        let event: Value = serde_json::from_str(line).expect("a generated event is JSON");
        let text = |key: &str| event.get(key).and_then(Value::as_str).map(str::to_owned);
        let time = parse_time(
            event
                .get("time")
                .and_then(Value::as_str)
                .expect("a generated event has a time"),
        );
        let mut fts_text = String::with_capacity(line.len());
        for column in FTS_COLUMNS.iter().chain(&["message"]) {
            if let Some(value) = event.get(*column).and_then(Value::as_str) {
                fts_text.push_str(value);
                fts_text.push('\n');
            }
        }
        for side in ["before", "after", "context"] {
            if let Some(root) = event.get(side) {
                push_scalars(root, &mut fts_text);
            }
        }
        ParsedEvent {
            time,
            user: text("user"),
            ip: text("ip"),
            action: text("action"),
            table: text("table"),
            primary_key: text("primary_key"),
            message: text("message"),
            source: text("source"),
            fts_text,
        }
    }
}

/// Appends every string and number at any depth under `value`, one per line.
fn push_scalars(value: &Value, out: &mut String) {
    match value {
        Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Value::Number(n) => {
            out.push_str(&n.to_string());
            out.push('\n');
        }
        Value::Array(items) => items.iter().for_each(|item| push_scalars(item, out)),
        Value::Object(map) => map.values().for_each(|item| push_scalars(item, out)),
        Value::Null | Value::Bool(_) => {}
    }
}

/// The tokens of FTS text as `unicode61` makes them (for ASCII text exactly): lowercased
/// alphanumeric runs.
fn tokens(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

// ---------------------------------------------------------------------------------------------
// Standard query parameters.

/// The parameters of the standard queries, picked from the data by [`standard_params`].
#[derive(Debug, Clone)]
pub struct StandardParams {
    /// For `action_newest`: the least frequent action (a selective filter).
    pub action: String,
    /// The most frequent account id (of the events' `account_id` keys), as text.
    pub hot_account: String,
    /// An account id found, as a term, in 1 to 5 events.
    pub rare_account: String,
    /// The most frequent (user, table) pair.
    pub user: String,
    pub table: String,
    /// The most frequent value of `status` keys (e.g. "active").
    pub common_term: String,
    /// For `facet_user`: the most frequent action (the largest facet).
    pub facet_action: String,
    /// Where the deep page starts: 90 % into the newest-first order.
    pub deep_offset: usize,
}

/// Picks the standard query parameters from `lines` (deterministically: ties are broken by
/// the smaller value).
pub fn standard_params(lines: &[String]) -> StandardParams {
    let mut actions: HashMap<String, u64> = HashMap::new();
    let mut accounts: HashMap<String, u64> = HashMap::new();
    let mut pairs: HashMap<(String, String), u64> = HashMap::new();
    let mut statuses: HashMap<String, u64> = HashMap::new();
    // Events per FTS token, to find an account id that is rare as a *term*, not only as an
    // account id (small ids also occur in amounts, ports, dates…).
    let mut token_events: HashMap<String, u64> = HashMap::new();
    for line in lines {
        let event: Value = serde_json::from_str(line).expect("a generated event is JSON");
        let text = |key: &str| event.get(key).and_then(Value::as_str).map(str::to_owned);
        if let Some(action) = text("action") {
            *actions.entry(action).or_default() += 1;
        }
        if let (Some(user), Some(table)) = (text("user"), text("table")) {
            *pairs.entry((user, table)).or_default() += 1;
        }
        let mut event_accounts = HashSet::new();
        let mut event_statuses = HashSet::new();
        for side in ["before", "after", "context"] {
            if let Some(object) = event.get(side).and_then(Value::as_object) {
                if let Some(account) = object.get("account_id").and_then(scalar_text) {
                    event_accounts.insert(account);
                }
                if let Some(status) = object.get("status").and_then(Value::as_str) {
                    event_statuses.insert(status.to_owned());
                }
            }
        }
        for account in event_accounts {
            *accounts.entry(account).or_default() += 1;
        }
        for status in event_statuses {
            *statuses.entry(status).or_default() += 1;
        }
        let fts_text = ParsedEvent::parse(line).fts_text;
        for token in tokens(&fts_text).collect::<HashSet<_>>() {
            *token_events.entry(token).or_default() += 1;
        }
    }
    let (user, table) = most_frequent(&pairs).expect("some event has a user and a table");
    // The account id found by the fewest events (1 to 5 on small sets; on a million events
    // every account is busier, and the rarest is taken), then the smaller id.
    let rare_account = accounts
        .keys()
        .filter_map(|account| {
            let n = token_events.get(account).copied().unwrap_or(0);
            (n >= 1).then_some((n, account))
        })
        .min_by(|a, b| {
            let in_range = |n: u64| !(1..=5).contains(&n);
            in_range(a.0)
                .cmp(&in_range(b.0))
                .then_with(|| {
                    if (1..=5).contains(&a.0) {
                        b.0.cmp(&a.0)
                    } else {
                        a.0.cmp(&b.0)
                    }
                })
                .then_with(|| numeric_order(a.1, b.1))
        })
        .map(|(_, account)| account.clone())
        .expect("some account id occurs in an event");
    StandardParams {
        action: least_frequent(&actions).expect("events have actions"),
        hot_account: most_frequent(&accounts).expect("events have account ids"),
        rare_account,
        user,
        table,
        common_term: most_frequent(&statuses).unwrap_or_else(|| "active".to_owned()),
        facet_action: most_frequent(&actions).expect("events have actions"),
        deep_offset: lines.len() * 9 / 10,
    }
}

/// A string or a number as text (serde_json's form of numbers).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Numbers by value, anything else after them by text.
fn numeric_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// The key with the highest count, ties by the smaller key.
fn most_frequent<K: Ord + Clone>(counts: &HashMap<K, u64>) -> Option<K> {
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        .map(|(k, _)| k.clone())
}

/// The key with the lowest count, ties by the smaller key.
fn least_frequent<K: Ord + Clone>(counts: &HashMap<K, u64>) -> Option<K> {
    counts
        .iter()
        .min_by(|a, b| a.1.cmp(b.1).then_with(|| a.0.cmp(b.0)))
        .map(|(k, _)| k.clone())
}

// ---------------------------------------------------------------------------------------------
// Self-check.

/// One event as the brute-force reference of [`self_check`] sees it.
struct RefEvent {
    seq: u64,
    time: i64,
    user: Option<String>,
    action: Option<String>,
    table: Option<String>,
    primary_key: Option<String>,
    tokens: HashSet<String>,
    /// The JSON, for the query language's bare-term semantics.
    json: Value,
}

impl RefEvent {
    /// Newest-first order key.
    fn key(&self) -> (i64, u64) {
        (self.time, self.seq)
    }
}

/// Newest first: by (time, seq) descending.
fn newest_first(events: &mut [&RefEvent]) {
    events.sort_by_key(|e| std::cmp::Reverse(e.key()));
}

fn seqs_of(events: &[&RefEvent], limit: usize) -> Vec<u64> {
    events.iter().take(limit).map(|e| e.seq).collect()
}

/// Whether a bare term matches `event` under the query language's semantics (SPEC §4, for a
/// single-word term): a text column equals it, a word of `message` is it, or a string or
/// number under before/after/context equals it (all case-insensitively).
fn query_language_term(event: &Value, term: &str) -> bool {
    let term = term.to_lowercase();
    let column = FTS_COLUMNS.iter().any(|c| {
        event
            .get(*c)
            .and_then(Value::as_str)
            .is_some_and(|v| v.to_lowercase() == term)
    });
    let message = event
        .get("message")
        .and_then(Value::as_str)
        .is_some_and(|m| tokens(m).any(|w| w == term));
    fn any_scalar(value: &Value, term: &str) -> bool {
        match value {
            Value::String(_) | Value::Number(_) => {
                scalar_text(value).is_some_and(|t| t.to_lowercase() == term)
            }
            Value::Array(items) => items.iter().any(|v| any_scalar(v, term)),
            Value::Object(map) => map.values().any(|v| any_scalar(v, term)),
            Value::Null | Value::Bool(_) => false,
        }
    }
    let data = ["before", "after", "context"]
        .iter()
        .any(|side| event.get(*side).is_some_and(|v| any_scalar(v, &term)));
    column || message || data
}

/// Nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Builds 20,000 events into a temp dir, ingests them, runs every query, asserts the answers
/// equal a brute-force reference (and so are ordered as documented, non-empty where they must
/// be, …), checks the query plans, and prints per-query p50/p95 over 20 runs and the ingest
/// rate.
pub fn self_check() {
    const EVENTS: usize = 20_000;
    const BATCH: usize = 1_000;
    const RUNS: usize = 20;
    const LIMIT: usize = 100;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!("sqlite baseline self-check ({profile} build, {EVENTS} events)");

    let mut generator =
        auditlog_core::generate::Generator::new(auditlog_core::generate::GenerateOptions {
            seed: 1,
            ..auditlog_core::generate::GenerateOptions::default()
        });
    let lines: Vec<String> = (0..EVENTS)
        .map(|_| generator.next().expect("the generator never ends"))
        .collect();
    let raw_bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let params = standard_params(&lines);
    eprintln!("  params: {params:?}");

    let dir = tempfile::Builder::new()
        .prefix("auditlog-sqlite-baseline-")
        .tempdir()
        .expect("create a temp dir");
    let mut db = SqliteBaseline::create(&dir.path().join("baseline.db"));
    let compile_options: Vec<String> = db
        .conn
        .prepare("PRAGMA compile_options")
        .expect("prepare compile_options")
        .query_map([], |r| r.get(0))
        .expect("run compile_options")
        .collect::<Result<_, _>>()
        .expect("read compile_options");
    assert!(
        compile_options.iter().any(|o| o == "ENABLE_FTS5"),
        "the bundled SQLite lacks FTS5"
    );
    let elapsed = db.ingest(&lines, BATCH);
    let bytes = db.bytes();
    eprintln!(
        "  ingest: {EVENTS} events in {:.2} s = {:.0} events/s (batch {BATCH}, WAL, \
         synchronous=FULL); {} bytes = {:.0} bytes/event ({:.2}x the NDJSON)",
        elapsed.as_secs_f64(),
        EVENTS as f64 / elapsed.as_secs_f64(),
        bytes,
        bytes as f64 / EVENTS as f64,
        bytes as f64 / raw_bytes as f64,
    );

    let by_object: Vec<(String, i64)> = db
        .conn
        .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .expect("prepare dbstat")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("run dbstat")
        .collect::<Result<_, _>>()
        .expect("read dbstat");
    let wal_bytes = std::fs::metadata(dir.path().join("baseline.db-wal")).map_or(0, |m| m.len());
    eprintln!(
        "  pages by object (WAL file {wal_bytes} bytes): {}",
        by_object
            .iter()
            .map(|(name, size)| format!("{name} {size}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // The plans: no ordered query sorts (except term_newest, which sorts its matches).
    for (name, sql) in [
        ("newest", Q_NEWEST),
        ("action_newest", Q_ACTION_NEWEST),
        ("user_table_by_pk", Q_USER_TABLE_BY_PK),
        ("page_after", Q_PAGE_AFTER),
        ("position", Q_POSITION),
        ("facet_user", Q_FACET_USER),
        ("term_newest sort", Q_TERM_NEWEST_SORT),
        ("term_newest scan", Q_TERM_NEWEST_SCAN),
        ("count_term", Q_COUNT_TERM),
    ] {
        let plan = db.plan(sql);
        eprintln!("  plan {name}: {}", plan.join(" | "));
        assert!(
            // A scan *of an index* in order, stopped by LIMIT, is what we want.
            plan.iter()
                .all(|step| step != "SCAN events" && step != "SCAN e"),
            "{name} scans the table: {plan:?}"
        );
        let sorts = plan.iter().any(|step| step.contains("TEMP B-TREE"));
        match name {
            // Sorting the matches (term) or the groups by count (facet) is inherent.
            "term_newest sort" | "facet_user" => {}
            _ => assert!(!sorts, "{name} sorts: {plan:?}"),
        }
    }

    // The brute-force reference.
    let reference: Vec<RefEvent> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let parsed = ParsedEvent::parse(line);
            RefEvent {
                seq: i as u64 + 1,
                time: parsed.time,
                user: parsed.user,
                action: parsed.action,
                table: parsed.table,
                primary_key: parsed.primary_key,
                tokens: tokens(&parsed.fts_text).collect(),
                json: serde_json::from_str(line).expect("a generated event is JSON"),
            }
        })
        .collect();
    let mut all: Vec<&RefEvent> = reference.iter().collect();
    newest_first(&mut all);
    let with_term = |term: &str| -> Vec<&RefEvent> {
        let mut term_tokens = tokens(term);
        let token = term_tokens.next().expect("a term has a token");
        assert!(
            term_tokens.next().is_none(),
            "reference terms are one token"
        );
        all.iter()
            .copied()
            .filter(|e| e.tokens.contains(&token))
            .collect()
    };

    // newest
    let newest = db.newest(LIMIT);
    assert_eq!(newest.len(), LIMIT);
    assert_eq!(newest, seqs_of(&all, LIMIT), "newest");
    // action_newest
    let of_action: Vec<&RefEvent> = all
        .iter()
        .copied()
        .filter(|e| e.action.as_deref() == Some(params.action.as_str()))
        .collect();
    let action_newest = db.action_newest(&params.action, LIMIT);
    assert!(!action_newest.is_empty(), "action_newest is empty");
    assert_eq!(action_newest, seqs_of(&of_action, LIMIT), "action_newest");
    // term_newest and count_term
    for term in [
        &params.hot_account,
        &params.rare_account,
        &params.common_term,
    ] {
        let expected = with_term(term);
        let found = db.term_newest(term, LIMIT);
        assert!(!found.is_empty(), "term_newest({term}) is empty");
        assert_eq!(found, seqs_of(&expected, LIMIT), "term_newest({term})");
        for plan in [TermPlan::Sort, TermPlan::Scan] {
            let by_plan = db.term_newest_with(plan, term, LIMIT);
            assert_eq!(by_plan, found, "term_newest({term}) by {plan:?}");
        }
        let count = db.count_term(term);
        assert!(
            count >= found.len() as u64,
            "count_term({term}) < term_newest"
        );
        assert_eq!(count, expected.len() as u64, "count_term({term})");
        // The query language's bare term (whole values, message words) for comparison.
        let query_language = reference
            .iter()
            .filter(|e| query_language_term(&e.json, term))
            .count();
        eprintln!(
            "  term {term:?}: {count} events by FTS token, {query_language} by the query \
             language's bare-term semantics"
        );
    }
    // A term found nowhere, and a term that is FTS syntax.
    assert_eq!(db.count_term("zzzznotthere"), 0);
    assert!(db.term_newest("zzzznotthere", LIMIT).is_empty());
    assert_eq!(db.count_term("NOT \"AND"), 0, "terms are quoted");
    // user_table_by_pk
    let mut of_pair: Vec<&RefEvent> = reference
        .iter()
        .filter(|e| {
            e.user.as_deref() == Some(params.user.as_str())
                && e.table.as_deref() == Some(params.table.as_str())
        })
        .collect();
    // SQLite's order: NULL first, then the UTF-8 bytes (= Rust's `str` order); then seq.
    of_pair
        .sort_by(|a, b| (a.primary_key.as_deref(), a.seq).cmp(&(b.primary_key.as_deref(), b.seq)));
    let by_pk = db.user_table_by_pk(&params.user, &params.table, LIMIT);
    assert_eq!(by_pk.len(), LIMIT.min(of_pair.len()));
    assert!(!by_pk.is_empty(), "user_table_by_pk is empty");
    assert_eq!(by_pk, seqs_of(&of_pair, LIMIT), "user_table_by_pk");
    // facet_user
    let mut facet_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &reference {
        let user = e.user.as_deref();
        match user {
            Some(user) if e.action.as_deref() == Some(params.facet_action.as_str()) => {
                *facet_counts.entry(user).or_default() += 1;
            }
            _ => {}
        }
    }
    let mut expected_facet: Vec<(String, u64)> = facet_counts
        .into_iter()
        .map(|(user, n)| (user.to_owned(), n))
        .collect();
    expected_facet.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    expected_facet.truncate(10);
    let facet = db.facet_user(&params.facet_action, 10);
    assert!(!facet.is_empty(), "facet_user is empty");
    assert!(
        facet
            .windows(2)
            .all(|w| w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0)),
        "facet_user is not sorted"
    );
    assert_eq!(facet, expected_facet, "facet_user");
    // position and page_after
    let after = db.position(params.deep_offset);
    assert_eq!(after, all[params.deep_offset].key(), "position");
    assert_eq!(db.position(0), all[0].key(), "position 0");
    let page = db.page_after(after, LIMIT);
    let expected_page: Vec<u64> = all[params.deep_offset + 1..]
        .iter()
        .take(LIMIT)
        .map(|e| e.seq)
        .collect();
    assert_eq!(page, expected_page, "page_after");
    let last = all.last().expect("there are events").key();
    assert!(
        db.page_after(last, LIMIT).is_empty(),
        "nothing after the last"
    );
    eprintln!("  answers: all equal to the brute-force reference");

    // Timings.
    type Query<'a> = Box<dyn Fn(&SqliteBaseline) -> usize + 'a>;
    let p = &params;
    let queries: Vec<(String, Query)> = vec![
        (
            format!("newest({LIMIT})"),
            Box::new(|db| db.newest(LIMIT).len()),
        ),
        (
            format!("action_newest({:?}, {LIMIT})", p.action),
            Box::new(|db| db.action_newest(&p.action, LIMIT).len()),
        ),
        (
            format!("term_newest(hot {:?}, {LIMIT})", p.hot_account),
            Box::new(|db| db.term_newest(&p.hot_account, LIMIT).len()),
        ),
        (
            format!("term_newest(rare {:?}, {LIMIT})", p.rare_account),
            Box::new(|db| db.term_newest(&p.rare_account, LIMIT).len()),
        ),
        (
            format!("term_newest(common {:?}, {LIMIT})", p.common_term),
            Box::new(|db| db.term_newest(&p.common_term, LIMIT).len()),
        ),
        (
            format!("  only sort plan, hot {:?}", p.hot_account),
            Box::new(|db| {
                db.term_newest_with(TermPlan::Sort, &p.hot_account, LIMIT)
                    .len()
            }),
        ),
        (
            format!("  only scan plan, hot {:?}", p.hot_account),
            Box::new(|db| {
                db.term_newest_with(TermPlan::Scan, &p.hot_account, LIMIT)
                    .len()
            }),
        ),
        (
            format!("  only sort plan, rare {:?}", p.rare_account),
            Box::new(|db| {
                db.term_newest_with(TermPlan::Sort, &p.rare_account, LIMIT)
                    .len()
            }),
        ),
        (
            format!("  only scan plan, rare {:?}", p.rare_account),
            Box::new(|db| {
                db.term_newest_with(TermPlan::Scan, &p.rare_account, LIMIT)
                    .len()
            }),
        ),
        (
            format!("  only sort plan, common {:?}", p.common_term),
            Box::new(|db| {
                db.term_newest_with(TermPlan::Sort, &p.common_term, LIMIT)
                    .len()
            }),
        ),
        (
            format!("  only scan plan, common {:?}", p.common_term),
            Box::new(|db| {
                db.term_newest_with(TermPlan::Scan, &p.common_term, LIMIT)
                    .len()
            }),
        ),
        (
            format!("user_table_by_pk({:?}, {:?}, {LIMIT})", p.user, p.table),
            Box::new(|db| db.user_table_by_pk(&p.user, &p.table, LIMIT).len()),
        ),
        (
            format!("count_term(hot {:?})", p.hot_account),
            Box::new(|db| db.count_term(&p.hot_account) as usize),
        ),
        (
            format!("count_term(common {:?})", p.common_term),
            Box::new(|db| db.count_term(&p.common_term) as usize),
        ),
        (
            format!("facet_user({:?}, 10)", p.facet_action),
            Box::new(|db| db.facet_user(&p.facet_action, 10).len()),
        ),
        (
            format!("position({})", p.deep_offset),
            Box::new(|db| db.position(p.deep_offset).1 as usize),
        ),
        (
            format!("page_after(position {}, {LIMIT})", p.deep_offset),
            Box::new(move |db| db.page_after(after, LIMIT).len()),
        ),
    ];
    eprintln!("  query timings over {RUNS} runs (µs):");
    eprintln!(
        "    {:<52} {:>10} {:>10} {:>8}",
        "query", "p50", "p95", "result"
    );
    for (name, query) in &queries {
        let mut times = Vec::with_capacity(RUNS);
        let mut result = 0;
        for _ in 0..RUNS {
            let start = Instant::now();
            result = std::hint::black_box(query(&db));
            times.push(start.elapsed());
        }
        times.sort();
        eprintln!(
            "    {:<52} {:>10.1} {:>10.1} {:>8}",
            name,
            micros(percentile(&times, 50)),
            micros(percentile(&times, 95)),
            result
        );
    }
}
