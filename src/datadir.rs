//! The data directory's layout: the one place that knows its file names, how shards are
//! named and numbered, how the shard count is recorded, and how the directory is locked.
//!
//! ```text
//! <data-dir>/LOCK          held with flock while a server (or `tskv-tool reshard`) uses it
//! <data-dir>/TSKV          "shards=<N>\n": keys are hashed to N shards, so N is fixed
//! <data-dir>/shard-000/    one store per shard (WAL segments, SSTables, MANIFEST)
//! <data-dir>/shard-001/
//! ```
//!
//! A key belongs to shard [`shard_of`]`(key, N)`. The server ([`crate::server`]) and
//! `tskv-tool` both use this module, so they cannot disagree about the layout.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use crate::base::fs::install_file;
use crate::base::StoreError;

/// Name of the lock file, held with an exclusive `flock` by the process that owns the
/// directory.
pub const LOCK_FILE_NAME: &str = "LOCK";
/// Name of the meta file recording the shard count as `shards=<N>`.
pub const META_FILE_NAME: &str = "TSKV";
/// Name the meta file is written under before it is renamed into place.
pub const META_TEMP_FILE_NAME: &str = "TSKV.tmp";
/// Prefix of a shard directory's name; the shard index follows in three or more digits.
pub const SHARD_DIR_PREFIX: &str = "shard-";

/// Index of a shard, `0..N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShardId(pub usize);

/// The shard that owns `key` among `shards`: `xxh3_64(key) % shards`.
pub fn shard_of(key: &[u8], shards: usize) -> ShardId {
    if shards <= 1 {
        return ShardId(0);
    }
    ShardId((xxhash_rust::xxh3::xxh3_64(key) % shards as u64) as usize)
}

/// The name of shard `index`'s directory: `shard-000`, `shard-001`, …
pub fn shard_dir_name(index: usize) -> String {
    format!("{SHARD_DIR_PREFIX}{index:03}")
}

/// The shard index a directory name stands for, if it is a shard directory's name.
pub fn parse_shard_dir_name(name: &str) -> Option<usize> {
    let digits = name.strip_prefix(SHARD_DIR_PREFIX)?;
    if digits.len() < 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The directory of shard `index` in `data_dir`.
pub fn shard_dir(data_dir: &Path, index: usize) -> PathBuf {
    data_dir.join(shard_dir_name(index))
}

/// The outcome of every transaction across shards in the WALs of `data_dir`'s `shards`
/// shards ([`crate::wal::tx`]): read before any shard's store opens, by the server, by
/// `tskv-tool get` and by `tskv-tool reshard` alike.
///
/// # Errors
/// [`crate::base::StoreError::Io`] if a shard directory or WAL segment cannot be read.
pub fn tx_outcomes(
    data_dir: &Path,
    shards: usize,
) -> Result<crate::wal::tx::TxOutcomes, crate::base::StoreError> {
    let dirs: Vec<PathBuf> = (0..shards).map(|i| shard_dir(data_dir, i)).collect();
    crate::wal::tx::TxOutcomes::read(&dirs)
}

/// Errors of reading or claiming a data directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// Another process holds the directory's lock.
    #[error("data directory {0} is locked by another tskv-server (lock file {0}/LOCK)")]
    Locked(PathBuf),
    /// The meta file does not hold `shards=<N>` with `N > 0`.
    #[error("{}: expected \"shards=<N>\" with N > 0, found {text:?}", path.display())]
    BadMeta {
        /// The meta file.
        path: PathBuf,
        /// What it holds.
        text: String,
    },
    /// An I/O error, with what was being done and to which file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn io_err(context: String) -> impl FnOnce(io::Error) -> DataDirError {
    move |source| DataDirError::Io { context, source }
}

impl From<StoreError> for DataDirError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io { context, source } => DataDirError::Io { context, source },
            other => DataDirError::Io {
                context: other.to_string(),
                source: io::Error::other("unexpected store error"),
            },
        }
    }
}

/// Reads the shard count recorded in `<data_dir>/TSKV`; `None` if the directory or the
/// file does not exist yet.
///
/// # Errors
/// [`DataDirError::Io`] if the file cannot be read, [`DataDirError::BadMeta`] if it does
/// not hold `shards=<N>` with `N > 0`.
pub fn read_shard_count(data_dir: &Path) -> Result<Option<usize>, DataDirError> {
    let path = data_dir.join(META_FILE_NAME);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(format!("reading {}", path.display()))(e)),
    };
    text.trim()
        .strip_prefix("shards=")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map(Some)
        .ok_or(DataDirError::BadMeta { path, text })
}

