//! Running a translated query on one searcher: the sorted page, the count, facets and the
//! histogram. Segments are walked by hand (not with tantivy collectors) so the default order,
//! newest `time` first, which is also the index sort, can stop early in every segment and
//! skip whole segments that cannot reach the page.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv6Addr;

use tantivy::columnar::{Column, StrColumn};
use tantivy::query::Weight;
use tantivy::{DocId, DocSet, Searcher, SegmentReader, TERMINATED};

use crate::sort::{Cursor, SortField, SortKey, SortOrder};

pub(crate) type TResult<T> = tantivy::Result<T>;

/// The number of matching events.
pub(crate) fn count(searcher: &Searcher, weight: &dyn Weight) -> TResult<u64> {
    let mut total = 0u64;
    for segment in searcher.segment_readers() {
        total += u64::from(weight.count(segment)?);
    }
    Ok(total)
}

/// Calls `each` with every matching live document of one segment, in doc order, until it
/// returns false.
fn for_each_match(
    segment: &SegmentReader,
    weight: &dyn Weight,
    start: DocId,
    mut each: impl FnMut(DocId) -> bool,
) -> TResult<()> {
    let mut scorer = weight.scorer(segment, 1.0)?;
    let alive = segment.alive_bitset();
    let mut doc = scorer.doc();
    if doc < start {
        doc = scorer.seek(start);
    }
    while doc != TERMINATED {
        if alive.is_none_or(|alive| alive.is_alive(doc)) && !each(doc) {
            break;
        }
        doc = scorer.advance();
    }
    Ok(())
}

/// How one segment reads the sort key of a document, as a number whose order is the sort
/// order of the column (for text: `2 × (ordinal + 1)`, so a cursor value absent from the
/// segment's dictionary sits on an odd number between two present ones).
enum KeyReader {
    Seq,
    Signed(Column<i64>),
    Ip(Column<Ipv6Addr>),
    Text {
        column: StrColumn,
        empty: u128,
    },
    /// A text column no document of the segment has: every value is the empty string.
    AllEmpty,
}

impl KeyReader {
    fn open(segment: &SegmentReader, sort: SortField) -> TResult<KeyReader> {
        let fast = segment.fast_fields();
        Ok(match sort {
            SortField::Seq => KeyReader::Seq,
            SortField::Time => KeyReader::Signed(fast.i64("time")?),
            SortField::ReceivedAt => KeyReader::Signed(fast.i64("received_at")?),
            SortField::Ip => KeyReader::Ip(fast.ip_addr("ip")?),
            text => KeyReader::open_text(segment, text.text_column().unwrap_or_default())?,
        })
    }

    fn open_text(segment: &SegmentReader, column: &str) -> TResult<KeyReader> {
        Ok(match segment.fast_fields().str(column)? {
            Some(column) => {
                let empty = match column.dictionary().term_ord(b"")? {
                    Some(_) => 2,
                    None => 0,
                };
                KeyReader::Text { column, empty }
            }
            None => KeyReader::AllEmpty,
        })
    }

    fn local(&self, doc: DocId, seq: u64) -> u128 {
        match self {
            KeyReader::Seq => unsigned(seq),
            KeyReader::Signed(column) => signed(column.first(doc).unwrap_or(0)),
            KeyReader::Ip(column) => column.first(doc).map(u128::from).unwrap_or(0),
            KeyReader::Text { column, empty } => match column.ords().first(doc) {
                Some(ord) => 2 * (u128::from(ord) + 1),
                None => *empty,
            },
            KeyReader::AllEmpty => 0,
        }
    }

