//! How an event is kept on disk: the client part of its canonical form (the three
//! [`CanonicalParts`]) in a small frame, compressed with zstd and, once the tenant has enough
//! events, a dictionary trained from its own events (raw events average ~670 bytes, mostly
//! repeated keys, which a dictionary removes). Dictionary 0 means a plain zstd frame.
//! Literals are stored raw, without zstd's Huffman stage: a standard frame that costs ~36 bytes
//! more per event and decompresses ~15% faster; `verify` and every read of an event gain.
//!
//! The server fields (`tenant`, `seq`, `received_at`) are columns and are spliced back in to
//! rebuild the exact bytes that were hashed. Keeping them out of the compressed frame lets the
//! HTTP threads compress in parallel before the writer assigns a seq, which takes ~40% of the
//! work off the single writer thread.
//!
//! Plain frame: `u32 LE len(head) ‖ u32 LE len(middle) ‖ head ‖ middle ‖ tail`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use auditlog_core::event::CanonicalParts;
use auditlog_core::tenant::TenantId;

use crate::StoreError;

/// Largest plain frame we ever decompress. An accepted event is at most 1 MiB as sent, but
/// RFC 8785 can write it up to ~4× longer (`1e15` becomes `1000000000000000`).
pub(crate) const MAX_PLAIN: usize = 16 << 20;

/// Events collected before a tenant's dictionary is trained, and the dictionary's size.
pub(crate) const DICT_TRAIN_AFTER: usize = 4096;
pub(crate) const DICT_MAX_BYTES: usize = 64 * 1024;

pub(crate) fn encode_plain(parts: &CanonicalParts) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + parts.head.len() + parts.middle.len() + parts.tail.len());
    write_plain(parts, &mut out);
    out
}

fn write_plain(parts: &CanonicalParts, out: &mut Vec<u8>) {
    out.extend_from_slice(&(parts.head.len() as u32).to_le_bytes());
    out.extend_from_slice(&(parts.middle.len() as u32).to_le_bytes());
    out.extend_from_slice(&parts.head);
    out.extend_from_slice(&parts.middle);
    out.extend_from_slice(&parts.tail);
}

/// The three pieces of a plain frame, borrowed.
pub(crate) fn split_plain(plain: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let head_len = u32::from_le_bytes(plain.get(0..4)?.try_into().ok()?) as usize;
    let middle_len = u32::from_le_bytes(plain.get(4..8)?.try_into().ok()?) as usize;
    let rest = plain.get(8..)?;
    let head = rest.get(..head_len)?;
    let middle = rest.get(head_len..head_len.checked_add(middle_len)?)?;
    let tail = rest.get(head_len + middle_len..)?;
    Some((head, middle, tail))
}

pub(crate) fn decode_plain(plain: &[u8]) -> Option<CanonicalParts> {
    let (head, middle, tail) = split_plain(plain)?;
    Some(CanonicalParts {
        head: head.to_vec(),
        middle: middle.to_vec(),
        tail: tail.to_vec(),
    })
}

/// A dictionary's id and bytes.
type Dictionary = (i64, Arc<Vec<u8>>);

/// Dictionaries: by id for decompression, and the current one of each tenant for compression.
#[derive(Default)]
pub(crate) struct Dictionaries {
    bytes: Mutex<HashMap<i64, Arc<Vec<u8>>>>,
    current: RwLock<HashMap<TenantId, Dictionary>>,
}

