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

/// The wall clock, as Unix time in milliseconds: the time base of key expiry (deadlines are
/// absolute Unix milliseconds, as Redis's `PEXPIREAT`). A clock before 1970 reads as 0.
pub fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whether a version with deadline `expire_at_ms` (absolute Unix ms; `None` = never) is
/// expired at `now_ms`. As in Redis (`keyIsExpired` in `db.c`), a key is still visible
/// during the millisecond of its deadline and gone once the clock is past it. This is the
/// one expiry rule: reads, scans and compaction all ask it.
pub fn is_expired(expire_at_ms: Option<u64>, now_ms: u64) -> bool {
    expire_at_ms.is_some_and(|deadline| now_ms > deadline)
}
