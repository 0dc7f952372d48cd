//! The memtable: a concurrent skiplist of the newest writes.
//!
//! A memtable keeps only the newest version of each key (its single writer assigns
//! increasing sequence numbers), with `None` as the value of a tombstone. Its size is
//! accounted in bytes as key + value + [`ENTRY_OVERHEAD_BYTES`] per entry, which is what
//! [`crate::config::StoreOptions::memtable_bytes`] is compared with.

use crossbeam_skiplist::map::Iter;
use crossbeam_skiplist::SkipMap;

use crate::store::SeqNo;

/// Accounted bytes per entry besides key and value: skiplist node, vectors, sequence number.
pub const ENTRY_OVERHEAD_BYTES: usize = 64;

/// The newest version of a key in a memtable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemEntry {
    /// Sequence number of the write.
    pub seq: SeqNo,
    /// The value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// A sorted in-memory table of the newest version of each key.
#[derive(Default)]
pub struct Memtable {
    map: SkipMap<Vec<u8>, MemEntry>,
    size_bytes: usize,
    max_seq: SeqNo,
}

impl std::fmt::Debug for Memtable {
    // Summarized: the entries are far too many to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memtable")
            .field("entries", &self.map.len())
            .field("size_bytes", &self.size_bytes)
            .field("max_seq", &self.max_seq)
            .finish()
    }
}

fn entry_size_bytes(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD_BYTES
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` (`None` = tombstone) at `seq`, replacing any older version.
    pub fn insert(&mut self, key: &[u8], seq: SeqNo, value: Option<&[u8]>) {
        debug_assert!(
            seq > self.max_seq,
            "memtable sequence numbers must increase"
        );
        if let Some(old) = self.map.get(key) {
            self.size_bytes -= entry_size_bytes(key, old.value().value.as_deref());
        }
        self.size_bytes += entry_size_bytes(key, value);
        self.max_seq = self.max_seq.max(seq);
        let entry = MemEntry {
            seq,
            value: value.map(<[u8]>::to_vec),
        };
        self.map.insert(key.to_vec(), entry);
    }

    /// The newest version of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<MemEntry> {
        self.map.get(key).map(|e| e.value().clone())
    }

    /// Accounted size in bytes.
    pub fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// Number of keys (tombstones included).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the memtable holds no key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Highest sequence number inserted (0 when empty).
    pub fn max_seq(&self) -> SeqNo {
        self.max_seq
    }

    /// All entries in key order.
    pub fn iter(&self) -> Iter<'_, Vec<u8>, MemEntry> {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_wins_and_size_follows() {
        let mut m = Memtable::new();
        m.insert(b"a", SeqNo(1), Some(b"1234"));
        assert_eq!(m.size_bytes(), 1 + 4 + ENTRY_OVERHEAD_BYTES);
        m.insert(b"a", SeqNo(2), None);
        assert_eq!(m.size_bytes(), 1 + ENTRY_OVERHEAD_BYTES);
        m.insert(b"b", SeqNo(3), Some(b"x"));
        assert_eq!(m.len(), 2);
        assert_eq!(
            m.get(b"a"),
            Some(MemEntry {
                seq: SeqNo(2),
                value: None
            })
        );
        assert_eq!(m.max_seq(), SeqNo(3));
        let keys: Vec<Vec<u8>> = m.iter().map(|e| e.key().clone()).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
    }
}
