//! From the query AST to a tantivy query over the fields of [`crate::schema`].
//!
//! The translation follows `auditlog_query::matches` clause by clause (that function is the
//! reference; the model test in `tests/it/model.rs` holds the two together).

use std::net::IpAddr;
use std::ops::Bound;

use auditlog_core::event::Timestamp;
use auditlog_query::{
    Bound as QBound, ClauseKind, Column, Field as QField, Op, Query, Side, Text, Value, fold, words,
};
use tantivy::query::{
    AllQuery, BitSetDocSet, BooleanQuery, ConstScorer, EmptyQuery, EnableScoring, Explanation,
    InvertedIndexRangeQuery, Occur, PhrasePrefixQuery, PhraseQuery, Query as TQuery, RangeQuery,
    Scorer, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, DocSet, Score, SegmentReader, TantivyError, Term};

use crate::schema::{
    Fields, KIND_NUMBER, KIND_TIME, NON_TEXT, SEP, data_term, num_term, path_bytes, side_index,
    sortable_f64, sortable_time, value_bytes,
};

/// Most distinct terms one prefix or side-wide range may expand to in one segment; beyond it
/// the query is refused as too broad rather than left to run long.
pub const MAX_EXPANDED_TERMS: usize = 200_000;

/// The message of the error a too broad query fails with (the server maps it to a 400).
pub const TOO_BROAD: &str = "query_too_broad";

pub(crate) fn translate(query: &Query, fields: &Fields, now: Timestamp) -> Box<dyn TQuery> {
    if query.clauses.is_empty() {
        return Box::new(AllQuery);
    }
    let mut parts: Vec<(Occur, Box<dyn TQuery>)> = Vec::new();
    for clause in &query.clauses {
        let positive = match &clause.kind {
            ClauseKind::Term(text) => term_query(text, fields),
            ClauseKind::Field { field, values } => any_of(
                values
                    .iter()
                    .map(|value| field_query(field, value, fields, now))
                    .collect(),
            ),
        };
        let part: Box<dyn TQuery> = if clause.negated {
            Box::new(Complement { inner: positive })
        } else {
            positive
        };
        parts.push((Occur::Must, part));
    }
    if parts.len() == 1 {
        return parts
            .pop()
            .map(|(_, part)| part)
            .unwrap_or_else(|| Box::new(AllQuery));
    }
    Box::new(BooleanQuery::new(parts))
}

fn any_of(mut queries: Vec<Box<dyn TQuery>>) -> Box<dyn TQuery> {
    if queries.len() == 1 {
        return queries.pop().unwrap_or_else(|| Box::new(EmptyQuery));
    }
    Box::new(BooleanQuery::new(
        queries.into_iter().map(|q| (Occur::Should, q)).collect(),
    ))
}

/// The columns a bare term is compared with (besides the message).
fn term_columns(f: &Fields) -> [Field; 7] {
    [
        f.user,
        f.ip_text,
        f.primary_key,
        f.action,
        f.table,
        f.source,
        f.id,
    ]
}

/// A bare word, prefix or phrase: the text columns, the message, any string or number value.
fn term_query(text: &Text, fields: &Fields) -> Box<dyn TQuery> {
    let mut queries: Vec<Box<dyn TQuery>> = Vec::new();
    match text {
        Text::Word(word) | Text::Phrase(word) => {
            let folded = fold(word);
            for field in term_columns(fields) {
                queries.push(exact(field, &folded));
            }
            queries.push(message_query(word, false, fields));
            let value = value_bytes(&folded);
            for field in fields.data {
                queries.push(scan(field, value_with_any_path(&value, true), Filter::All));
            }
        }
        Text::Prefix(prefix) => {
            let folded = fold(prefix);
            for field in term_columns(fields) {
                queries.push(text_prefix(field, &folded));
            }
            queries.push(message_query(prefix, true, fields));
            for field in fields.data {
                queries.push(scan(
                    field,
                    values_starting(folded.as_bytes(), true),
                    Filter::All,
                ));
            }
        }
    }
    any_of(queries)
}

