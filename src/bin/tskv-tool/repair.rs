//! `wal-repair`: the operator's way past a WAL segment that recovery refuses to open.
//!
//! Recovery stops, rather than drop acknowledged writes, when a live segment holds bad
//! bytes that a crash cannot explain ([`tskv::wal::reader::judge_tail`]). This command
//! finds every such segment with the same rule and shows, for each, what a repair would
//! keep and lose ([`Salvage`]): the valid prefix and every intact batch after the bad
//! bytes are kept, moved up behind the prefix; only the bad bytes, and the sequence
//! numbers that may have been in them, are lost. Like `redis-check-aof --fix` it changes
//! nothing unless asked: with `--yes` it does the repair, keeping the old segment beside
//! it as `wal-N.log.corrupt-<unix seconds>` (which recovery ignores) and installing the
//! new one durably (temp file, fdatasync, rename, fsync of the directory).
//!
//! Keeping the batches after the bad bytes, rather than truncating at them, loses the
//! fewest writes: each batch is one group commit, whole or absent, and a key's newest
//! surviving write wins as it would have. A torn tail of the last segment is not repaired
//! here: recovery cuts it on its own.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tskv::base::fs::install_file;
use tskv::base::SeqNo;
use tskv::datadir::{self, DataDirError};
use tskv::wal::reader::{corruption_reason, Salvage, SegmentReader};

use crate::datadir::read_shard_count;
use crate::datadir::{scan_shard, Depth};
use crate::ToolError;

/// One segment that needs (or got) a repair.
#[derive(Debug, Serialize)]
pub struct SegmentRepair {
    /// The segment file.
    pub path: String,
    /// Where the bad bytes start.
    pub offset: u64,
    /// Why recovery refuses it.
    pub reason: String,
    /// Non-zero bytes dropped.
    pub dropped_bytes: u64,
    /// The sequence numbers that may be lost, as `first..=last` or `first..` at the end.
    pub lost_seqs: String,
    /// Intact batches after the bad bytes that are kept.
    pub kept_batches: u64,
    /// Records in them.
    pub kept_records: u64,
    /// Where the old segment was kept, once repaired.
    pub backup: Option<String>,
}

/// What `wal-repair` found and did.
#[derive(Debug, Serialize)]
pub struct RepairReport {
    /// The data directory.
    pub data_dir: String,
    /// Whether the repair was done (`--yes`) or only shown.
    pub applied: bool,
    /// Every segment that needs a repair.
    pub segments: Vec<SegmentRepair>,
}

/// Finds every live WAL segment of `data_dir` that recovery would refuse, and repairs
/// them if `apply`.
///
/// # Errors
/// [`ToolError::Usage`] if a server holds the directory's lock; I/O errors naming the
/// file.
pub fn wal_repair(data_dir: &Path, apply: bool) -> Result<RepairReport, ToolError> {
    let _lock = datadir::lock(data_dir).map_err(|e| match e {
        DataDirError::Locked(_) => ToolError::Usage(format!(
            "{e}; stop the server before repairing its WAL (wal-repair works offline)"
        )),
        other => other.into(),
    })?;
    let shard_count = read_shard_count(data_dir)?;
    let mut report = RepairReport {
        data_dir: data_dir.display().to_string(),
        applied: apply,
        segments: Vec::new(),
    };
    for index in 0..shard_count {
        let dir = datadir::shard_dir(data_dir, index);
        let shard = scan_shard(&dir, datadir::shard_dir_name(index), Depth::Summary)?;
        let live = shard.segments.len();
        for (i, segment) in shard.segments.iter().enumerate() {
            let Some(reason) = corruption_reason(&segment.judged_tail, i + 1 == live) else {
                continue;
            };
            let path = Path::new(&segment.path);
            let data =
                fs::read(path).map_err(ToolError::io(format!("reading {}", segment.path)))?;
            let mut reader = SegmentReader::new(&data);
            reader.by_ref().for_each(drop);
            let plan = Salvage::plan(&data, &reader, SeqNo(segment.seq_before))
                .expect("a corrupt tail has non-zero bytes");
            let backup = if apply {
                Some(apply_plan(&dir, path, &data, &plan)?)
            } else {
                None
            };
            report.segments.push(SegmentRepair {
                path: segment.path.clone(),
                offset: reader.valid_end() as u64,
                reason,
                dropped_bytes: plan.dropped_bytes as u64,
                lost_seqs: match plan.lost_seqs {
                    (first, Some(last)) => format!("{}..={}", first.0, last.0),
                    (first, None) => format!("{}..", first.0),
                },
                kept_batches: plan.kept_batches,
                kept_records: plan.kept_records,
                backup,
            });
        }
    }
    Ok(report)
}

/// Keeps a copy of the segment, then installs the salvaged content in its place. Returns
/// the copy's path.
fn apply_plan(dir: &Path, path: &Path, data: &[u8], plan: &Salvage) -> Result<String, ToolError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .expect("segment paths come from the directory listing");
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let backup_name = format!("{name}.corrupt-{seconds}");
    install_file(dir, &backup_name, &format!("{backup_name}.tmp"), data)?;
    install_file(
        dir,
        name,
        &format!("{name}.repair-tmp"),
        &plan.rewrite(data),
    )?;
    Ok(dir.join(backup_name).display().to_string())
}