    /// The local number of a key from outside the segment (a cursor).
    fn local_of(&self, key: &SortKey) -> TResult<u128> {
        Ok(match (self, key) {
            (KeyReader::Seq | KeyReader::Signed(_), SortKey::Number(n)) => {
                (*n as u128) ^ (1 << 127)
            }
            (KeyReader::Ip(_), SortKey::Ip(ip)) => *ip,
            (KeyReader::Text { column, empty }, SortKey::Text(text)) => {
                if text.is_empty() {
                    *empty
                } else {
                    match column.dictionary().term_ord_or_next(text.as_bytes())? {
                        tantivy::columnar::TermOrdHit::Exact(ord) => 2 * (u128::from(ord) + 1),
                        tantivy::columnar::TermOrdHit::Next(ord) if ord == u64::MAX => u128::MAX,
                        tantivy::columnar::TermOrdHit::Next(ord) => 2 * (u128::from(ord) + 1) - 1,
                    }
                }
            }
            (KeyReader::AllEmpty, SortKey::Text(text)) => {
                if text.is_empty() {
                    0
                } else {
                    1
                }
            }
            _ => 0,
        })
    }

    /// The key a local number stands for.
    fn key(&self, local: u128) -> TResult<SortKey> {
        Ok(match self {
            KeyReader::Seq | KeyReader::Signed(_) => SortKey::Number((local ^ (1 << 127)) as i128),
            KeyReader::Ip(_) => SortKey::Ip(local),
            KeyReader::Text { column, .. } => {
                let mut text = String::new();
                if local >= 2 {
                    column.ord_to_str((local / 2 - 1) as u64, &mut text)?;
                }
                SortKey::Text(text)
            }
            KeyReader::AllEmpty => SortKey::Text(String::new()),
        })
    }

    /// The best key a document of this segment can have in `order`, when the column can tell
    /// (numbers only: their local numbers are global).
    fn best_possible(&self, segment: &SegmentReader, order: SortOrder) -> Option<u128> {
        let (min, max) = match self {
            KeyReader::Signed(column) => (signed(column.min_value()), signed(column.max_value())),
            KeyReader::Seq => {
                let seq = segment.fast_fields().u64("seq").ok()?;
                (unsigned(seq.min_value()), unsigned(seq.max_value()))
            }
            _ => return None,
        };
        Some(match order {
            SortOrder::Asc => min,
            SortOrder::Desc => max,
        })
    }
}

/// A `u64` as the same `u128` number an `i128` key of that value has.
fn unsigned(value: u64) -> u128 {
    (i128::from(value) as u128) ^ (1 << 127)
}

/// An `i64` as a `u128` of the same order.
fn signed(value: i64) -> u128 {
    (i128::from(value) as u128) ^ (1 << 127)
}

/// A local key and seq turned into one number where larger means earlier in the page.
fn rank(local: u128, seq: u64, order: SortOrder) -> (u128, u64) {
    match order {
        SortOrder::Desc => (local, seq),
        SortOrder::Asc => (u128::MAX - local, u64::MAX - seq),
    }
}

/// Events of a page in order: each one's sort key and seq.
type Page = Vec<(SortKey, u64)>;