fn exact(field: Field, folded: &str) -> Box<dyn TQuery> {
    Box::new(TermQuery::new(
        Term::from_field_text(field, folded),
        IndexRecordOption::Basic,
    ))
}

/// Terms of a text field starting with `folded`: `[p, p ‖ 0xFF)`.
fn text_prefix(field: Field, folded: &str) -> Box<dyn TQuery> {
    let mut upper = folded.as_bytes().to_vec();
    upper.push(0xFF);
    Box::new(InvertedIndexRangeQuery::new(
        Bound::Included(Term::from_field_text(field, folded)),
        Bound::Excluded(Term::from_field_bytes(field, &upper)),
    ))
}

/// Consecutive words of the message; with `prefix`, the last word starts a message word.
fn message_query(text: &str, prefix: bool, fields: &Fields) -> Box<dyn TQuery> {
    let needle = words(text);
    let terms: Vec<Term> = needle
        .iter()
        .map(|word| Term::from_field_text(fields.message, word))
        .collect();
    match (terms.len(), prefix) {
        (0, _) => Box::new(EmptyQuery),
        (1, false) => Box::new(TermQuery::new(terms[0].clone(), IndexRecordOption::Basic)),
        (1, true) => text_prefix(fields.message, &needle[0]),
        (_, false) => Box::new(PhraseQuery::new(terms)),
        (_, true) => {
            let mut query = PhrasePrefixQuery::new(terms);
            query.set_max_expansions(MAX_EXPANDED_TERMS as u32);
            Box::new(query)
        }
    }
}

/// The byte range of data terms whose value is exactly `value` (any path).
fn value_with_any_path(value: &[u8], text: bool) -> (Vec<u8>, Vec<u8>) {
    let lower = data_term(value, text, b"");
    let mut upper = lower.clone();
    upper.push(0xFF);
    (lower, upper)
}

/// The byte range of data terms whose value starts with `prefix` (any path).
fn values_starting(prefix: &[u8], text: bool) -> (Vec<u8>, Vec<u8>) {
    let mut lower = Vec::with_capacity(prefix.len() + 1);
    if !text {
        lower.push(NON_TEXT);
    }
    lower.extend_from_slice(prefix);
    let mut upper = lower.clone();
    upper.extend_from_slice(&[SEP, 0xFF]);
    (lower, upper)
}

fn field_query(field: &QField, value: &Value, fields: &Fields, now: Timestamp) -> Box<dyn TQuery> {
    match field {
        QField::Column(column) => column_query(*column, value, fields, now),
        QField::Data { side, path } => {
            let sides: Vec<Side> = match side {
                Some(side) => vec![*side],
                None => Side::ALL.to_vec(),
            };
            any_of(
                sides
                    .into_iter()
                    .map(|side| data_query(side, path, value, fields, now))
                    .collect(),
            )
        }
    }
}

