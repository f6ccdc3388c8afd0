//! Compression of stored events: zstd frames, with a per-tenant dictionary trained from the
//! tenant's own first events (raw events average ~670 bytes, mostly repeated keys, which a
//! dictionary removes). Dictionary 0 means a plain zstd frame.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;

/// Largest canonical event we ever decompress: 1 MiB event plus server fields and the
/// escaping RFC 8785 may add.
pub(crate) const MAX_CANONICAL: usize = 4 << 20;

/// Events seen before a tenant's dictionary is trained, and the dictionary's size.
pub(crate) const DICT_TRAIN_AFTER: usize = 4096;
pub(crate) const DICT_MAX_BYTES: usize = 64 * 1024;

/// Dictionary bytes by id, shared by all readers (dictionaries never change once stored).
#[derive(Default)]
pub(crate) struct Dictionaries {
    bytes: Mutex<HashMap<i64, Arc<Vec<u8>>>>,
}

impl Dictionaries {
    fn get(&self, conn: &Connection, dict_id: i64) -> Result<Arc<Vec<u8>>, StoreError> {
        if let Some(found) = self.lock().get(&dict_id) {
            return Ok(found.clone());
        }
        let bytes: Vec<u8> = conn
            .query_row(
                "SELECT data FROM dicts WHERE id = ?1",
                params![dict_id],
                |row| row.get(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::Corrupted(format!("dictionary {dict_id} is missing")))?;
        let bytes = Arc::new(bytes);
        self.lock().insert(dict_id, bytes.clone());
        Ok(bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<Vec<u8>>>> {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A decompressor that keeps one zstd context per dictionary it has met.
#[derive(Default)]
pub(crate) struct Decoder {
    contexts: HashMap<i64, zstd::bulk::Decompressor<'static>>,
}

impl Decoder {
    pub(crate) fn decompress(
        &mut self,
        dicts: &Dictionaries,
        conn: &Connection,
        dict_id: i64,
        blob: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let dctx = match self.contexts.entry(dict_id) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(
                if dict_id == 0 {
                    zstd::bulk::Decompressor::new()
                } else {
                    zstd::bulk::Decompressor::with_dictionary(&dicts.get(conn, dict_id)?)
                }
                .map_err(|e| StoreError::io("zstd context", e))?,
            ),
        };
        dctx.decompress(blob, MAX_CANONICAL)
            .map_err(|e| StoreError::Corrupted(format!("stored event does not decompress: {e}")))
    }
}

/// The writer's compressor for one tenant.
pub(crate) struct Encoder {
    pub(crate) dict_id: i64,
    ctx: zstd::bulk::Compressor<'static>,
}

impl Encoder {
    pub(crate) fn new(dict_id: i64, dict: &[u8], level: i32) -> Result<Encoder, StoreError> {
        let mut ctx = if dict.is_empty() {
            zstd::bulk::Compressor::new(level)
        } else {
            zstd::bulk::Compressor::with_dictionary(level, dict)
        }
        .map_err(|e| StoreError::io("zstd context", e))?;
        // The dictionary id is in the row already; leaving it out of the frame saves 4 bytes.
        ctx.set_parameter(zstd::stream::raw::CParameter::DictIdFlag(false))
            .map_err(|e| StoreError::io("zstd parameter", e))?;
        Ok(Encoder { dict_id, ctx })
    }

    pub(crate) fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.ctx
            .compress(data)
            .map_err(|e| StoreError::io("zstd compress", e))
    }
}

/// Train a dictionary from sample events (runs off the writer thread).
pub(crate) fn train(samples: &[Vec<u8>]) -> Option<Vec<u8>> {
    zstd::dict::from_samples(samples, DICT_MAX_BYTES).ok()
}
