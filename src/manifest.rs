//! The manifest: which SSTables are live, installed by durable rename.
//!
//! The file `MANIFEST` in the shard directory, little-endian:
//!
//! ```text
//!  offset      field           type
//!  0           magic           u64        MAGIC ("TSKVMANI" read as little-endian u64)
//!  8           version         u32        FORMAT_VERSION (2)
//!  12          next_table_id   u64        id the next SSTable will get
//!  20          wal_start       u64        first WAL segment replay must read
//!  28          last_seq        u64        highest sequence number ever flushed
//!  36          table_count     u32        n
//!  40          tables          n × table
//!  end - 4     crc32           u32        of all bytes before it
//!
//!  table = level u32 | table id u64 | smallest_len u32 | smallest key | largest_len u32 | largest key
//! ```
//!
//! Level 0 is listed in age order, oldest first; each deeper level in key order. The key
//! range of each table is kept here, as LevelDB's `FileMetaData`, so opening a shard reads
//! no data block, and a damaged block shows up only when it is read.
//!
//! `last_seq` keeps sequence numbers from going back after a restart when compaction has
//! dropped the newest versions (tombstones that shadowed nothing): recovery starts
//! numbering above it, as LevelDB's `last_sequence`.
//!
//! Version 1 (written before levels existed) has no `last_seq` and `table id u64` per
//! table, all of level 0 and with no key range (it is read from the table); it is still
//! read, and the next install writes version 2.
//!
//! WAL segments below `wal_start` hold only writes that are in live SSTables. The manifest
//! is replaced atomically: write `MANIFEST.tmp`, fdatasync it, rename it over `MANIFEST`,
//! fsync the directory. A missing manifest is an empty store.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use crate::base::codec::{open_block, seal_block, Cursor, FormatError};
use crate::base::fs::install_file;
use crate::base::{io_error, SeqNo, StoreError};
use crate::sstable::TableId;
use crate::wal::SegmentNo;

/// Identifies a manifest file.
pub const MAGIC: u64 = u64::from_le_bytes(*b"TSKVMANI");
/// The format version this code writes (it also reads version 1).
pub const FORMAT_VERSION: u32 = 2;
/// Number of levels a manifest may name (0 through `LEVELS_MAX - 1`).
pub const LEVELS_MAX: usize = 7;
/// Name of the manifest file.
pub const FILE_NAME: &str = "MANIFEST";
/// Name of the manifest being installed.
pub const TEMP_FILE_NAME: &str = "MANIFEST.tmp";

/// One live SSTable, the level it is in and its key range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelTable {
    /// The level, below [`LEVELS_MAX`].
    pub level: u32,
    /// The table.
    pub id: TableId,
    /// Its smallest and largest key; `None` only when read from a version 1 manifest.
    pub key_range: Option<(Vec<u8>, Vec<u8>)>,
}

/// Largest key length a manifest accepts: a key is a request argument, so the bulk
/// length limit bounds it long before this.
const KEY_BYTES_MAX: usize = 1 << 30;

/// The durable state of a shard's table set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The id the next SSTable will get.
    pub next_table_id: TableId,
    /// Live SSTables by level: level 0 oldest first, deeper levels in key order.
    pub tables: Vec<LevelTable>,
    /// The first WAL segment replay must read.
    pub wal_start: SegmentNo,
    /// The highest sequence number ever flushed (0 from a version 1 manifest).
    pub last_seq: SeqNo,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            next_table_id: TableId(1),
            tables: Vec::new(),
            wal_start: SegmentNo(0),
            last_seq: SeqNo(0),
        }
    }
}