impl Dictionaries {
    /// The dictionary `dict_id`, read with `load` on first use.
    pub(crate) fn get(
        &self,
        dict_id: i64,
        load: impl FnOnce(i64) -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<Arc<Vec<u8>>, StoreError> {
        if let Some(found) = self.lock().get(&dict_id) {
            return Ok(found.clone());
        }
        let bytes = load(dict_id)?
            .ok_or_else(|| StoreError::Corrupted(format!("dictionary {dict_id} is missing")))?;
        let bytes = Arc::new(bytes);
        self.lock().insert(dict_id, bytes.clone());
        Ok(bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<Vec<u8>>>> {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The dictionary new events of `tenant` are compressed with (0 and empty: none yet).
    pub(crate) fn current(&self, tenant: &TenantId) -> Dictionary {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .cloned()
            .unwrap_or_else(|| (0, Arc::new(Vec::new())))
    }

    pub(crate) fn set_current(&self, tenant: &TenantId, dict_id: i64, bytes: Arc<Vec<u8>>) {
        self.lock().insert(dict_id, bytes.clone());
        self.current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant.clone(), (dict_id, bytes));
    }
}

thread_local! {
    /// One zstd context per dictionary per thread: loading a 64 KiB dictionary into a fresh
    /// context costs far more than compressing one event.
    static COMPRESSORS: RefCell<HashMap<(i64, i32), zstd::bulk::Compressor<'static>>> =
        RefCell::new(HashMap::new());
    /// The plain frame being compressed, reused from event to event.
    static PLAIN: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Compress the plain frame of `parts` (see [`compress`]), built in a reused buffer.
pub(crate) fn compress_parts(
    dict_id: i64,
    dict: &[u8],
    level: i32,
    parts: &CanonicalParts,
) -> Result<Vec<u8>, StoreError> {
    PLAIN.with(|cell| {
        let mut plain = cell.borrow_mut();
        plain.clear();
        write_plain(parts, &mut plain);
        compress(dict_id, dict, level, &plain)
    })
}

/// Compress one plain frame with the given dictionary, on the calling thread.
pub(crate) fn compress(
    dict_id: i64,
    dict: &[u8],
    level: i32,
    plain: &[u8],
) -> Result<Vec<u8>, StoreError> {
    COMPRESSORS.with(|cell| {
        let mut map = cell.borrow_mut();
        if map.len() > 16 {
            map.clear();
        }
        let ctx = match map.entry((dict_id, level)) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let mut ctx = if dict.is_empty() {
                    zstd::bulk::Compressor::new(level)
                } else {
                    zstd::bulk::Compressor::with_dictionary(level, dict)
                }
                .map_err(|e| StoreError::io("zstd context", e))?;
                // The dictionary id is in the row; leaving it out of the frame saves 4 bytes.
                ctx.set_parameter(zstd::stream::raw::CParameter::DictIdFlag(false))
                    .map_err(|e| StoreError::io("zstd parameter", e))?;
                // Literals stay raw (no Huffman stage): ~36 B more per event, but reading
                // an event back (verify, search pages, the indexer) decompresses ~15% faster.
                ctx.set_parameter(zstd::stream::raw::CParameter::LiteralCompressionMode(
                    zstd::zstd_safe::ParamSwitch::Disable,
                ))
                .map_err(|e| StoreError::io("zstd parameter", e))?;
                slot.insert(ctx)
            }
        };
        ctx.compress(plain)
            .map_err(|e| StoreError::io("zstd compress", e))
    })
}

/// A decompressor that keeps one zstd context per dictionary it has met, and one output
/// buffer sized from each frame's header (never the 16 MiB maximum: allocating that per event
/// was a quarter of `verify`'s time).
#[derive(Default)]
pub(crate) struct Decoder {
    contexts: HashMap<i64, zstd::bulk::Decompressor<'static>>,
    buffer: Vec<u8>,
}

impl Decoder {
    /// Decompress with dictionaries fetched by `dict` on first use; the result lives until the
    /// next call.
    pub(crate) fn decompress_with(
        &mut self,
        dict_id: i64,
        blob: &[u8],
        dict: impl FnOnce(i64) -> Result<Arc<Vec<u8>>, String>,
    ) -> Result<&[u8], String> {
        let dctx = match self.contexts.entry(dict_id) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let created = if dict_id == 0 {
                    zstd::bulk::Decompressor::new()
                } else {
                    zstd::bulk::Decompressor::with_dictionary(&dict(dict_id)?)
                };
                slot.insert(created.map_err(|e| format!("zstd: {e}"))?)
            }
        };
        let size = match zstd::zstd_safe::get_frame_content_size(blob) {
            Ok(Some(size)) if size <= MAX_PLAIN as u64 => size as usize,
            Ok(Some(size)) => return Err(format!("it claims {size} bytes, more than any event")),
            _ => return Err("it is not a zstd frame with a size".to_owned()),
        };
        self.buffer.clear();
        self.buffer.reserve(size);
        let written = dctx
            .decompress_to_buffer(blob, &mut self.buffer)
            .map_err(|e| format!("it does not decompress ({e})"))?;
        if written != size {
            return Err(format!(
                "it decompresses to {written} bytes, not the {size} it claims"
            ));
        }
        Ok(&self.buffer)
    }

    /// Decompress and split a stored event into its canonical parts.
    pub(crate) fn parts(
        &mut self,
        dicts: &Dictionaries,
        load: impl FnOnce(i64) -> Result<Option<Vec<u8>>, StoreError>,
        dict_id: i64,
        blob: &[u8],
    ) -> Result<CanonicalParts, StoreError> {
        let plain = self
            .decompress_with(dict_id, blob, |id| {
                dicts.get(id, load).map_err(|e| e.to_string())
            })
            .map_err(|why| StoreError::Corrupted(format!("a stored event: {why}")))?;
        decode_plain(plain)
            .ok_or_else(|| StoreError::Corrupted("a stored event has a broken frame".into()))
    }
}

/// Train a dictionary from sample frames (runs off the writer thread).
pub(crate) fn train(samples: &[Vec<u8>]) -> Option<Vec<u8>> {
    zstd::dict::from_samples(samples, DICT_MAX_BYTES).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_frames_round_trip_and_broken_ones_are_refused() {
        let parts = CanonicalParts {
            head: b"{\"action\":\"X\"".to_vec(),
            middle: b"\"table\":\"t\"".to_vec(),
            tail: b"\"user\":\"u\"}".to_vec(),
        };
        let plain = encode_plain(&parts);
        let back = decode_plain(&plain).expect("round trip");
        assert_eq!(
            (back.head, back.middle, back.tail),
            (parts.head, parts.middle, parts.tail)
        );
        assert!(decode_plain(&plain[..6]).is_none());
        let mut long = plain.clone();
        long[0] = 0xff;
        assert!(decode_plain(&long).is_none());
    }
}