fn column_query(column: Column, value: &Value, fields: &Fields, now: Timestamp) -> Box<dyn TQuery> {
    let text_field = match column {
        Column::User => Some(fields.user),
        Column::Action => Some(fields.action),
        Column::Table => Some(fields.table),
        Column::Source => Some(fields.source),
        Column::PrimaryKey => Some(fields.primary_key),
        Column::Id => Some(fields.id),
        _ => None,
    };
    if let Some(field) = text_field {
        return match value {
            Value::Word(text) | Value::Phrase(text) => exact(field, &fold(text)),
            Value::Prefix(prefix) => text_prefix(field, &fold(prefix)),
            _ => Box::new(EmptyQuery),
        };
    }
    match column {
        Column::Message => match value {
            Value::Word(text) | Value::Phrase(text) => message_query(text, false, fields),
            Value::Prefix(prefix) => message_query(prefix, true, fields),
            _ => Box::new(EmptyQuery),
        },
        Column::Ip => match value {
            Value::Cidr(network, prefix_len) => ip_network(fields.ip, *network, *prefix_len),
            Value::Prefix(prefix) => text_prefix(fields.ip_text, &fold(prefix)),
            _ => Box::new(EmptyQuery),
        },
        Column::Time | Column::ReceivedAt => {
            let field = if column == Column::Time {
                fields.time
            } else {
                fields.received_at
            };
            let to_ns = |bound: &QBound| match bound {
                QBound::Time(time) => Some(time.resolve(now).unix_nanos()),
                QBound::Number(_) => None,
            };
            match bounds_of(value, to_ns) {
                Some((lo, hi)) => Box::new(RangeQuery::new(
                    lo.map(|ns| Term::from_field_i64(field, ns)),
                    hi.map(|ns| Term::from_field_i64(field, ns)),
                )),
                None => Box::new(EmptyQuery),
            }
        }
        Column::Seq => seq_query(value, fields),
        _ => Box::new(EmptyQuery),
    }
}

/// The bounds of an exact value, range or comparison, each end converted by `convert`
/// (`None`: the value cannot match).
fn bounds_of<T: Copy>(
    value: &Value,
    convert: impl Fn(&QBound) -> Option<T>,
) -> Option<(Bound<T>, Bound<T>)> {
    Some(match value {
        Value::Exact(bound) => {
            let at = convert(bound)?;
            (Bound::Included(at), Bound::Included(at))
        }
        Value::Range { lo, hi } => (
            match lo {
                Some(lo) => Bound::Included(convert(lo)?),
                None => Bound::Unbounded,
            },
            match hi {
                Some(hi) => Bound::Included(convert(hi)?),
                None => Bound::Unbounded,
            },
        ),
        Value::Compare(op, bound) => {
            let at = convert(bound)?;
            match op {
                Op::Gt => (Bound::Excluded(at), Bound::Unbounded),
                Op::Ge => (Bound::Included(at), Bound::Unbounded),
                Op::Lt => (Bound::Unbounded, Bound::Excluded(at)),
                Op::Le => (Bound::Unbounded, Bound::Included(at)),
            }
        }
        _ => return None,
    })
}

/// `seq` compares as a number: real bounds become the integer range they admit.
fn seq_query(value: &Value, fields: &Fields) -> Box<dyn TQuery> {
    let as_f64 = |bound: &QBound| match bound {
        QBound::Number(number) => Some(number.as_f64()),
        QBound::Time(_) => None,
    };
    let Some((lo, hi)) = bounds_of(value, as_f64) else {
        return Box::new(EmptyQuery);
    };
    let lo = match lo {
        Bound::Included(x) => x.ceil(),
        Bound::Excluded(x) => x.floor() + 1.0,
        Bound::Unbounded => 1.0,
    };
    let hi = match hi {
        Bound::Included(x) => x.floor(),
        Bound::Excluded(x) => x.ceil() - 1.0,
        Bound::Unbounded => u64::MAX as f64,
    };
    if lo > hi || hi < 1.0 {
        return Box::new(EmptyQuery);
    }
    let lo = lo.max(1.0) as u64;
    let hi = hi.min(u64::MAX as f64) as u64;
    Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_u64(fields.seq, lo)),
        Bound::Included(Term::from_field_u64(fields.seq, hi)),
    ))
}

fn ip_network(field: Field, network: IpAddr, prefix_len: u8) -> Box<dyn TQuery> {
    let (base, len) = match network {
        IpAddr::V4(v4) => (
            u128::from(v4.to_ipv6_mapped()),
            96 + u32::from(prefix_len.min(32)),
        ),
        IpAddr::V6(v6) => (u128::from(v6), u32::from(prefix_len.min(128))),
    };
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    let lo = base & mask;
    let hi = lo | !mask;
    Box::new(RangeQuery::new(
        Bound::Included(Term::from_field_ip_addr(field, lo.into())),
        Bound::Included(Term::from_field_ip_addr(field, hi.into())),
    ))
}

