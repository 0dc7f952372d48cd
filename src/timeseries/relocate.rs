//! Moving a shard's time-series entries to another shard count (`tskv-tool reshard`).
//!
//! A series belongs to the shard of its user key, but its chunks and samples are keyed by
//! its *series id* ([`keys`]): the sequence number of the write that created it on its
//! shard, unique there only. So a series moving to a new shard gets a new id there (the
//! sequence number of its metadata's write on the new shard, as `TS.CREATE` would give),
//! and every entry keyed by the old id is rewritten under the new one. Entries are met in
//! key order, so a series' metadata (tag `0x01`) comes before its chunks and samples.
//!
//! * Sample entries older than the series' seal mark were sealed before a crash
//!   ([`super::open`]) and are left behind; the others are copied, and no seal mark is
//!   written, so on the new shard they are open samples (sealed at its next seal).
//! * A deletion mark ([`super::marks`]) is copied after its chunk if it cuts the
//!   chunk's version there, and left behind otherwise.
//! * Chunks and samples of a series with no metadata (left by a deleted series) are left
//!   behind too.
//! * A pending rule hand-over (a closed bucket or an unlink not yet acknowledged by the
//!   other shard, see [`super::handover`]) is refused: it names shards of the old count.

use std::collections::HashMap;

use crate::base::codec::FormatError;
use crate::base::{SeqNo, StoreError};
use crate::datadir::shard_of;
use crate::store::ShardStore;

use super::keys::{self, KeyClass};
use super::meta::SeriesMeta;

/// Why an entry cannot be moved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelocateError {
    /// Reading the source shard failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A metadata entry did not decode.
    #[error("damaged series metadata: {0}")]
    Format(#[from] FormatError),
    /// The shard holds rule hand-overs not yet acknowledged by another shard.
    #[error(
        "a compaction rule's hand-over between shards is still pending; start the server on \
         this directory with its current shard count until it is acknowledged (it is sent \
         at start-up), stop it, then reshard"
    )]
    PendingHandOver,
    /// An internal entry of a kind this version does not know.
    #[error("unknown internal entry (first bytes {0:02x?})")]
    Unknown(Vec<u8>),
}

/// An entry rewritten for its new shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The new shard's index.
    pub owner: usize,
    /// Its key there.
    pub key: Vec<u8>,
    /// Its value there.
    pub value: Vec<u8>,
}

/// Rewrites the internal entries of one source shard for `shard_count` shards.
#[derive(Debug)]
pub struct Relocator {
    shard_count: usize,
    /// Old series id → (new shard, new series id).
    ids: HashMap<u64, (usize, u64)>,
    /// Old series id → sequence number of its seal mark.
    sealed: HashMap<u64, SeqNo>,
    /// The last chunk met: (old series id, key timestamp, sequence number). Its deletion
    /// marks come right after it.
    last_chunk: Option<(u64, u64, SeqNo)>,
}

impl Relocator {
    /// Prepares to move the entries of `source` (one shard, opened and recovered) to
    /// `shard_count` shards: reads its seal marks.
    ///
    /// # Errors
    /// A failed read of `source`.
    pub fn new(source: &ShardStore, shard_count: usize) -> Result<Self, RelocateError> {
        let mut sealed = HashMap::new();
        for entry in source.scan_from(&keys::SEALED_START) {
            let entry = entry?;
            let Some(id) = keys::parse_sealed_key(&entry.key) else {
                break;
            };
            if entry.value.is_some() {
                sealed.insert(id, entry.seq);
            }
        }
        Ok(Self {
            shard_count,
            ids: HashMap::new(),
            sealed,
            last_chunk: None,
        })
    }

    /// The entry `key` (first byte [`keys::RESERVED_PREFIX`]) with its live `value`,
    /// written at `seq` on the source, rewritten for its new shard; `None` for an entry
    /// left behind. `next_id(shard)` is the sequence number the next write on new shard
    /// `shard` will get: a series' new id, as its metadata must be written right after.
    ///
    /// # Errors
    /// [`RelocateError::PendingHandOver`], a damaged metadata entry, an unknown entry.
    pub fn relocate(
        &mut self,
        key: &[u8],
        seq: SeqNo,
        value: &[u8],
        next_id: impl FnOnce(usize) -> u64,
    ) -> Result<Option<Moved>, RelocateError> {
        if let KeyClass::Series(user_key) = keys::classify(key) {
            let mut meta = SeriesMeta::decode(value)?;
            let owner = shard_of(user_key, self.shard_count).0;
            let new_id = next_id(owner);
            self.ids.insert(meta.series_id, (owner, new_id));
            meta.series_id = new_id;
            return Ok(Some(Moved {
                owner,
                key: key.to_vec(),
                value: meta.encode(),
            }));
        }
        if let Some((id, ts_ms)) = keys::parse_chunk_key(key) {
            self.last_chunk = Some((id, ts_ms, seq));
            return Ok(self.ids.get(&id).map(|&(owner, new_id)| Moved {
                owner,
                key: keys::chunk_key(new_id, ts_ms).to_vec(),
                value: value.to_vec(),
            }));
        }
        if let Some(mark) = keys::parse_mark_key(key) {
            // A mark cuts only the chunk version older than itself; on the new shard it
            // is written after its chunk, so one that does not cut it now is left behind.
            let applies = self.last_chunk.is_some_and(|(id, ts_ms, chunk_seq)| {
                (id, ts_ms) == (mark.series_id, mark.chunk_last_ts_ms) && seq > chunk_seq
            });
            return Ok(self.ids.get(&mark.series_id).filter(|_| applies).map(
                |&(owner, new_id)| Moved {
                    owner,
                    key: keys::mark_key(new_id, mark.chunk_last_ts_ms, mark.from_ms, mark.to_ms)
                        .to_vec(),
                    value: value.to_vec(),
                },
            ));
        }
        if let Some((id, ts_ms)) = keys::parse_sample_key(key) {
            let sealed = self.sealed.get(&id).is_some_and(|&mark| seq < mark);
            return Ok(self
                .ids
                .get(&id)
                .filter(|_| !sealed)
                .map(|&(owner, new_id)| Moved {
                    owner,
                    key: keys::sample_key(new_id, ts_ms).to_vec(),
                    value: value.to_vec(),
                }));
        }
        if keys::parse_sealed_key(key).is_some() {
            return Ok(None);
        }
        if keys::parse_pending_key(key).is_some() || keys::parse_unlink_key(key).is_some() {
            return Err(RelocateError::PendingHandOver);
        }
        Err(RelocateError::Unknown(key[..key.len().min(2)].to_vec()))
    }
}
