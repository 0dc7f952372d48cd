//! `reshard`: rewrites a stopped server's data directory for another shard count.
//!
//! A key's shard is [`shard_of`]`(key, N)`, so changing N moves most keys. The tool:
//!
//! 1. takes the directory's `LOCK` (refused while a server holds it) and keeps it to the end;
//! 2. creates the new directory (`--out NEWDIR`, or `DIR.reshard-tmp` beside `DIR`) and
//!    takes its `LOCK` too, so no server starts on a half-built directory;
//! 3. opens each old shard with the engine ([`Engine::open`], which recovers it as a
//!    server start would: a torn WAL tail is cut) and streams its live keys at their newest
//!    version (tombstones and expired keys hidden, deadlines kept) into the new shard that
//!    owns each key, one [`Engine`] per new shard with buffered durability;
//! 4. syncs and flushes every new shard, then writes the new `TSKV` (durably) — a
//!    directory without `TSKV` is not a data directory, so an interrupted run leaves
//!    nothing a server would open;
//! 5. without `--out`, swaps: `DIR` → `DIR.pre-reshard-<UTC time>`, `DIR.reshard-tmp` →
//!    `DIR`, and fsyncs the parent directory. The old copy is kept for the operator to
//!    delete.
//!
//! If the run fails before the swap, the new directory is removed and `DIR` is untouched
//! (beyond the recovery of step 3). If it stops between the two renames, `DIR` is missing,
//! and `DIR.reshard-tmp` (complete: it has `TSKV`) only needs renaming to `DIR`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tskv::base::fs::sync_dir;
use tskv::config::{StoreOptions, MEMTABLE_BYTES_RANGE};
use tskv::datadir::{self, shard_dir, shard_of, DataDirError, DirLock};
use tskv::engine::{Durability, Engine, Options};
use tskv::timeseries::keys::KeyClass;
use tskv::timeseries::relocate::{RelocateError, Relocator};

use crate::datadir::read_shard_count;
use crate::ToolError;

/// Memtable bytes shared by all the new shards while they are written: the tool's memory
/// stays bounded whatever the shard count.
const MEMTABLE_BUDGET_BYTES: usize = 256 << 20;
/// WAL segment size of the new shards. Small, since every segment is preallocated and
/// zero-filled, and the writes are flushed to SSTables at the end anyway; a server started
/// on the result continues with its own `--wal-segment-bytes` for the next segment.
const WAL_SEGMENT_BYTES: u64 = 4 << 20;

/// What `reshard` did.
#[derive(Debug, Serialize)]
pub struct ReshardReport {
    /// The data directory read.
    pub source: String,
    /// Its shard count before.
    pub source_shard_count: usize,
    /// The new shard count.
    pub shard_count: usize,
    /// The directory now holding the resharded data (`DIR` after a swap, or `--out`).
    pub result: String,
    /// Where the old data directory was moved (only when swapped in place).
    pub old_copy: Option<String>,
    /// Live keys copied.
    pub key_count: u64,
    /// Live keys per new shard.
    pub keys_per_shard: Vec<u64>,
}

/// Reshards `data_dir` into `shard_count` shards: into `out` if given (which must not
/// exist), else in place, keeping the old directory beside it.
///
/// # Errors
/// [`ToolError::Usage`] if a server holds the lock, `data_dir` is not a data directory or
/// a path to be created exists; I/O and corruption errors as found.
pub fn reshard(
    data_dir: &Path,
    shard_count: usize,
    out: Option<&Path>,
) -> Result<ReshardReport, ToolError> {
    let source_shard_count = read_shard_count(data_dir)?;
    let data_dir = fs::canonicalize(data_dir)
        .map_err(ToolError::io(format!("resolving {}", data_dir.display())))?;
    let _source_lock = lock_source(&data_dir)?;
    let (target, old_copy) = match out {
        Some(out) => (out.to_path_buf(), None),
        None => (
            sibling(&data_dir, ".reshard-tmp"),
            Some(sibling(&data_dir, &format!(".pre-reshard-{}", utc_stamp()))),
        ),
    };
    for path in std::iter::once(&target).chain(&old_copy) {
        if fs::symlink_metadata(path).is_ok() {
            return Err(ToolError::Usage(format!(
                "{} already exists (left by an interrupted reshard?); remove it or choose another place",
                path.display()
            )));
        }
    }
    fs::create_dir(&target).map_err(ToolError::io(format!("creating {}", target.display())))?;
    let copied = build(&data_dir, source_shard_count, &target, shard_count);
    let keys_per_shard = match copied {
        Ok(keys) => keys,
        Err(e) => {
            // Ours, and incomplete (no TSKV): nothing anyone could use.
            let _ = fs::remove_dir_all(&target);
            return Err(e);
        }
    };
    if let Some(old_copy) = &old_copy {
        swap(&data_dir, &target, old_copy)?;
    }
    Ok(ReshardReport {
        source: data_dir.display().to_string(),
        source_shard_count,
        shard_count,
        result: old_copy
            .as_ref()
            .map_or(&target, |_| &data_dir)
            .display()
            .to_string(),
        old_copy: old_copy.map(|p| p.display().to_string()),
        key_count: keys_per_shard.iter().sum(),
        keys_per_shard,
    })
}