fn data_query(
    side: Side,
    path: &[String],
    value: &Value,
    fields: &Fields,
    now: Timestamp,
) -> Box<dyn TQuery> {
    let data = fields.data[side_index(side)];
    let num = fields.num[side_index(side)];
    let path = path_bytes(path);
    match value {
        Value::Word(text) | Value::Phrase(text) => {
            let value = value_bytes(&fold(text));
            if path.is_empty() {
                any_of(vec![
                    scan(data, value_with_any_path(&value, true), Filter::All),
                    scan(data, value_with_any_path(&value, false), Filter::All),
                ])
            } else {
                any_of(vec![
                    exact_bytes(data, &data_term(&value, true, &path)),
                    exact_bytes(data, &data_term(&value, false, &path)),
                ])
            }
        }
        Value::Prefix(prefix) => {
            let folded = fold(prefix);
            let filter = if path.is_empty() {
                Filter::All
            } else {
                Filter::PathIs(path)
            };
            any_of(vec![
                scan(
                    data,
                    values_starting(folded.as_bytes(), true),
                    filter.clone(),
                ),
                scan(data, values_starting(folded.as_bytes(), false), filter),
            ])
        }
        Value::Exact(_) | Value::Range { .. } | Value::Compare(..) => {
            let kind_of = |bound: &QBound| match bound {
                QBound::Number(_) => KIND_NUMBER,
                QBound::Time(_) => KIND_TIME,
            };
            let kind = match value {
                Value::Exact(bound) | Value::Compare(_, bound) => kind_of(bound),
                Value::Range {
                    lo: Some(bound), ..
                }
                | Value::Range {
                    hi: Some(bound), ..
                } => kind_of(bound),
                _ => return Box::new(EmptyQuery),
            };
            let key = |bound: &QBound| match bound {
                QBound::Number(number) => Some(sortable_f64(number.as_f64())),
                QBound::Time(time) => Some(sortable_time(time.resolve(now))),
            };
            let Some((lo, hi)) = bounds_of(value, key) else {
                return Box::new(EmptyQuery);
            };
            if path.is_empty() {
                // Any path: every numeric term of the side, filtered by kind and bounds.
                return scan(
                    num,
                    (Vec::new(), vec![0xFF; 2]),
                    Filter::Numeric { kind, lo, hi },
                );
            }
            let term = |key: [u8; 8]| num_term(&path, kind, key);
            let lower = match lo {
                Bound::Included(key) => term(key),
                Bound::Excluded(key) => {
                    let mut after = term(key);
                    after.push(0);
                    after
                }
                Bound::Unbounded => num_term(&path, kind, [0; 8])[..path.len() + 2].to_vec(),
            };
            let upper = match hi {
                Bound::Included(key) => {
                    let mut through = term(key);
                    through.push(0);
                    through
                }
                Bound::Excluded(key) => term(key),
                Bound::Unbounded => {
                    let mut past = num_term(&path, kind, [0; 8])[..path.len() + 2].to_vec();
                    if let Some(last) = past.last_mut() {
                        *last += 1;
                    }
                    past
                }
            };
            scan(num, (lower, upper), Filter::All)
        }
        Value::Cidr(..) => Box::new(EmptyQuery),
    }
}

fn exact_bytes(field: Field, bytes: &[u8]) -> Box<dyn TQuery> {
    Box::new(TermQuery::new(
        Term::from_field_bytes(field, bytes),
        IndexRecordOption::Basic,
    ))
}

/// The documents the inner query does not match. (Not tantivy's `MustNot`: its exclusion
/// seeks a phrase scorer backwards, which tantivy 0.27 does not support.)
#[derive(Debug)]
struct Complement {
    inner: Box<dyn TQuery>,
}

