//! The memtable: the newest version of each recently written key, in memory.
//!
//! Two structures share the work. A hash map from key to its newest version serves point
//! reads and overwrites in O(1); an ordered set of the keys ([`order`]) keeps them in byte
//! order for the flush to an SSTable and for scans. A key enters the ordered set once, when
//! it is first written, so an overwrite costs one hash update and no search. (RocksDB
//! offers hash-indexed memtables for the same reason: point lookups in a large skiplist
//! spend most of their time chasing pointers and comparing keys.)
//!
//! Small keys (up to 24 bytes) and values (up to 16 bytes) live inside the hash slot, so a
//! point read of such a key costs about one cache miss instead of four; with 100,000 keys,
//! a standalone lookup loop took 17 ns this way against 151 ns with boxed keys and SipHash.
//!
//! Ordered keys carry their first 16 bytes as a big-endian integer, so most comparisons
//! during an insert are one integer comparison instead of a `memcmp` call.
//!
//! Its size, which [`crate::config::StoreOptions::memtable_bytes`] is compared with, is the
//! larger of two counts (key + value + [`ENTRY_OVERHEAD_BYTES`] each): the live bytes of the
//! newest versions, which bound memory, and a quarter of all bytes ever written to it,
//! which bounds the WAL one memtable covers, so overwriting one key forever still leads to
//! flushes and recovery never replays more than about four memtables' worth of records.

use hashbrown::hash_map::EntryRef;
use hashbrown::HashMap;
use smallvec::SmallVec;

mod order;

use order::KeyOrder;

use crate::base::SeqNo;

/// Accounted bytes per write besides key and value: hash slot, ordered-set entry, vectors.
pub const ENTRY_OVERHEAD_BYTES: usize = 64;

/// A value in the memtable: up to 16 bytes are stored inline in the hash slot, so reading a
/// small value touches no other cache line.
pub type MemValue = SmallVec<[u8; 16]>;

/// A key in the memtable's hash map: up to 24 bytes inline, for the same reason.
/// Hashes and compares as its bytes do, so the map is searched with a `&[u8]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct HashKey(SmallVec<[u8; 24]>);

impl From<&[u8]> for HashKey {
    // `SmallVec`'s own `From<&[u8]>` copies byte by byte; `from_slice` is one `memcpy`.
    fn from(bytes: &[u8]) -> Self {
        Self(SmallVec::from_slice(bytes))
    }
}

impl std::borrow::Borrow<[u8]> for HashKey {
    fn borrow(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::Deref for HashKey {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// The newest version of a key in a memtable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemEntry {
    /// Sequence number of the write.
    pub seq: SeqNo,
    /// The value, or `None` for a tombstone.
    pub value: Option<MemValue>,
    /// The value's expiry deadline (absolute Unix ms), `None` = never; see
    /// [`crate::base::is_expired`].
    pub expire_at_ms: Option<u64>,
}

/// A sorted in-memory table of the newest version of each key.
#[derive(Default)]
pub struct Memtable {
    /// Seeded per process (foldhash), so clients cannot aim keys at one bucket chain.
    newest: HashMap<HashKey, MemEntry, foldhash::fast::RandomState>,
    order: KeyOrder,
    live_bytes: usize,
    written_bytes: usize,
    max_seq: SeqNo,
}

/// How many bytes of writes a memtable may cover per byte of its size limit.
pub const WRITTEN_PER_SIZE_BYTES: usize = 4;

impl std::fmt::Debug for Memtable {
    // Summarized: the entries are far too many to print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memtable")
            .field("entries", &self.newest.len())
            .field("live_bytes", &self.live_bytes)
            .field("written_bytes", &self.written_bytes)
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

    /// An empty memtable with room for `key_count` keys in its hash map, so that filling
    /// it does not rehash on the way (the store sizes the next memtable by the last one).
    /// The room costs address space more than memory: slots are touched when written.
    pub fn with_capacity(key_count: usize) -> Self {
        Self {
            newest: HashMap::with_capacity_and_hasher(key_count, Default::default()),
            ..Self::default()
        }
    }

    /// Sets `key` to `value` (`None` = tombstone) at `seq`, visible until `expire_at_ms`
    /// (`None` = never), replacing any older version.
    pub fn insert(
        &mut self,
        key: &[u8],
        seq: SeqNo,
        value: Option<&[u8]>,
        expire_at_ms: Option<u64>,
    ) {
        debug_assert!(
            seq > self.max_seq,
            "memtable sequence numbers must increase"
        );
        self.insert_unordered(key, seq, value, expire_at_ms);
    }

    /// Sets `key` to `value` at `seq` like [`Memtable::insert`], where `seq` may be lower
    /// than others already in the memtable (but not lower than `key`'s own newest
    /// version): a write whose WAL record was appended earlier and which reaches the
    /// memtable late (a time series' open sample, inserted at a checkpoint).
    pub fn insert_unordered(
        &mut self,
        key: &[u8],
        seq: SeqNo,
        value: Option<&[u8]>,
        expire_at_ms: Option<u64>,
    ) {
        let size = entry_size_bytes(key, value);
        self.written_bytes += size;
        self.live_bytes += size;
        self.max_seq = self.max_seq.max(seq);
        let entry = MemEntry {
            seq,
            value: value.map(MemValue::from_slice),
            expire_at_ms,
        };
        // One hash and one probe, whether the key is new or not.
        match self.newest.entry_ref(key) {
            EntryRef::Occupied(mut occupied) => {
                let newest = occupied.get_mut();
                debug_assert!(newest.seq < seq, "a key's versions must increase");
                self.live_bytes -= entry_size_bytes(key, newest.value.as_deref());
                *newest = entry;
            }
            EntryRef::Vacant(vacant) => {
                vacant.insert(entry);
                self.order.insert(key);
            }
        }
    }

    /// The newest version of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<MemEntry> {
        self.newest.get(key).cloned()
    }

    /// Accounted size in bytes: live bytes, or a quarter of all bytes written, whichever is
    /// larger (see the module documentation).
    pub fn size_bytes(&self) -> usize {
        self.live_bytes
            .max(self.written_bytes / WRITTEN_PER_SIZE_BYTES)
    }

    /// Number of keys (tombstones included).
    pub fn len(&self) -> usize {
        self.newest.len()
    }

    /// Whether the memtable holds no key.
    pub fn is_empty(&self) -> bool {
        self.newest.is_empty()
    }

    /// Highest sequence number inserted (0 when empty).
    pub fn max_seq(&self) -> SeqNo {
        self.max_seq
    }

    /// Keys from `start` on (inclusive) with their newest version, in byte order.
    pub fn iter_from(&self, start: &[u8]) -> impl Iterator<Item = (&[u8], &MemEntry)> + '_ {
        self.order.iter_from(start).map(move |ordered| {
            let (key, entry) = self
                .newest
                .get_key_value(ordered.bytes())
                .expect("every ordered key has a newest version");
            (&key[..], entry)
        })
    }