/// Records `shards` in `<data_dir>/TSKV` durably: written to a temporary file,
/// fdatasynced, renamed into place, and the directory fsynced.
///
/// # Errors
/// [`DataDirError::Io`] naming the file or directory.
pub fn write_shard_count(data_dir: &Path, shards: usize) -> Result<(), DataDirError> {
    assert!(shards > 0, "a data directory has at least one shard");
    let meta = format!("shards={shards}\n");
    install_file(
        data_dir,
        META_FILE_NAME,
        META_TEMP_FILE_NAME,
        meta.as_bytes(),
    )?;
    Ok(())
}

/// The exclusive lock on a data directory, held until this is dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Takes the exclusive lock of `data_dir` (which must exist), creating the lock file if
/// needed; refused at once if another process holds it.
///
/// # Errors
/// [`DataDirError::Locked`] if another process holds it, [`DataDirError::Io`] otherwise.
pub fn lock(data_dir: &Path) -> Result<DirLock, DataDirError> {
    let path = data_dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(DataDirError::Locked(data_dir.to_path_buf())),
        Err(TryLockError::Error(e)) => Err(io_err(format!("locking {}", path.display()))(e)),
    }
}

/// Whether a process holds a data directory's lock.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LockState {
    /// No lock file: no server ever ran here.
    NoLockFile,
    /// A shared lock could be taken (and was released at once): no server runs.
    Free,
    /// A server holds the lock; files may change while they are read.
    Held,
    /// The lock could not be tested.
    Unknown {
        /// Why.
        error: String,
    },
}

/// Tests the lock of `data_dir` with a non-blocking shared `flock`, released at once;
/// creates nothing.
pub fn lock_state(data_dir: &Path) -> LockState {
    let unknown = |e: io::Error| LockState::Unknown {
        error: e.to_string(),
    };
    let file = match File::open(data_dir.join(LOCK_FILE_NAME)) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return LockState::NoLockFile,
        Err(e) => return unknown(e),
    };
    match file.try_lock_shared() {
        Ok(()) => file.unlock().map_or_else(unknown, |()| LockState::Free),
        Err(TryLockError::WouldBlock) => LockState::Held,
        Err(TryLockError::Error(e)) => unknown(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_dir_names_round_trip() {
        assert_eq!(shard_dir_name(0), "shard-000");
        assert_eq!(shard_dir_name(1023), "shard-1023");
        for index in [0, 7, 42, 999, 1023] {
            assert_eq!(parse_shard_dir_name(&shard_dir_name(index)), Some(index));
        }
        for name in [
            "shard-",
            "shard-1",
            "shard-01x",
            "shard--01",
            "LOCK",
            "shard-000.tmp",
        ] {
            assert_eq!(parse_shard_dir_name(name), None, "{name}");
        }
    }

    #[test]
    fn shard_count_is_written_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_shard_count(dir.path()).unwrap(), None);
        write_shard_count(dir.path(), 3).unwrap();
        assert_eq!(read_shard_count(dir.path()).unwrap(), Some(3));
        assert!(!dir.path().join(META_TEMP_FILE_NAME).exists());
        assert_eq!(
            fs::read_to_string(dir.path().join(META_FILE_NAME)).unwrap(),
            "shards=3\n"
        );
    }

    #[test]
    fn malformed_meta_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for text in ["shards=0\n", "shards=x\n", "", "3\n"] {
            fs::write(dir.path().join(META_FILE_NAME), text).unwrap();
            let err = read_shard_count(dir.path()).unwrap_err();
            assert!(
                matches!(err, DataDirError::BadMeta { .. }),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(lock_state(dir.path()), LockState::NoLockFile);
        let held = lock(dir.path()).unwrap();
        assert!(matches!(lock(dir.path()), Err(DataDirError::Locked(_))));
        assert_eq!(lock_state(dir.path()), LockState::Held);
        drop(held);
        assert_eq!(lock_state(dir.path()), LockState::Free);
        lock(dir.path()).unwrap();
    }

    #[test]
    fn keys_spread_over_every_shard() {
        assert_eq!(shard_of(b"any", 1), ShardId(0));
        let mut seen = [false; 3];
        for i in 0..100u32 {
            seen[shard_of(&i.to_le_bytes(), 3).0] = true;
        }
        assert_eq!(seen, [true; 3]);
    }
}
