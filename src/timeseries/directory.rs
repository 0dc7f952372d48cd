//! The names and labels of every series on one shard, kept in memory: a blind write
//! (`SET`, `MSET`) tells in constant time, without reading the store, whether it replaces
//! a series, and a label filter reads only the series it matches ([`LabelIndex`]).
//!
//! The durable truth is the set of metadata entries (`0xFF 0x01 <user key>`, see
//! [`super::keys`]): the directory is read from them with one range scan the first time a
//! shard needs it (the server's shards do it as they start, from what recovery replayed,
//! before serving anyone), and from
//! then on follows every series the shard creates, relabels (`TS.ALTER LABELS`) or
//! deletes. Nothing of it is written anywhere: the metadata entries already are the index's
//! durable form, so it cannot disagree with them after a crash.

use std::collections::BTreeMap;

use crate::base::codec::FormatError;
use crate::store::ShardStore;

use super::filter::{Labels, Matcher};
use super::keys::{self, KeyClass};
use super::label_index::LabelIndex;
use super::meta::SeriesMeta;
use super::series::SeriesError;

/// The shard's series and their labels; empty until first read from the store.
#[derive(Debug, Default)]
pub struct SeriesDirectory {
    index: Option<LabelIndex>,
    /// Series whose metadata entry did not decode when the directory was read: they are
    /// named (a `SET` still replaces them) but their labels are unknown, so a filtered
    /// query fails with the damage rather than silently leave them out.
    damaged: BTreeMap<Vec<u8>, FormatError>,
}

impl SeriesDirectory {
    /// Whether a series named `key` exists on this shard.
    ///
    /// # Errors
    /// A failed read of the metadata entries (only on the first call).
    pub fn contains(&mut self, store: &ShardStore, key: &[u8]) -> Result<bool, SeriesError> {
        Ok(self.index(store)?.contains(key))
    }

    /// The keys of this shard's series that match every matcher of `filter`, in key
    /// order.
    ///
    /// # Errors
    /// A failed read of the metadata entries (only on the first call), or a series whose
    /// metadata entry is damaged.
    pub fn select(
        &mut self,
        store: &ShardStore,
        filter: &[Matcher],
    ) -> Result<Vec<Vec<u8>>, SeriesError> {
        self.index(store)?;
        if let Some(damage) = self.damaged.values().next() {
            return Err(SeriesError::Format(*damage));
        }
        let index = self.index.as_ref().expect("just read");
        Ok(index
            .select(filter)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect())
    }

    /// Whether the label index is built (else the next [`SeriesDirectory::select`] reads
    /// every series' metadata first).
    pub fn is_indexed(&self) -> bool {
        self.index.is_some()
    }

    /// Records a series just created, or the new labels of one (`TS.ALTER LABELS`).
    pub fn insert(&mut self, key: &[u8], labels: &Labels) {
        if let Some(index) = &mut self.index {
            index.insert(key, labels);
            self.damaged.remove(key);
        }
    }

    /// Records a series just deleted.
    pub fn remove(&mut self, key: &[u8]) {
        if let Some(index) = &mut self.index {
            index.remove(key);
            self.damaged.remove(key);
        }
    }

    /// Reads the directory from the store now (a shard does so as it starts, before it
    /// serves anyone) and returns the compaction rules of every series it read, as
    /// (source, destination) user keys in the source's key order, from the same scan.
    ///
    /// # Errors
    /// A failed read of the metadata entries.
    pub fn read_at_start(&mut self, store: &ShardStore) -> Result<Vec<RuleKeys>, SeriesError> {
        let mut rules = Vec::new();
        self.build(store, &mut rules)?;
        Ok(rules)
    }

    fn index(&mut self, store: &ShardStore) -> Result<&LabelIndex, SeriesError> {
        if self.index.is_none() {
            self.build(store, &mut Vec::new())?;
        }
        Ok(self.index.as_ref().expect("just filled"))
    }

    /// Reads every metadata entry into a new label index, and each series' rules into
    /// `rules`.
    fn build(&mut self, store: &ShardStore, rules: &mut Vec<RuleKeys>) -> Result<(), SeriesError> {
        let mut index = LabelIndex::default();
        for entry in store.scan_from(&keys::meta_key(b"")) {
            let entry = entry?;
            let KeyClass::Series(user) = keys::classify(&entry.key) else {
                break;
            };
            let Some(value) = entry.value else { continue };
            match SeriesMeta::decode(&value) {
                Ok(meta) => {
                    index.insert(user, &meta.labels);
                    let dests = meta.rules.into_iter().map(|r| (user.to_vec(), r.dest_key));
                    rules.extend(dests);
                }
                Err(damage) => {
                    tracing::error!(
                        "series {:?}: damaged metadata ({damage}); filters fail until it is deleted",
                        String::from_utf8_lossy(user)
                    );
                    index.insert(user, &[]);
                    self.damaged.insert(user.to_vec(), damage);
                }
            }
        }
        self.index = Some(index);
        Ok(())
    }
}

/// A compaction rule's (source, destination) user keys.
pub type RuleKeys = (Vec<u8>, Vec<u8>);