    /// All keys with their newest version, in byte order of the keys.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &MemEntry)> + '_ {
        self.order.iter().map(move |ordered| {
            let (key, entry) = self
                .newest
                .get_key_value(ordered.bytes())
                .expect("every ordered key has a newest version");
            (&key[..], entry)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_wins_and_size_follows_live_and_written_bytes() {
        let mut m = Memtable::new();
        m.insert(b"a", SeqNo(1), Some(b"1234"), None);
        assert_eq!(m.size_bytes(), 1 + 4 + ENTRY_OVERHEAD_BYTES);
        m.insert(b"a", SeqNo(2), None, None);
        assert_eq!(
            m.size_bytes(),
            1 + ENTRY_OVERHEAD_BYTES,
            "live bytes of the tombstone"
        );
        m.insert(b"b", SeqNo(3), Some(b"x"), None);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m.get(b"a"),
            Some(MemEntry {
                seq: SeqNo(2),
                value: None,
                expire_at_ms: None,
            })
        );
        assert_eq!(m.max_seq(), SeqNo(3));
        // Overwriting one key forever still grows the size, through the written bytes.
        let mut seq = 3;
        for _ in 0..1000 {
            seq += 1;
            m.insert(b"a", SeqNo(seq), Some(b"1234"), None);
        }
        assert!(m.size_bytes() >= 1000 * (1 + 4 + ENTRY_OVERHEAD_BYTES) / WRITTEN_PER_SIZE_BYTES);
        let keys: Vec<&[u8]> = m.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"a".as_slice(), b"b"]);
    }

    proptest::proptest! {
        /// The ordered set's fast key comparison orders exactly as bytes do, and iteration
        /// yields every key once, sorted, with its newest version.
        #[test]
        fn iterates_in_byte_order(writes in proptest::collection::vec(
            (proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), proptest::option::of(proptest::collection::vec(0u8..4, 0..4))),
            0..200,
        )) {
            let mut m = Memtable::new();
            let mut model = std::collections::BTreeMap::new();
            for (i, (key, value)) in writes.iter().enumerate() {
                m.insert(key, SeqNo(i as u64 + 1), value.as_deref(), None);
                model.insert(key.clone(), (SeqNo(i as u64 + 1), value.clone()));
            }
            let got: Vec<(Vec<u8>, SeqNo, Option<Vec<u8>>)> =
                m.iter().map(|(k, e)| (k.to_vec(), e.seq, e.value.as_ref().map(|v| v.to_vec()))).collect();
            let want: Vec<(Vec<u8>, SeqNo, Option<Vec<u8>>)> =
                model.into_iter().map(|(k, (seq, v))| (k, seq, v)).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