/// The first `limit` matching events in the order `(key, seq)` after the cursor, with their
/// keys, and the number of all matches when finding the page visited every one of them (it
/// does unless the order is newest first, where segments stop early, or whole segments were
/// skipped): the caller then needs no second pass to count.
pub(crate) fn top(
    searcher: &Searcher,
    weight: &dyn Weight,
    sort: SortField,
    order: SortOrder,
    limit: usize,
    cursor: Option<&Cursor>,
) -> TResult<(Page, Option<u64>)> {
    let mut segments: Vec<(&SegmentReader, KeyReader)> = Vec::new();
    for segment in searcher.segment_readers() {
        segments.push((segment, KeyReader::open(segment, sort)?));
    }
    // Segments that may hold the best keys first, so later ones can be skipped.
    let mut bests: Vec<Option<u128>> = segments
        .iter()
        .map(|(segment, reader)| reader.best_possible(segment, order))
        .collect();
    let mut order_idx: Vec<usize> = (0..segments.len()).collect();
    order_idx.sort_by_key(|&idx| {
        Reverse(bests[idx].map(|best| match order {
            SortOrder::Desc => best,
            SortOrder::Asc => u128::MAX - best,
        }))
    });
    let mut page: Vec<(SortKey, u64)> = Vec::new();
    // Once the page is full: its worst event. A document of a later segment that does not
    // rank above it cannot make the page, so it is neither kept nor turned into a key (text
    // keys are per-segment ordinals, and finding an ordinal's text is the costly part).
    let mut page_worst: Option<(SortKey, u64)> = None;
    // The index is sorted by time, newest first: in that order the segment's first matches
    // are its best, and a cursor can be sought by binary search.
    let sorted = sort == SortField::Time && order == SortOrder::Desc;
    let mut counted = (!sorted).then_some(0u64);
    for idx in order_idx {
        let (segment, reader) = &segments[idx];
        let floor = match &page_worst {
            Some((key, seq)) => Some(rank(reader.local_of(key)?, *seq, order)),
            None => None,
        };
        if let (Some(best), Some(floor)) = (bests[idx].take(), floor) {
            let best_rank = rank(best, u64::MAX, order).0;
            if best_rank < floor.0 {
                counted = None;
                continue;
            }
        }
        let seqs = segment.fast_fields().u64("seq")?;
        let cursor_rank = match cursor {
            Some(cursor) => Some(rank(reader.local_of(&cursor.key)?, cursor.seq, order)),
            None => None,
        };
        let start = match (sorted, cursor_rank) {
            (true, Some((cursor_local, _))) => first_doc_at_or_below(segment, reader, cursor_local),
            _ => 0,
        };
        let mut heap: BinaryHeap<Reverse<((u128, u64), DocId)>> = BinaryHeap::new();
        let mut matches = 0u64;
        for_each_match(segment, weight, start, |doc| {
            matches += 1;
            let seq = seqs.first(doc).unwrap_or(0);
            let local = reader.local(doc, seq);
            let doc_rank = rank(local, seq, order);
            if cursor_rank.is_some_and(|cursor_rank| doc_rank >= cursor_rank) {
                return true;
            }
            if heap.len() == limit {
                let Some(Reverse((worst, _))) = heap.peek() else {
                    return true;
                };
                if doc_rank <= *worst {
                    // In index order nothing later in this segment can be better once a
                    // strictly lower time turns up.
                    return !(sorted && doc_rank.0 < worst.0);
                }
                heap.pop();
            } else if let Some(floor) = floor
                && doc_rank <= floor
            {
                return !(sorted && doc_rank.0 < floor.0);
            }
            heap.push(Reverse((doc_rank, doc)));
            true
        })?;
        counted = counted.map(|total| total + matches);
        for Reverse(((local_rank, seq_rank), _)) in heap {
            let (local, seq) = match order {
                SortOrder::Desc => (local_rank, seq_rank),
                SortOrder::Asc => (u128::MAX - local_rank, u64::MAX - seq_rank),
            };
            page.push((reader.key(local)?, seq));
        }
        sort_page(&mut page, order);
        page.truncate(limit);
        if page.len() == limit {
            page_worst = page.last().cloned();
        }
    }
    Ok((page, counted))
}

fn sort_page(page: &mut [(SortKey, u64)], order: SortOrder) {
    match order {
        SortOrder::Asc => page.sort(),
        SortOrder::Desc => page.sort_by(|a, b| b.cmp(a)),
    }
}

