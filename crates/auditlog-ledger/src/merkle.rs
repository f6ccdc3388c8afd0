//! The RFC 9162 Merkle tree over SHA-256: leaf and node hashes, tree heads, inclusion and
//! consistency proofs and their verification, the streaming `Frontier` and the in-memory
//! `MemoryTree`.
//!
//! This module owns the hash inputs of the log (RFC 9162 §2.1.1: `0x00` before a leaf, `0x01`
//! before two children) and is the only place that hashes them. It does not know where nodes are
//! stored: proofs read complete subtree hashes through a `NodeReader`, which the tiles module
//! (`TileReader`) or `MemoryTree` provide. Nothing here allocates per leaf.

use sha2::{Digest, Sha256};

use crate::LedgerError;

/// A SHA-256 output: a leaf hash, a node hash or a tree head.
pub type Hash = [u8; 32];

/// The largest perfect subtree `perfect_root` hashes in one call: one full tile.
const MAX_PERFECT: usize = 256;

/// RFC 9162 §2.1.1: the hash of a leaf is SHA-256(0x00 || data); the prefix keeps a leaf from
/// ever colliding with an interior node (second-preimage resistance).
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

/// RFC 9162 §2.1.1: the hash of an interior node is SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // One contiguous 65-byte input: a single `digest` call is measurably cheaper than three
    // `update`s through the block buffer, and this runs once per leaf in every verify.
    let mut input = [0u8; 65];
    input[0] = 0x01;
    input[1..33].copy_from_slice(left);
    input[33..].copy_from_slice(right);
    Sha256::digest(input).into()
}

/// RFC 9162 §2.1.1: the hash of the empty tree is SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The Merkle tree hash (RFC 9162 §2.1.1 MTH) of already-hashed leaves; the empty list gives
/// `empty_root()`.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier.root()
}

/// Access to the hashes of complete (perfect) subtrees of one append-only tree.
pub trait NodeReader {
    /// Hash of the complete (perfect) subtree at `level` covering leaves
    /// [index << level, (index+1) << level).
    fn node(&mut self, level: u8, index: u64) -> Result<Hash, LedgerError>;
}

impl<R: NodeReader + ?Sized> NodeReader for &mut R {
    fn node(&mut self, level: u8, index: u64) -> Result<Hash, LedgerError> {
        (**self).node(level, index)
    }
}

/// The tree head of the first `size` leaves, read as the popcount(size) perfect subtrees that
/// make up that prefix.
pub fn root_at(size: u64, reader: &mut impl NodeReader) -> Result<Hash, LedgerError> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_root(0, size, reader)
}

/// RFC 9162 §2.1.3.1: the inclusion proof (audit path) of leaf `leaf_index` in the tree of
/// `size` leaves, ordered from the leaf's sibling up to the child of the root.
pub fn inclusion_proof(
    leaf_index: u64,
    size: u64,
    reader: &mut impl NodeReader,
) -> Result<Vec<Hash>, LedgerError> {
    if leaf_index >= size {
        return Err(LedgerError::LeafIndex {
            index: leaf_index,
            size,
        });
    }
    // PATH(m, D[start:start+n]) unrolled from the root down. `start` stays a multiple of the
    // next power of two >= n, so the left part [start, start+k) is always one stored node.
    let mut proof = Vec::with_capacity(64);
    let (mut start, mut n, mut m) = (0u64, size, leaf_index);
    while n > 1 {
        let k = largest_power_of_two_below(n);
        let k_level = k.trailing_zeros() as u8;
        if m < k {
            proof.push(range_root(start + k, n - k, reader)?);
            n = k;
        } else {
            proof.push(reader.node(k_level, start >> k_level)?);
            start += k;
            m -= k;
            n -= k;
        }
    }
    // The recursion emits the root's child first; RFC 9162 orders the path leaf first.
    proof.reverse();
    Ok(proof)
}

