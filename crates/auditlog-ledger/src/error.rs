//! The one error type of the ledger crate.
//!
//! Every variant is a noun for the thing that was wrong, so callers can map it to a finding
//! (a verify report), an HTTP status or an exit code without parsing messages. A failed proof or
//! a bad signature is an ordinary value here, never a panic: the bytes come from storage, the
//! network or an auditor's bundle.

/// Everything that can go wrong while hashing, proving, tiling or signing.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A leaf index at or past the end of the tree it was asked about.
    #[error("leaf index {index} is not in a tree of size {size}")]
    LeafIndex { index: u64, size: u64 },

    /// Two tree sizes in the wrong order (a tree never shrinks).
    #[error("tree size {from} is larger than tree size {to}")]
    SizeOrder { from: u64, to: u64 },

    /// A proof that does not lead to the claimed root (or is not shaped for the claimed sizes).
    #[error("proof does not verify: {reason}")]
    Proof { reason: &'static str },

    /// A node the proof or root computation needs is not (yet) stored.
    #[error("node at level {level} index {index} is not available")]
    MissingNode { level: u8, index: u64 },

    /// A tile the reader needs is not stored.
    #[error("tile at level {level} index {index} not found")]
    MissingTile { level: u8, index: u64 },

    /// A stored tile that is narrower than the node being read needs.
    #[error("tile at level {level} index {index} has {have} hashes, {need} needed")]
    ShortTile {
        level: u8,
        index: u64,
        have: usize,
        need: usize,
    },

    /// Stored tile bytes that cannot be a tile, or tiles that contradict each other.
    #[error("corrupted tile at level {level} index {index}: {reason}")]
    CorruptTile {
        level: u8,
        index: u64,
        reason: String,
    },

    /// The tiles handed to `TileWriter::resume` do not describe the right edge of the tree.
    #[error("right edge of a tree of size {size} does not fit: {reason}")]
    RightEdge { size: u64, reason: String },

    /// A tile path that is not in the C2SP tlog-tiles form.
    #[error("invalid tile path {path:?}: {reason}")]
    TilePath { path: String, reason: &'static str },

    /// A failure of the storage behind a `TileReader`, passed through unchanged.
    #[error("tile fetch failed: {0}")]
    Fetch(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),

    /// A signed note that is not in the C2SP signed-note form.
    #[error("malformed note: {0}")]
    MalformedNote(&'static str),

    /// A signer or verifier key string that is not in the signed-note key form.
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),

    /// A note carries no signature line by the expected key (name and key id).
    #[error("note has no signature by key {name}+{key_id}")]
    UnknownKey { name: String, key_id: String },

    /// A signature line by the expected key whose Ed25519 signature does not verify.
    #[error("invalid signature by key {name}+{key_id}")]
    BadSignature { name: String, key_id: String },

    /// A note body that is not a C2SP tlog-checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
}
