//! Reading a whole data directory without changing it, and judging what is found.
//!
//! The layout (`LOCK`, `TSKV` with `shards=N`, `shard-NNN/`) is [`tskv::datadir`]'s; a
//! shard directory holds `MANIFEST`, `sst-*.sst` and `wal-*.log`.
//!
//! The judgement follows recovery ([`tskv::store::ShardStore::open`]): non-zero bytes after
//! the valid records of the *last* live WAL segment are a torn tail that recovery cuts away
//! (a warning); anywhere else they are corruption (an error). Files that recovery would
//! delete (SSTables the manifest does not name, segments below its WAL start,
//! `MANIFEST.tmp`) are warnings, and so is damage inside them, as no read ever uses them.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tskv::base::StoreError;
use tskv::datadir::{lock_state, parse_shard_dir_name, shard_dir, shard_dir_name, LockState};
use tskv::manifest::{self, Manifest};
use tskv::sstable::TableId;
use tskv::wal::reader::corruption_reason;
use tskv::wal::SegmentNo;

use crate::segment::{self, SegmentScan, Tail};
use crate::table::{self, TableScan};
use crate::ToolError;

/// How much to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Manifests, SSTable footers, indexes and Bloom filters, every WAL record.
    Summary,
    /// All of that and every SSTable data block.
    Verify,
}

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Data a read or recovery would use is damaged or missing.
    Error,
    /// Something recovery repairs or ignores.
    Warning,
}

/// One thing wrong, where it is.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file concerned.
    pub file: String,
    /// Byte offset in the file, where one applies.
    pub offset: Option<u64>,
    /// What is wrong, in a sentence.
    pub message: String,
}

impl Problem {
    fn new(severity: Severity, file: &Path, offset: Option<u64>, message: String) -> Self {
        Self {
            severity,
            file: file.display().to_string(),
            offset,
            message,
        }
    }
}

/// Reads the shard count from `<data_dir>/TSKV`.
pub fn read_shard_count(data_dir: &Path) -> Result<usize, ToolError> {
    if !data_dir.is_dir() {
        return Err(ToolError::Usage(format!(
            "{} is not a directory",
            data_dir.display()
        )));
    }
    tskv::datadir::read_shard_count(data_dir)?.ok_or_else(|| {
        ToolError::Usage(format!(
            "{} is not a tskv data directory: {} does not exist",
            data_dir.display(),
            data_dir.join(tskv::datadir::META_FILE_NAME).display()
        ))
    })
}

/// The files of a shard directory, by kind, each sorted.
#[derive(Debug, Default)]
pub struct Listing {
    /// SSTables.
    pub tables: Vec<TableId>,
    /// WAL segments.
    pub segments: Vec<SegmentNo>,
    /// Whether `MANIFEST.tmp` exists.
    pub manifest_temp: bool,
    /// Names of files that are none of the above (nor `MANIFEST`).
    pub other_files: Vec<String>,
}

/// Lists shard directory `dir`.
pub fn list_shard_dir(dir: &Path) -> Result<Listing, ToolError> {
    let context = || format!("listing {}", dir.display());
    let mut listing = Listing::default();
    for entry in fs::read_dir(dir).map_err(ToolError::io(context()))? {
        let name = entry.map_err(ToolError::io(context()))?.file_name();
        let name = name.to_string_lossy();
        if let Some(id) = TableId::from_file_name(&name) {
            listing.tables.push(id);
        } else if let Some(n) = SegmentNo::from_file_name(&name) {
            listing.segments.push(n);
        } else if name == manifest::TEMP_FILE_NAME {
            listing.manifest_temp = true;
        } else if name != manifest::FILE_NAME {
            listing.other_files.push(name.into_owned());
        }
    }
    listing.tables.sort_unstable();
    listing.segments.sort_unstable();
    listing.other_files.sort_unstable();
    Ok(listing)
}

/// What the shard's manifest says.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ManifestState {
    /// No manifest: nothing was ever flushed.
    Missing,
    /// A valid manifest.
    Valid {
        /// The id the next SSTable will get.
        next_table_id: u64,
        /// The first WAL segment replay reads.
        wal_start: u64,
        /// Live SSTables, oldest first.
        tables: Vec<u64>,
    },
    /// A manifest that does not decode.
    Corrupt {
        /// Where.
        offset: u64,
        /// Why.
        reason: String,
    },
}