/// RFC 9162 §2.1.4.1: the consistency proof between the trees of `from` and `to` leaves.
/// `from == 0` and `from == to` have the empty proof.
pub fn consistency_proof(
    from: u64,
    to: u64,
    reader: &mut impl NodeReader,
) -> Result<Vec<Hash>, LedgerError> {
    if from > to {
        return Err(LedgerError::SizeOrder { from, to });
    }
    if from == 0 || from == to {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[start:start+n], b) unrolled from the root down.
    let mut proof = Vec::with_capacity(64);
    let (mut start, mut n, mut m, mut whole) = (0u64, to, from, true);
    loop {
        if m == n {
            // The old tree is this subtree; its hash is only needed when the verifier cannot
            // know it already, i.e. when it is not the whole old tree (b == false).
            if !whole {
                proof.push(range_root(start, m, reader)?);
            }
            break;
        }
        let k = largest_power_of_two_below(n);
        let k_level = k.trailing_zeros() as u8;
        if m <= k {
            proof.push(range_root(start + k, n - k, reader)?);
            n = k;
        } else {
            proof.push(reader.node(k_level, start >> k_level)?);
            start += k;
            m -= k;
            n -= k;
            whole = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// RFC 9162 §2.1.3.2: checks that `proof` leads from `leaf` at `leaf_index` to `root` in a tree
/// of `size` leaves.
pub fn verify_inclusion(
    leaf_index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), LedgerError> {
    if leaf_index >= size {
        return Err(LedgerError::LeafIndex {
            index: leaf_index,
            size,
        });
    }
    let (mut fn_, mut sn) = (leaf_index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(LedgerError::Proof {
                reason: "inclusion proof is too long",
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(LedgerError::Proof {
            reason: "inclusion proof is too short",
        });
    }
    if &r != root {
        return Err(LedgerError::Proof {
            reason: "inclusion proof leads to a different root",
        });
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: checks that the tree of `to` leaves with head `to_root` extends the tree
/// of `from` leaves with head `from_root`.
///
/// Stricter than the RFC's algorithm at the edges it leaves open: for `from == 0` the proof must
/// be empty and `from_root` must be the empty tree's head; for `from == to` the proof must be
/// empty and the heads equal.
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), LedgerError> {
    if from > to {
        return Err(LedgerError::SizeOrder { from, to });
    }
    if from == 0 || from == to {
        if !proof.is_empty() {
            return Err(LedgerError::Proof {
                reason: "consistency proof must be empty for these sizes",
            });
        }
        let from_ok = from != 0 || *from_root == empty_root();
        let to_ok = from != to || from_root == to_root;
        if !(from_ok && to_ok) {
            return Err(LedgerError::Proof {
                reason: "tree heads differ",
            });
        }
        return Ok(());
    }
    // Step 1: an empty path cannot prove anything between two different sizes.
    let Some((first, rest)) = proof.split_first() else {
        return Err(LedgerError::Proof {
            reason: "consistency proof is empty",
        });
    };
    // Step 2: when `from` is a power of two the old head is itself a node of the new tree and
    // the proof omits it; start from it.
    let (seed, path) = if from.is_power_of_two() {
        (from_root, proof)
    } else {
        (first, rest)
    };
    // Steps 3 and 4.
    let (mut fn_, mut sn) = (from - 1, to - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let (mut fr, mut sr) = (*seed, *seed);
    // Step 6.
    for c in path {
        if sn == 0 {
            return Err(LedgerError::Proof {
                reason: "consistency proof is too long",
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(LedgerError::Proof {
            reason: "consistency proof is too short",
        });
    }
    if &fr != from_root {
        return Err(LedgerError::Proof {
            reason: "consistency proof leads to a different old root",
        });
    }
    if &sr != to_root {
        return Err(LedgerError::Proof {
            reason: "consistency proof leads to a different new root",
        });
    }
    Ok(())
}

/// The compact range [0, size) of an append-only tree: the roots of the perfect subtrees that
/// make up the prefix, largest first. O(log n) memory; `push` does no allocation, so a verifier
/// can stream millions of leaves through it and compare `root()` with every checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// One hash per set bit of `size`, from the highest bit (leftmost subtree) down.
    hashes: Vec<Hash>,
}

impl Default for Frontier {
    fn default() -> Self {
        Self::new()
    }
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Frontier {
            size: 0,
            // A u64 size has at most 64 set bits: the stack never grows past this.
            hashes: Vec::with_capacity(64),
        }
    }

    /// Resume from a stored frontier: `hashes` are the perfect subtree roots of the prefix of
    /// `size` leaves, largest first (what `hashes()` returned).
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, LedgerError> {
        if hashes.len() != size.count_ones() as usize {
            return Err(LedgerError::RightEdge {
                size,
                reason: format!(
                    "a frontier needs {} hashes, one per set bit of the size, not {}",
                    size.count_ones(),
                    hashes.len()
                ),
            });
        }
        let mut stack = Vec::with_capacity(64);
        stack.extend_from_slice(&hashes);
        Ok(Frontier {
            size,
            hashes: stack,
        })
    }

    /// Number of leaves pushed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtree roots, largest (leftmost) first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends one leaf hash; merges the equal-sized subtrees it completes.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        // Each trailing one bit of the old size is a subtree of the same size as the one being
        // carried: merge, as in binary addition.
        while size & 1 == 1 {
            if let Some(left) = self.hashes.pop() {
                hash = node_hash(&left, &hash);
            }
            size >>= 1;
        }
        self.hashes.push(hash);
        self.size += 1;
    }

    /// The tree head of the leaves pushed so far (RFC 9162 §2.1.1 MTH).
    pub fn root(&self) -> Hash {
        fold_right(&self.hashes)
    }
}

/// An append-only tree kept entirely in memory, every complete node stored: O(1) node reads, so
/// proofs for a whole export cost O(n log n). For tests, exports and offline verification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree {
    /// `levels[l][i]` is the perfect subtree at level `l`, index `i`; `levels[0]` are the leaves.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree holding `leaves` (already hashed) in order.
    pub fn from_leaves(leaves: &[Hash]) -> Self {
        let mut tree = MemoryTree::new();
        for leaf in leaves {
            tree.push(*leaf);
        }
        tree
    }

    /// Appends one leaf hash and the complete nodes it finishes.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(hash);
            let len = row.len();
            if len % 2 == 1 {
                break;
            }
            hash = node_hash(&row[len - 2], &row[len - 1]);
            level += 1;
        }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |row| row.len() as u64)
    }

    /// The leaf hashes in order.
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], |row| row.as_slice())
    }

    /// The tree head of all leaves.
    pub fn root(&self) -> Hash {
        let mut reader = self;
        // Every complete node of the current size is stored, so the read cannot miss.
        root_at(self.size(), &mut reader).unwrap_or_else(|_| empty_root())
    }

    fn stored_node(&self, level: u8, index: u64) -> Result<Hash, LedgerError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels.get(usize::from(level))?.get(i))
            .copied()
            .ok_or(LedgerError::MissingNode { level, index })
    }
}