/// Takes the lock of the directory being resharded; a running server makes this a usage
/// error naming what to do.
fn lock_source(data_dir: &Path) -> Result<DirLock, ToolError> {
    datadir::lock(data_dir).map_err(|e| match e {
        DataDirError::Locked(_) => ToolError::Usage(format!(
            "{e}; stop the server before resharding (reshard works offline)"
        )),
        other => other.into(),
    })
}

/// Fills the empty directory `target` with `shard_count` shards holding every live key of
/// the `source_shard_count` shards of `source`, and records the count last. Returns the
/// keys written per new shard.
fn build(
    source: &Path,
    source_shard_count: usize,
    target: &Path,
    shard_count: usize,
) -> Result<Vec<u64>, ToolError> {
    let _target_lock = datadir::lock(target)?;
    let options = new_shard_options(shard_count);
    let mut shards = (0..shard_count)
        .map(|i| Engine::open(&shard_dir(target, i), options.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut keys_per_shard = vec![0u64; shard_count];
    for index in 0..source_shard_count {
        let dir = shard_dir(source, index);
        if !dir.is_dir() {
            // A shard the server never created holds no keys.
            continue;
        }
        let old = Engine::open_shard(source, index, source_shard_count, Options::default())?;
        let refused = |e: RelocateError| match e {
            RelocateError::Store(e) => ToolError::from(e),
            other => ToolError::Usage(format!("{}: {other}", dir.display())),
        };
        let mut series = Relocator::new(old.store(), shard_count).map_err(refused)?;
        // The store's own scan, not `Engine::scan`: it keeps each value's expiry deadline.
        for entry in old.store().scan_from(b"") {
            let entry = entry?;
            let Some(value) = entry.value else {
                continue;
            };
            let key = entry.key;
            if key.first() == Some(&tskv::timeseries::keys::RESERVED_PREFIX) {
                // Time-series entries are keyed by series id: rewritten for the new shard.
                let next_id = |owner: usize| shards[owner].store().last_seq().0 + 1;
                if let Some(moved) = series
                    .relocate(&key, entry.seq, &value, next_id)
                    .map_err(refused)?
                {
                    shards[moved.owner].put(&moved.key, &moved.value)?;
                    if tskv::timeseries::keys::classify(&moved.key) != KeyClass::Internal {
                        keys_per_shard[moved.owner] += 1;
                    }
                }
                continue;
            }
            let owner = shard_of(&key, shard_count).0;
            shards[owner].put_expiring(&key, &value, entry.expire_at_ms)?;
            keys_per_shard[owner] += 1;
        }
    }
    for shard in &mut shards {
        shard.flush()?;
    }
    drop(shards);
    datadir::write_shard_count(target, shard_count)?;
    sync_parent(target)?;
    Ok(keys_per_shard)
}

/// Engine options of the new shards while they are written.
fn new_shard_options(shard_count: usize) -> Options {
    let memtable_bytes = (MEMTABLE_BUDGET_BYTES / shard_count).clamp(
        *MEMTABLE_BYTES_RANGE.start() as usize,
        StoreOptions::default().memtable_bytes,
    );
    Options {
        store: StoreOptions {
            memtable_bytes,
            wal_segment_bytes: WAL_SEGMENT_BYTES,
            compaction_filter: Some(tskv::timeseries::marks::compaction_filter),
            ..StoreOptions::default()
        },
        durability: Durability::Buffered,
    }
}

/// Moves `data_dir` to `old_copy` and `new` to `data_dir`, then makes both renames durable.
fn swap(data_dir: &Path, new: &Path, old_copy: &Path) -> Result<(), ToolError> {
    let rename = |from: &Path, to: &Path| {
        fs::rename(from, to).map_err(ToolError::io(format!(
            "renaming {} to {}",
            from.display(),
            to.display()
        )))
    };
    rename(data_dir, old_copy)?;
    rename(new, data_dir)?;
    sync_parent(data_dir)
}

/// Fsyncs the directory holding `path`, making its entry (creation or rename) durable.
fn sync_parent(path: &Path) -> Result<(), ToolError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok(sync_dir(parent)?)
}

/// `dir` with `suffix` appended to its last component (`/data/tskv` → `/data/tskv.suffix`).
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The current UTC time as `YYYYMMDDTHHMMSSZ`.
fn utc_stamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

/// Formats `secs` since the Unix epoch as `YYYYMMDDTHHMMSSZ`.
fn format_utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_date(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01, counted in 400-year eras of
/// 146,097 days whose years start on March 1st (so the leap day ends a year).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps_match_known_dates() {
        assert_eq!(format_utc(0), "19700101T000000Z");
        assert_eq!(format_utc(951_782_400), "20000229T000000Z");
        assert_eq!(format_utc(1_709_251_199), "20240229T235959Z");
        assert_eq!(format_utc(1_735_689_600), "20250101T000000Z");
    }

    #[test]
    fn siblings_extend_the_last_component() {
        assert_eq!(
            sibling(Path::new("/data/tskv"), ".reshard-tmp"),
            PathBuf::from("/data/tskv.reshard-tmp")
        );
    }
}