/// In a segment sorted by time descending: the first document whose time is at or below
/// `cursor_local` (binary search over the time column).
fn first_doc_at_or_below(segment: &SegmentReader, reader: &KeyReader, cursor_local: u128) -> DocId {
    let KeyReader::Signed(column) = reader else {
        return 0;
    };
    let (mut lo, mut hi) = (0, segment.max_doc());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if signed(column.first(mid).unwrap_or(i64::MIN)) > cursor_local {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// A column whose distinct values can be counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FacetField {
    User,
    Ip,
    PrimaryKey,
    Action,
    Table,
    Message,
    Source,
}

impl FacetField {
    pub const ALL: [FacetField; 7] = [
        FacetField::User,
        FacetField::Ip,
        FacetField::PrimaryKey,
        FacetField::Action,
        FacetField::Table,
        FacetField::Message,
        FacetField::Source,
    ];

    pub fn name(self) -> &'static str {
        self.sort_field().name()
    }

    pub fn from_name(name: &str) -> Option<FacetField> {
        let sort = SortField::from_name(name)?;
        FacetField::ALL
            .into_iter()
            .find(|field| field.sort_field() == sort)
    }

    /// The fast text column holding the values as stored.
    fn column(self) -> &'static str {
        match self {
            FacetField::Ip => "ip_s",
            other => other.sort_field().text_column().unwrap_or_default(),
        }
    }

    fn sort_field(self) -> SortField {
        match self {
            FacetField::User => SortField::User,
            FacetField::Ip => SortField::Ip,
            FacetField::PrimaryKey => SortField::PrimaryKey,
            FacetField::Action => SortField::Action,
            FacetField::Table => SortField::Table,
            FacetField::Message => SortField::Message,
            FacetField::Source => SortField::Source,
        }
    }
}

/// Columns with at most this many distinct values in a segment are counted in an array.
const DENSE_FACET_TERMS: usize = 1 << 22;

/// Distinct values of a column among the matches with their counts, most frequent first
/// (equal counts by value), at most `limit`; and how many distinct values there were.
pub(crate) fn facets(
    searcher: &Searcher,
    weight: &dyn Weight,
    field: FacetField,
    limit: usize,
) -> TResult<(Vec<(String, u64)>, u64)> {
    let mut totals: HashMap<String, u64> = HashMap::new();
    for segment in searcher.segment_readers() {
        let reader = KeyReader::open_text(segment, field.column())?;
        // Counts by term ordinal: a dense array while the column's dictionary is small
        // enough (the common case: users, actions, tables), a map otherwise.
        let terms = match &reader {
            KeyReader::Text { column, .. } => column.num_terms(),
            _ => 0,
        };
        let mut counts: Vec<(u128, u64)> = Vec::new();
        if terms <= DENSE_FACET_TERMS {
            // Slot 0: no value; slot o+1: ordinal o (the local key is 2 × slot).
            let mut dense = vec![0u32; terms + 1];
            for_each_match(segment, weight, 0, |doc| {
                let slot = (reader.local(doc, 0) / 2) as usize;
                if let Some(count) = dense.get_mut(slot) {
                    *count += 1;
                }
                true
            })?;
            counts.extend(
                dense
                    .iter()
                    .enumerate()
                    .filter(|(_, count)| **count > 0)
                    .map(|(slot, count)| (slot as u128 * 2, u64::from(*count))),
            );
        } else {
            let mut sparse: HashMap<u128, u64> = HashMap::new();
            for_each_match(segment, weight, 0, |doc| {
                *sparse.entry(reader.local(doc, 0)).or_default() += 1;
                true
            })?;
            counts.extend(sparse);
        }
        for (local, count) in counts {
            if let SortKey::Text(value) = reader.key(local)? {
                *totals.entry(value).or_default() += count;
            }
        }
    }
    let distinct = totals.len() as u64;
    let mut values: Vec<(String, u64)> = totals.into_iter().collect();
    values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    values.truncate(limit);
    Ok((values, distinct))
}

/// The smallest and largest `time` (ns) among the matches.
pub(crate) fn time_span(searcher: &Searcher, weight: &dyn Weight) -> TResult<Option<(i64, i64)>> {
    let mut span: Option<(i64, i64)> = None;
    for segment in searcher.segment_readers() {
        let times = segment.fast_fields().i64("time")?;
        for_each_match(segment, weight, 0, |doc| {
            if let Some(time) = times.first(doc) {
                span = Some(match span {
                    Some((lo, hi)) => (lo.min(time), hi.max(time)),
                    None => (time, time),
                });
            }
            true
        })?;
    }
    Ok(span)
}

