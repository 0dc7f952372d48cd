//! The engine's shared vocabulary: ids, the error type, the checked-block codec and
//! directory sync.
//!
//! Every storage module (`wal`, `memtable`, `sstable`, `manifest`, `version`, `compaction`,
//! `store`) imports these words from here, and nothing here imports from those modules,
//! so no engine file depends on the file that composes it.

pub mod codec;
pub mod error;
pub mod fs;
pub mod iolog;

pub use error::{io_error, StoreError};

/// A sequence number: the position of a write in its shard's history, starting at 1.
/// Every write (put or tombstone) gets the next one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqNo(pub u64);