impl Manifest {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(36 + 40 * self.tables.len());
        buf.extend_from_slice(&MAGIC.to_le_bytes());
        buf.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf.extend_from_slice(&self.next_table_id.0.to_le_bytes());
        buf.extend_from_slice(&self.wal_start.0.to_le_bytes());
        buf.extend_from_slice(&self.last_seq.0.to_le_bytes());
        let count = u32::try_from(self.tables.len()).expect("more than u32::MAX tables");
        buf.extend_from_slice(&count.to_le_bytes());
        for table in &self.tables {
            buf.extend_from_slice(&table.level.to_le_bytes());
            buf.extend_from_slice(&table.id.0.to_le_bytes());
            let (smallest, largest) = table
                .key_range
                .as_ref()
                .expect("every installed table has a known key range");
            for key in [smallest, largest] {
                let len = u32::try_from(key.len()).expect("key longer than u32::MAX");
                buf.extend_from_slice(&len.to_le_bytes());
                buf.extend_from_slice(key);
            }
        }
        seal_block(&mut buf, 0);
        buf
    }

    /// Decodes and checks a manifest file's bytes.
    ///
    /// # Errors
    /// Bad checksum, magic, version or length, or table ids not below `next_table_id`.
    pub fn decode(bytes: &[u8]) -> Result<Self, FormatError> {
        let payload = open_block(bytes)?;
        let mut c = Cursor::new(payload);
        let fail = |reason, offset| Err(FormatError { reason, offset });
        if c.u64()? != MAGIC {
            return fail("bad manifest magic", 0);
        }
        let version = c.u32()?;
        if version != 1 && version != FORMAT_VERSION {
            return fail("unsupported manifest version", 8);
        }
        let next_table_id = TableId(c.u64()?);
        let wal_start = SegmentNo(c.u64()?);
        let last_seq = SeqNo(if version == 1 { 0 } else { c.u64()? });
        let count = c.u32()? as usize;
        let entry_bytes_min = if version == 1 { 8 } else { 20 };
        if (payload.len() - c.position()) / entry_bytes_min < count {
            return fail("table count does not match the length", 28);
        }
        let mut tables: Vec<LevelTable> = Vec::with_capacity(count);
        let mut seen = std::collections::HashSet::with_capacity(count);
        for _ in 0..count {
            let at = c.position();
            let level = if version == 1 { 0 } else { c.u32()? };
            if level as usize >= LEVELS_MAX || tables.last().is_some_and(|t| t.level > level) {
                return fail("table levels out of range or not in order", at);
            }
            let id = TableId(c.u64()?);
            if id >= next_table_id || !seen.insert(id) {
                return fail("table id repeated or not below next_table_id", at);
            }
            let key_range = if version == 1 {
                None
            } else {
                let mut key = || -> Result<Vec<u8>, FormatError> {
                    let at = c.position();
                    let len = c.u32()? as usize;
                    if len > KEY_BYTES_MAX {
                        return Err(FormatError {
                            reason: "key length out of range",
                            offset: at,
                        });
                    }
                    Ok(c.bytes(len)?.to_vec())
                };
                let (smallest, largest) = (key()?, key()?);
                if smallest > largest {
                    return fail("table key range reversed", at);
                }
                Some((smallest, largest))
            };
            tables.push(LevelTable {
                level,
                id,
                key_range,
            });
        }
        if !c.is_empty() {
            return fail("bytes after the last table", c.position());
        }
        Ok(Self {
            next_table_id,
            tables,
            wal_start,
            last_seq,
        })
    }

    /// Reads `dir/MANIFEST`; `None` if it does not exist.
    ///
    /// # Errors
    /// [`StoreError::Io`] on a read error, [`StoreError::Corruption`] if it does not decode.
    pub fn load(dir: &Path) -> Result<Option<Self>, StoreError> {
        let path = dir.join(FILE_NAME);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(format!("reading {}", path.display()))(e)),
        };
        Self::decode(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corruption {
                file: path.display().to_string(),
                offset: e.offset as u64,
                reason: e.reason.to_string(),
            })
    }

    /// Makes this the durable manifest of `dir`: write the temp file, fdatasync, rename,
    /// fsync the directory.
    ///
    /// # Errors
    /// [`StoreError::Io`] naming the step and file. The old manifest stays in force unless
    /// the rename happened.
    pub fn install(&self, dir: &Path) -> Result<(), StoreError> {
        install_file(dir, FILE_NAME, TEMP_FILE_NAME, &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(level: u32, id: u64, smallest: &str, largest: &str) -> LevelTable {
        LevelTable {
            level,
            id: TableId(id),
            key_range: Some((smallest.as_bytes().to_vec(), largest.as_bytes().to_vec())),
        }
    }

    fn sample() -> Manifest {
        Manifest {
            next_table_id: TableId(9),
            tables: vec![
                table(0, 5, "k", "p"),
                table(0, 8, "a", "z"),
                table(1, 2, "", "b"),
            ],
            wal_start: SegmentNo(17),
            last_seq: SeqNo(12345),
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(Manifest::decode(&m.encode()), Ok(m));
        let empty = Manifest::default();
        assert_eq!(Manifest::decode(&empty.encode()), Ok(empty));
    }

    #[test]
    fn version_1_reads_as_level_0() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&MAGIC.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&9u64.to_le_bytes());
        bytes.extend_from_slice(&17u64.to_le_bytes());
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&2u64.to_le_bytes());
        bytes.extend_from_slice(&5u64.to_le_bytes());
        seal_block(&mut bytes, 0);
        let m = Manifest::decode(&bytes).unwrap();
        let level0 = |id| LevelTable {
            level: 0,
            id: TableId(id),
            key_range: None,
        };
        assert_eq!(m.tables, vec![level0(2), level0(5)]);
        assert_eq!(m.wal_start, SegmentNo(17));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(Manifest::decode(&bad).is_err(), "flip at {i}");
        }
    }

    #[test]
    fn install_then_load() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), None);
        sample().install(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(sample()));
        assert!(!dir.path().join(TEMP_FILE_NAME).exists());
        fs::write(dir.path().join(FILE_NAME), b"garbage").unwrap();
        assert!(matches!(
            Manifest::load(dir.path()),
            Err(StoreError::Corruption { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = Manifest::decode(&bytes);
        }

        #[test]
        fn arbitrary_bytes_with_valid_crc_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            seal_block(&mut bytes, 0);
            let _ = Manifest::decode(&bytes);
        }
    }
}