/// Loads the manifest of shard directory `dir`: its state, and the manifest to judge the
/// other files by (the empty one if missing or corrupt).
pub fn load_manifest(dir: &Path) -> Result<(ManifestState, Manifest), ToolError> {
    match Manifest::load(dir) {
        Ok(None) => Ok((ManifestState::Missing, Manifest::default())),
        Ok(Some(m)) => {
            let state = ManifestState::Valid {
                next_table_id: m.next_table_id.0,
                wal_start: m.wal_start.0,
                tables: m.tables.iter().map(|t| t.id.0).collect(),
            };
            Ok((state, m))
        }
        Err(StoreError::Corruption { offset, reason, .. }) => Ok((
            ManifestState::Corrupt { offset, reason },
            Manifest::default(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// What one shard directory holds.
#[derive(Debug, Serialize)]
pub struct ShardScan {
    /// `shard-NNN`.
    pub name: String,
    /// Its path.
    pub path: String,
    /// Whether the directory exists.
    pub exists: bool,
    /// The manifest.
    pub manifest: ManifestState,
    /// Live SSTables that exist, in manifest order (oldest first).
    pub tables: Vec<TableScan>,
    /// SSTables not named by the manifest.
    pub orphan_tables: Vec<TableScan>,
    /// WAL segments at or above the manifest's WAL start, oldest first.
    pub segments: Vec<SegmentScan>,
    /// WAL segments below the manifest's WAL start.
    pub orphan_segments: Vec<SegmentScan>,
    /// Whether a `MANIFEST.tmp` was left behind.
    pub manifest_temp: bool,
    /// Files the store does not know.
    pub other_files: Vec<String>,
    /// Everything wrong in this shard, tables' and segments' problems included.
    pub problems: Vec<Problem>,
}

/// Scans shard directory `dir` named `name`.
pub fn scan_shard(dir: &Path, name: String, depth: Depth) -> Result<ShardScan, ToolError> {
    let mut shard = ShardScan {
        name,
        path: dir.display().to_string(),
        exists: dir.is_dir(),
        manifest: ManifestState::Missing,
        tables: Vec::new(),
        orphan_tables: Vec::new(),
        segments: Vec::new(),
        orphan_segments: Vec::new(),
        manifest_temp: false,
        other_files: Vec::new(),
        problems: Vec::new(),
    };
    if !shard.exists {
        let message = "shard directory missing: an empty shard (the server creates it)";
        shard.warn(dir, None, message.to_string());
        return Ok(shard);
    }
    let listing = list_shard_dir(dir)?;
    let (state, manifest) = load_manifest(dir)?;
    let manifest_ok = !matches!(state, ManifestState::Corrupt { .. });
    if let ManifestState::Corrupt { offset, reason } = &state {
        let path = dir.join(manifest::FILE_NAME);
        shard.error(&path, Some(*offset), reason.clone());
    }
    shard.manifest = state;
    shard.scan_tables(dir, &manifest, &listing, depth, manifest_ok)?;
    shard.scan_segments(dir, &manifest, &listing)?;
    shard.manifest_temp = listing.manifest_temp;
    if listing.manifest_temp {
        let path = dir.join(manifest::TEMP_FILE_NAME);
        let message = "manifest install interrupted; the next open deletes this file";
        shard.warn(&path, None, message.to_string());
    }
    shard.other_files = listing.other_files;
    Ok(shard)
}

impl ShardScan {
    fn error(&mut self, file: &Path, offset: Option<u64>, message: String) {
        self.problems
            .push(Problem::new(Severity::Error, file, offset, message));
    }

    fn warn(&mut self, file: &Path, offset: Option<u64>, message: String) {
        self.problems
            .push(Problem::new(Severity::Warning, file, offset, message));
    }

    /// Scans the live tables and the orphans. Damage in an orphan is only a warning,
    /// unless the manifest is corrupt and so cannot tell orphans from live tables.
    fn scan_tables(
        &mut self,
        dir: &Path,
        manifest: &Manifest,
        listing: &Listing,
        depth: Depth,
        manifest_ok: bool,
    ) -> Result<(), ToolError> {
        let table_depth = match depth {
            Depth::Summary => table::Depth::Summary,
            Depth::Verify => table::Depth::Blocks { entries: false },
        };
        for id in manifest.tables.iter().map(|t| t.id) {
            let path = dir.join(id.file_name());
            if !listing.tables.contains(&id) {
                self.error(
                    &path,
                    None,
                    "live SSTable named by the manifest is missing".into(),
                );
                continue;
            }
            let mut scan = table::scan(&path, table_depth)?;
            self.problems.append(&mut scan.problems);
            self.tables.push(scan);
        }
        for &id in listing
            .tables
            .iter()
            .filter(|&&id| !manifest.tables.iter().any(|t| t.id == id))
        {
            let path = dir.join(id.file_name());
            let mut scan = table::scan(&path, table_depth)?;
            if manifest_ok {
                let message = "SSTable not in the manifest (a flush that did not install); the next open deletes it";
                self.warn(&path, None, message.to_string());
                for problem in &mut scan.problems {
                    problem.severity = Severity::Warning;
                    problem.message = format!("in an orphan SSTable: {}", problem.message);
                }
            }
            self.problems.append(&mut scan.problems);
            self.orphan_tables.push(scan);
        }
        Ok(())
    }

    /// Scans the WAL segments and judges their order and tails.
    fn scan_segments(
        &mut self,
        dir: &Path,
        manifest: &Manifest,
        listing: &Listing,
    ) -> Result<(), ToolError> {
        let (orphans, live): (Vec<SegmentNo>, Vec<SegmentNo>) = listing
            .segments
            .iter()
            .partition(|&&n| n < manifest.wal_start);
        for n in orphans {
            let path = dir.join(n.file_name());
            let message = format!(
                "WAL segment below the manifest's WAL start {}: covered by SSTables; the next open deletes it",
                manifest.wal_start.0
            );
            self.warn(&path, None, message);
            self.orphan_segments.push(segment::scan(&path, 0, false)?);
        }
        // What recovery replays after: the newest write in an SSTable or the manifest.
        let tables_last_seq = self
            .tables
            .iter()
            .filter_map(|t| t.footer.as_ref().map(|f| f.largest_seq))
            .max()
            .unwrap_or(0)
            .max(manifest.last_seq.0);
        let mut last_seq: Option<u64> = None;
        for (i, &n) in live.iter().enumerate() {
            let path = dir.join(n.file_name());
            if let Some(&prev) = i.checked_sub(1).and_then(|p| live.get(p)) {
                if n != prev.next() {
                    let message = format!(
                        "WAL segments {} to {} are missing: their records are lost",
                        prev.next().0,
                        n.0 - 1
                    );
                    self.error(&path, None, message);
                }
            }
            let seq_before = last_seq.unwrap_or(0).max(tables_last_seq);
            let scan = segment::scan(&path, seq_before, false)?;
            self.judge_segment(&path, &scan, i + 1 == live.len(), last_seq);
            last_seq = scan.last_seq.or(last_seq);
            self.segments.push(scan);
        }
        Ok(())
    }

    /// Records what is wrong with live segment `scan`; `previous_seq` is the last
    /// sequence number of the segments before it.
    fn judge_segment(
        &mut self,
        path: &Path,
        scan: &SegmentScan,
        is_last: bool,
        previous_seq: Option<u64>,
    ) {
        if let (Some(first), Some(prev)) = (scan.first_seq, previous_seq) {
            if first <= prev {
                let message = format!(
                    "first record has sequence number {first}, not above {prev} of the segment before"
                );
                self.error(path, Some(0), message);
            }
        }
        if let Some(d) = scan.seq_disorder {
            let message = format!(
                "record has sequence number {}, not above the previous record's {}",
                d.seq, d.previous_seq
            );
            self.error(path, Some(d.offset), message);
        }
        if let Tail::Garbage {
            offset,
            bytes,
            reason,
            ..
        } = &scan.tail
        {
            match corruption_reason(&scan.judged_tail, is_last) {
                None => {
                    let message = format!(
                        "torn tail of {bytes} bytes in the last WAL segment ({reason}); recovery truncates it"
                    );
                    self.warn(path, Some(*offset), message);
                }
                Some(why) => {
                    let message = format!(
                        "{why}; the server refuses to start (tskv-tool wal-repair keeps the intact batches)"
                    );
                    self.error(path, Some(*offset), message);
                }
            }
        }
    }
}

/// What a data directory holds.
#[derive(Debug, Serialize)]
pub struct DataDirScan {
    /// The directory.
    pub path: String,
    /// The shard count from `TSKV`.
    pub shard_count: usize,
    /// Whether a server holds the LOCK.
    pub lock: LockState,
    /// One per shard, in order.
    pub shards: Vec<ShardScan>,
    /// Problems of the directory itself (shards' are in [`ShardScan::problems`]).
    pub problems: Vec<Problem>,
}

/// Scans data directory `data_dir` to `depth`.
pub fn scan(data_dir: &Path, depth: Depth) -> Result<DataDirScan, ToolError> {
    let shard_count = read_shard_count(data_dir)?;
    let lock = lock_state(data_dir);
    let mut problems = Vec::new();
    if matches!(lock, LockState::Held) {
        let message = "a running server holds the lock: files may change while they are read";
        problems.push(Problem::new(
            Severity::Warning,
            &data_dir.join(tskv::datadir::LOCK_FILE_NAME),
            None,
            message.to_string(),
        ));
    }
    for extra in extra_shard_dirs(data_dir, shard_count)? {
        let message = format!("shard directory beyond shards={shard_count}: never read");
        problems.push(Problem::new(Severity::Warning, &extra, None, message));
    }
    let shards = (0..shard_count)
        .map(|i| scan_shard(&shard_dir(data_dir, i), shard_dir_name(i), depth))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DataDirScan {
        path: data_dir.display().to_string(),
        shard_count,
        lock,
        shards,
        problems,
    })
}

/// Directories `shard-NNN` with `NNN >= shard_count`.
fn extra_shard_dirs(data_dir: &Path, shard_count: usize) -> Result<Vec<PathBuf>, ToolError> {
    let context = || format!("listing {}", data_dir.display());
    let mut extra = Vec::new();
    for entry in fs::read_dir(data_dir).map_err(ToolError::io(context()))? {
        let entry = entry.map_err(ToolError::io(context()))?;
        let name = entry.file_name();
        let index = name.to_str().and_then(parse_shard_dir_name);
        if index.is_some_and(|i| i >= shard_count) {
            extra.push(entry.path());
        }
    }
    extra.sort();
    Ok(extra)
}

/// The outcome of `verify`.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// The directory.
    pub path: String,
    /// Shards checked.
    pub shard_count: usize,
    /// SSTables checked (live and orphan).
    pub table_count: usize,
    /// Data blocks checked.
    pub block_count: usize,
    /// WAL segments checked (live and orphan).
    pub segment_count: usize,
    /// WAL records checked.
    pub record_count: u64,
    /// Every problem, directory first, then shard by shard.
    pub problems: Vec<Problem>,
    /// Problems of [`Severity::Error`].
    pub error_count: usize,
    /// Problems of [`Severity::Warning`].
    pub warning_count: usize,
}

impl VerifyReport {
    /// Sums up `scan`.
    pub fn from_scan(scan: &DataDirScan) -> Self {
        let tables = || {
            scan.shards
                .iter()
                .flat_map(|s| s.tables.iter().chain(&s.orphan_tables))
        };
        let segments = || {
            scan.shards
                .iter()
                .flat_map(|s| s.segments.iter().chain(&s.orphan_segments))
        };
        let problems: Vec<Problem> = scan
            .problems
            .iter()
            .chain(scan.shards.iter().flat_map(|s| &s.problems))
            .cloned()
            .collect();
        let error_count = problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count();
        Self {
            path: scan.path.clone(),
            shard_count: scan.shard_count,
            table_count: tables().count(),
            block_count: tables().map(|t| t.blocks.len()).sum(),
            segment_count: segments().count(),
            record_count: segments().map(|s| s.record_count).sum(),
            warning_count: problems.len() - error_count,
            error_count,
            problems,
        }
    }
}