impl Clone for Complement {
    fn clone(&self) -> Self {
        Complement {
            inner: self.inner.box_clone(),
        }
    }
}

impl TQuery for Complement {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(ComplementWeight {
            inner: self.inner.weight(scoring)?,
        }))
    }
}

struct ComplementWeight {
    inner: Box<dyn Weight>,
}

impl Weight for ComplementWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let max_doc = reader.max_doc();
        let mut excluded = BitSet::with_max_value(max_doc);
        let mut inner = self.inner.scorer(reader, 1.0)?;
        let mut doc = inner.doc();
        while doc != tantivy::TERMINATED {
            excluded.insert(doc);
            doc = inner.advance();
        }
        let mut kept = BitSet::with_max_value(max_doc);
        for doc in 0..max_doc {
            if !excluded.contains(doc) {
                kept.insert(doc);
            }
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(kept), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new("Complement", 1.0))
    }
}

/// Which terms of a [`TermScan`] range count.
#[derive(Debug, Clone)]
enum Filter {
    All,
    /// Data terms whose path (after the first [`SEP`]) is exactly this.
    PathIs(Vec<u8>),
    /// Numeric terms (any path) of this kind within the bounds.
    Numeric {
        kind: u8,
        lo: Bound<[u8; 8]>,
        hi: Bound<[u8; 8]>,
    },
}

impl Filter {
    fn accepts(&self, term: &[u8]) -> bool {
        match self {
            Filter::All => true,
            Filter::PathIs(path) => term
                .iter()
                .position(|&b| b == SEP)
                .is_some_and(|sep| &term[sep + 1..] == path.as_slice()),
            Filter::Numeric { kind, lo, hi } => {
                let Some(sep) = term.iter().position(|&b| b == SEP) else {
                    return false;
                };
                let rest = &term[sep + 1..];
                if rest.len() != 9 || rest[0] != *kind {
                    return false;
                }
                let key = &rest[1..];
                let above = match lo {
                    Bound::Included(lo) => key >= lo.as_slice(),
                    Bound::Excluded(lo) => key > lo.as_slice(),
                    Bound::Unbounded => true,
                };
                let below = match hi {
                    Bound::Included(hi) => key <= hi.as_slice(),
                    Bound::Excluded(hi) => key < hi.as_slice(),
                    Bound::Unbounded => true,
                };
                above && below
            }
        }
    }
}

fn scan(field: Field, (lower, upper): (Vec<u8>, Vec<u8>), filter: Filter) -> Box<dyn TQuery> {
    Box::new(TermScan {
        field,
        lower,
        upper,
        filter,
    })
}

/// The documents holding any term in `[lower, upper)` of one field that the filter accepts,
/// expanding at most [`MAX_EXPANDED_TERMS`] terms per segment.
#[derive(Debug, Clone)]
struct TermScan {
    field: Field,
    lower: Vec<u8>,
    upper: Vec<u8>,
    filter: Filter,
}

impl TQuery for TermScan {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for TermScan {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut docs = BitSet::with_max_value(reader.max_doc());
        let inverted = reader.inverted_index(self.field)?;
        let mut stream = inverted
            .terms()
            .range()
            .ge(&self.lower)
            .lt(&self.upper)
            .into_stream()?;
        let mut expanded = 0usize;
        while stream.advance() {
            if !self.filter.accepts(stream.key()) {
                continue;
            }
            expanded += 1;
            if expanded > MAX_EXPANDED_TERMS {
                return Err(TantivyError::InvalidArgument(TOO_BROAD.to_owned()));
            }
            let mut postings = inverted
                .read_block_postings_from_terminfo(stream.value(), IndexRecordOption::Basic)?;
            loop {
                let block = postings.docs();
                if block.is_empty() {
                    break;
                }
                for &doc in block {
                    docs.insert(doc);
                }
                postings.advance();
            }
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(docs), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) != doc {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} does not match"
            )));
        }
        Ok(Explanation::new("TermScan", 1.0))
    }
}