/// Counts of matches per bucket `[first + i × width, first + (i+1) × width)`, for
/// `buckets` buckets.
pub(crate) fn bucket_counts(
    searcher: &Searcher,
    weight: &dyn Weight,
    first: i64,
    width: i64,
    buckets: usize,
) -> TResult<Vec<u64>> {
    let mut counts = vec![0u64; buckets];
    for segment in searcher.segment_readers() {
        let times = segment.fast_fields().i64("time")?;
        for_each_match(segment, weight, 0, |doc| {
            if let Some(time) = times.first(doc) {
                let idx = (i128::from(time) - i128::from(first)) / i128::from(width);
                if let Ok(idx) = usize::try_from(idx)
                    && idx < buckets
                {
                    counts[idx] += 1;
                }
            }
            true
        })?;
    }
    Ok(counts)
}

/// The seqs of every match up to `max_seq`, as a bitset indexed by seq (a log of n events
/// needs n/8 bytes, whatever the number of matches).
pub(crate) fn matching_seqs(
    searcher: &Searcher,
    weight: &dyn Weight,
    max_seq: u64,
) -> TResult<SeqSet> {
    let mut set = SeqSet::new(max_seq);
    for segment in searcher.segment_readers() {
        let seqs = segment.fast_fields().u64("seq")?;
        for_each_match(segment, weight, 0, |doc| {
            if let Some(seq) = seqs.first(doc) {
                set.insert(seq);
            }
            true
        })?;
    }
    Ok(set)
}

/// A set of seqs from 1 to a maximum.
#[derive(Debug, Clone)]
pub struct SeqSet {
    words: Vec<u64>,
    max: u64,
}

impl SeqSet {
    pub fn new(max: u64) -> SeqSet {
        SeqSet {
            words: vec![0; (max / 64 + 1) as usize],
            max,
        }
    }

    pub fn insert(&mut self, seq: u64) {
        if seq <= self.max {
            self.words[(seq / 64) as usize] |= 1 << (seq % 64);
        }
    }

    pub fn len(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// The seqs in ascending order.
    pub fn ascending(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(|(idx, &word)| {
            let base = idx as u64 * 64;
            BitIter(word).map(move |bit| base + bit)
        })
    }

    /// The seqs in descending order.
    pub fn descending(&self) -> impl Iterator<Item = u64> + '_ {
        self.words
            .iter()
            .enumerate()
            .rev()
            .flat_map(|(idx, &word)| {
                let base = idx as u64 * 64;
                BitIterRev(word).map(move |bit| base + bit)
            })
    }
}

struct BitIter(u64);

impl Iterator for BitIter {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        if self.0 == 0 {
            return None;
        }
        let bit = u64::from(self.0.trailing_zeros());
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

struct BitIterRev(u64);

impl Iterator for BitIterRev {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        if self.0 == 0 {
            return None;
        }
        let bit = 63 - u64::from(self.0.leading_zeros());
        self.0 &= !(1 << bit);
        Some(bit)
    }
}

#[cfg(test)]
mod tests {
    use super::SeqSet;

    #[test]
    fn a_seq_set_iterates_both_ways() {
        let mut set = SeqSet::new(200);
        for seq in [1, 63, 64, 65, 127, 128, 200, 201] {
            set.insert(seq);
        }
        let up: Vec<u64> = set.ascending().collect();
        assert_eq!(up, vec![1, 63, 64, 65, 127, 128, 200]);
        let down: Vec<u64> = set.descending().collect();
        assert_eq!(down, up.iter().rev().copied().collect::<Vec<_>>());
        assert_eq!(set.len(), 7);
    }
}
