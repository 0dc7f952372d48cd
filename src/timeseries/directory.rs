//! The names of every series on one shard, kept in memory so a blind write (`SET`, `MSET`)
//! can tell in constant time, without reading the store, whether it replaces a series.
//!
//! The durable truth is the set of metadata entries (`0xFF 0x01 <user key>`, see
//! [`super::keys`]): the directory is read from them with one range scan the first time a
//! shard needs it (after a start, that rebuilds it from what recovery replayed), and from
//! then on follows every series the shard creates or deletes.

use std::collections::BTreeSet;

use crate::store::ShardStore;

use super::keys::{self, KeyClass};
use super::series::SeriesError;

/// The user keys of the shard's series; empty until first read from the store.
#[derive(Debug, Default)]
pub struct SeriesDirectory {
    names: Option<BTreeSet<Vec<u8>>>,
}

impl SeriesDirectory {
    /// Whether a series named `key` exists on this shard.
    ///
    /// # Errors
    /// A failed read of the metadata entries (only on the first call).
    pub fn contains(&mut self, store: &ShardStore, key: &[u8]) -> Result<bool, SeriesError> {
        Ok(self.names(store)?.contains(key))
    }

    /// Records a series just created.
    pub fn insert(&mut self, key: &[u8]) {
        if let Some(names) = &mut self.names {
            names.insert(key.to_vec());
        }
    }

    /// Records a series just deleted.
    pub fn remove(&mut self, key: &[u8]) {
        if let Some(names) = &mut self.names {
            names.remove(key);
        }
    }

    fn names(&mut self, store: &ShardStore) -> Result<&BTreeSet<Vec<u8>>, SeriesError> {
        if self.names.is_none() {
            let mut names = BTreeSet::new();
            for entry in store.scan_from(&keys::meta_key(b"")) {
                let entry = entry?;
                let KeyClass::Series(user) = keys::classify(&entry.key) else {
                    break;
                };
                if entry.value.is_some() {
                    names.insert(user.to_vec());
                }
            }
            self.names = Some(names);
        }
        Ok(self.names.as_ref().expect("just filled"))
    }
}
