//! A compaction filter: a hook through which a layer above the engine rewrites the
//! entries a compaction writes, the way RocksDB's `CompactionFilter` lets an application
//! drop or change values as they are compacted. The time-series layer applies `TS.DEL`'s
//! deletion marks with it (`crate::timeseries::marks`); the engine knows nothing of what
//! a filter does.
//!
//! A filter sees the merged stream of one compaction (each key once, at its newest
//! version in the merge, tombstones included) in key order and hands on entries in key
//! order, possibly later (it may hold an entry back until it has seen the ones after it)
//! and possibly changed. It must keep the order, and may drop or change only entries it
//! owns. The job then drops tombstones where nothing lies below, as without a filter.

use crate::sstable::TableEntry;

/// Rewrites the entries of one compaction; see the module doc.
pub trait CompactionFilter: Send + std::fmt::Debug {
    /// Takes the next merged entry and appends to `out` the entries ready to be written.
    fn push(&mut self, entry: TableEntry, out: &mut Vec<TableEntry>);

    /// The merge ended: appends whatever is still held back.
    fn finish(&mut self, out: &mut Vec<TableEntry>);
}

/// Makes the filter of one compaction job (a fresh one per job).
pub type CompactionFilterFactory = fn() -> Box<dyn CompactionFilter>;