impl NodeReader for &MemoryTree {
    fn node(&mut self, level: u8, index: u64) -> Result<Hash, LedgerError> {
        self.stored_node(level, index)
    }
}

impl NodeReader for MemoryTree {
    fn node(&mut self, level: u8, index: u64) -> Result<Hash, LedgerError> {
        self.stored_node(level, index)
    }
}

/// The hash of the range [start, start + len) of leaves, as RFC 9162's MTH of that range.
/// `start` must be a multiple of the next power of two >= `len` (true for every range the
/// proof recursions produce), so each piece is one aligned perfect subtree.
pub(crate) fn range_root(
    start: u64,
    len: u64,
    reader: &mut impl NodeReader,
) -> Result<Hash, LedgerError> {
    let mut parts = [[0u8; 32]; 64];
    let mut n_parts = 0;
    let mut pos = start;
    for level in (0..64u8).rev() {
        let width = 1u64 << level;
        if len & width != 0 {
            parts[n_parts] = reader.node(level, pos >> level)?;
            n_parts += 1;
            pos += width;
        }
    }
    Ok(fold_right(&parts[..n_parts]))
}

/// Combines perfect subtree roots (largest, leftmost first) into one tree head: RFC 9162's MTH
/// splits off the largest power of two on the left, so the right part is folded first.
fn fold_right(parts: &[Hash]) -> Hash {
    let Some((last, rest)) = parts.split_last() else {
        return empty_root();
    };
    rest.iter()
        .rev()
        .fold(*last, |acc, left| node_hash(left, &acc))
}

/// MTH of a power-of-two number (1..=256) of hashes, without allocating.
pub(crate) fn perfect_root(hashes: &[Hash]) -> Hash {
    debug_assert!(hashes.len().is_power_of_two() && hashes.len() <= MAX_PERFECT);
    match hashes {
        [] => empty_root(),
        [one] => *one,
        _ => {
            let mut buf = [[0u8; 32]; MAX_PERFECT / 2];
            let mut n = hashes.len() / 2;
            for (slot, pair) in buf.iter_mut().zip(hashes.chunks_exact(2)) {
                *slot = node_hash(&pair[0], &pair[1]);
            }
            while n > 1 {
                for i in 0..n / 2 {
                    buf[i] = node_hash(&buf[2 * i], &buf[2 * i + 1]);
                }
                n /= 2;
            }
            buf[0]
        }
    }
}

/// The largest power of two strictly less than `n` (RFC 9162's `k`); `n` must be at least 2.
fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largest_power_of_two_below_matches_rfc_definition() {
        assert_eq!(largest_power_of_two_below(2), 1);
        assert_eq!(largest_power_of_two_below(3), 2);
        assert_eq!(largest_power_of_two_below(4), 2);
        assert_eq!(largest_power_of_two_below(5), 4);
        assert_eq!(largest_power_of_two_below(8), 4);
        assert_eq!(largest_power_of_two_below(9), 8);
        assert_eq!(largest_power_of_two_below(u64::MAX), 1 << 63);
    }

    #[test]
    fn perfect_root_agrees_with_root_of() {
        let leaves: Vec<Hash> = (0u32..256).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in [1, 2, 4, 8, 16, 32, 64, 128, 256] {
            assert_eq!(perfect_root(&leaves[..n]), root_of(&leaves[..n]));
        }
    }

    #[test]
    fn frontier_from_parts_rejects_wrong_count() {
        assert!(Frontier::from_parts(3, vec![[0; 32]]).is_err());
        assert!(Frontier::from_parts(3, vec![[0; 32]; 2]).is_ok());
    }

    #[test]
    fn memory_tree_reports_missing_nodes() {
        let mut tree =
            MemoryTree::from_leaves(&[leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")]);
        assert!(tree.node(1, 0).is_ok());
        assert!(matches!(
            tree.node(1, 1),
            Err(LedgerError::MissingNode { level: 1, index: 1 })
        ));
        assert!(tree.node(200, 0).is_err());
        assert!(tree.node(0, u64::MAX).is_err());
    }
}
