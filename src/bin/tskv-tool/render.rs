//! Text output of every report. Each function returns the whole text, ending in a newline.

use std::fmt::Write;

use tskv::datadir::LockState;

use crate::datadir::{DataDirScan, ManifestState, Problem, Severity, ShardScan, VerifyReport};
use crate::lookup::{GetReport, Source};
use crate::repair::RepairReport;
use crate::reshard::ReshardReport;
use crate::segment::{SegmentScan, Tail};
use crate::table::TableScan;

/// Appends a formatted line to a `String` (writing to a `String` cannot fail).
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).expect("writing to a String")
    };
}

fn seq_range(first: Option<u64>, last: Option<u64>) -> String {
    match (first, last) {
        (Some(first), Some(last)) => format!("seq {first}..={last}"),
        _ => "no records".to_string(),
    }
}

fn tail_text(tail: &Tail) -> String {
    match tail {
        Tail::Clean { zero_bytes } => format!("clean ({zero_bytes} zero bytes after)"),
        Tail::Garbage {
            offset,
            bytes,
            reason,
            intact_batches_after,
            intact_records_after,
            durable_proof_offset,
        } => {
            let mut text = format!("{bytes} bad bytes at offset {offset} ({reason})");
            if *intact_batches_after > 0 {
                text.push_str(&format!(
                    ", then {intact_batches_after} intact batches ({intact_records_after} records)"
                ));
            }
            if let Some(proof) = durable_proof_offset {
                text.push_str(&format!(
                    "; the batch at offset {proof} was written after the bad bytes were durable"
                ));
            }
            text
        }
    }
}

fn problem_text(p: &Problem) -> String {
    let severity = match p.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    match p.offset {
        Some(offset) => format!("{severity}: {} at offset {offset}: {}", p.file, p.message),
        None => format!("{severity}: {}: {}", p.file, p.message),
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `info`.
pub fn info(scan: &DataDirScan) -> String {
    let mut out = String::new();
    line!(out, "data directory {}", scan.path);
    line!(out, "shards: {}", scan.shard_count);
    let lock = match &scan.lock {
        LockState::NoLockFile => "no LOCK file (no server ever ran here)".to_string(),
        LockState::Free => "free (no server running)".to_string(),
        LockState::Held => "HELD by a running server (files may change while read)".to_string(),
        LockState::Unknown { error } => format!("unknown ({error})"),
    };
    line!(out, "lock: {lock}");
    for shard in &scan.shards {
        shard_info(&mut out, shard);
    }
    let problems: Vec<&Problem> = scan
        .problems
        .iter()
        .chain(scan.shards.iter().flat_map(|s| &s.problems))
        .collect();
    if !problems.is_empty() {
        line!(
            out,
            "\nnotes (run `tskv-tool verify` to check every block):"
        );
        for p in problems {
            line!(out, "  {}", problem_text(p));
        }
    }
    out
}

fn shard_info(out: &mut String, shard: &ShardScan) {
    line!(out, "\n{} ({})", shard.name, shard.path);
    if !shard.exists {
        line!(out, "  directory missing (empty shard)");
        return;
    }
    let manifest = match &shard.manifest {
        ManifestState::Missing => "none (nothing flushed yet)".to_string(),
        ManifestState::Valid {
            next_table_id,
            wal_start,
            tables,
        } => format!(
            "next table id {next_table_id}, WAL start segment {wal_start}, live tables {tables:?}"
        ),
        ManifestState::Corrupt { offset, reason } => {
            format!("CORRUPT at offset {offset}: {reason}")
        }
    };
    line!(out, "  manifest: {manifest}");
    line!(out, "  sstables: {}", shard.tables.len());
    for table in &shard.tables {
        line!(out, "    {}", table_line(table));
    }
    line!(out, "  wal segments: {}", shard.segments.len());
    for segment in &shard.segments {
        line!(out, "    {}", segment_line(segment));
    }
    if !shard.orphan_tables.is_empty() || !shard.orphan_segments.is_empty() {
        let heading = if matches!(shard.manifest, ManifestState::Corrupt { .. }) {
            "not named by a readable manifest (live or orphan cannot be told):"
        } else {
            "orphans (deleted at the next open):"
        };
        line!(out, "  {heading}");
        for table in &shard.orphan_tables {
            line!(out, "    {}", table_line(table));
        }
        for segment in &shard.orphan_segments {
            line!(out, "    {}", segment_line(segment));
        }
    }
    if shard.manifest_temp {
        line!(out, "  leftover: {}", tskv::manifest::TEMP_FILE_NAME);
    }
    if !shard.other_files.is_empty() {
        line!(out, "  other files: {}", shard.other_files.join(", "));
    }
}

fn table_line(t: &TableScan) -> String {
    let name = file_name(&t.path);
    match &t.footer {
        Some(f) => format!(
            "{name}  entries {}  {}  blocks {}  bytes {}",
            f.entry_count,
            seq_range(
                (f.entry_count > 0).then_some(f.smallest_seq),
                (f.entry_count > 0).then_some(f.largest_seq)
            ),
            t.blocks.len(),
            t.file_bytes
        ),
        None => format!("{name}  unreadable  bytes {}", t.file_bytes),
    }
}

fn segment_line(s: &SegmentScan) -> String {
    format!(
        "{}  records {}  {}  valid bytes {} of {}  tail: {}",
        file_name(&s.path),
        s.record_count,
        seq_range(s.first_seq, s.last_seq),
        s.valid_bytes,
        s.file_bytes,
        tail_text(&s.tail)
    )
}

/// `wal`.
pub fn wal(scan: &SegmentScan) -> String {
    let mut out = String::new();
    line!(out, "WAL segment {}", scan.path);
    if let Some(n) = scan.number {
        line!(out, "segment number: {n}");
    }
    line!(out, "file bytes: {}", scan.file_bytes);
    line!(out, "records: {}", scan.record_count);
    line!(
        out,
        "sequence numbers: {}",
        seq_range(scan.first_seq, scan.last_seq)
    );
    line!(out, "valid bytes: {}", scan.valid_bytes);
    line!(out, "tail: {}", tail_text(&scan.tail));
    if matches!(scan.tail, Tail::Garbage { .. }) {
        line!(
            out,
            "  (tskv-tool verify judges it: a torn tail that recovery truncates, or corruption)"
        );
    }
    if let Some(d) = scan.seq_disorder {
        line!(
            out,
            "sequence disorder: record at offset {} has seq {} after {}",
            d.offset,
            d.seq,
            d.previous_seq
        );
    }
    if let Some(records) = &scan.records {
        line!(
            out,
            "\n{:>12}  {:>12}  {:<6}  {:>11}  key",
            "offset",
            "seq",
            "kind",
            "value bytes"
        );
        for r in records {
            line!(
                out,
                "{:>12}  {:>12}  {:<6}  {:>11}  {}",
                r.offset,
                r.seq,
                r.kind,
                r.value_bytes,
                r.key
            );
        }
    }
    out
}

/// `sst`.
pub fn sst(scan: &TableScan) -> String {
    let mut out = String::new();
    line!(out, "SSTable {}", scan.path);
    if let Some(id) = scan.id {
        line!(out, "table id: {id}");
    }
    line!(out, "file bytes: {}", scan.file_bytes);
    if let Some(f) = &scan.footer {
        line!(out, "footer:");
        line!(out, "  format version: {}", f.format_version);
        if let Some(deadline) = f.first_deadline_ms {
            line!(out, "  first expiry deadline: {deadline} ms Unix time");
        }
        line!(
            out,
            "  index: offset {} bytes {}",
            f.index_offset,
            f.index_bytes
        );
        line!(
            out,
            "  bloom: offset {} bytes {}",
            f.bloom_offset,
            f.bloom_bytes
        );
        line!(out, "  entry count: {}", f.entry_count);
        line!(out, "  smallest seq: {}", f.smallest_seq);
        line!(out, "  largest seq: {}", f.largest_seq);
        line!(
            out,
            "bloom filter: {} bits, {} probes per key",
            scan.bloom_bits.unwrap_or(0),
            scan.bloom_probes.unwrap_or(0)
        );
        line!(out, "data blocks: {}", scan.blocks.len());
        for (i, b) in scan.blocks.iter().enumerate() {
            let entries = b.entry_count.map_or("?".to_string(), |n| n.to_string());
            line!(
                out,
                "  block {i}: offset {} bytes {} entries {entries} last key {}",
                b.offset,
                b.bytes,
                b.last_key
            );
        }
    }
    if let Some(entries) = &scan.entries {
        line!(
            out,
            "\n{:>6}  {:>12}  {:>11}  key",
            "block",
            "seq",
            "value bytes"
        );
        for e in entries {
            let value = e
                .value_bytes
                .map_or("tombstone".to_string(), |n| n.to_string());
            line!(
                out,
                "{:>6}  {:>12}  {:>11}  {}",
                e.block,
                e.seq,
                value,
                e.key
            );
        }
    }
    if scan.problems.is_empty() {
        line!(out, "checksums: all {} data blocks OK", scan.blocks.len());
    } else {
        for p in &scan.problems {
            line!(out, "{}", problem_text(p));
        }
    }
    out
}

/// `verify`.
pub fn verify(report: &VerifyReport) -> String {
    let mut out = String::new();
    for p in &report.problems {
        line!(out, "{}", problem_text(p));
    }
    let verdict = if report.error_count == 0 {
        "OK"
    } else {
        "CORRUPT"
    };
    line!(
        out,
        "verify {}: {verdict}: {} shards, {} SSTables ({} data blocks), {} WAL segments ({} records); {} errors, {} warnings",
        report.path,
        report.shard_count,
        report.table_count,
        report.block_count,
        report.segment_count,
        report.record_count,
        report.error_count,
        report.warning_count
    );
    out
}

/// `get`: the value as redis-cli prints it, then its sequence number and place.
pub fn get(report: &GetReport) -> String {
    let mut out = String::new();
    let Some(found) = &report.found else {
        line!(out, "(nil)");
        line!(out, "no version of {} in {}", report.key, report.shard_dir);
        return out;
    };
    match &found.value {
        Some(value) => line!(out, "{value}"),
        None => line!(out, "(nil)"),
    }
    let what = if found.value.is_some() {
        "value"
    } else {
        "tombstone"
    };
    line!(out, "seq {} ({what})", found.seq);
    if let Some(deadline) = found.expire_at_ms {
        let state = if tskv::base::is_expired(Some(deadline), tskv::base::unix_now_ms()) {
            "expired"
        } else {
            "not yet expired"
        };
        line!(out, "expires at {deadline} ms Unix time ({state})");
    }
    match &found.source {
        Source::Wal { file, offset } => {
            line!(out, "found in WAL segment {file} at offset {offset}")
        }
        Source::Sstable {
            file, block_offset, ..
        } => line!(
            out,
            "found in SSTable {file}, data block at offset {block_offset}"
        ),
    }
    out
}

/// `reshard`: what was copied where, and where the old directory is.
pub fn reshard(report: &ReshardReport) -> String {
    let mut out = String::new();
    line!(
        out,
        "resharded {} from {} to {} shards: {} keys copied",
        report.source,
        report.source_shard_count,
        report.shard_count,
        report.key_count
    );
    for (index, keys) in report.keys_per_shard.iter().enumerate() {
        line!(
            out,
            "  {}: {keys} keys",
            tskv::datadir::shard_dir_name(index)
        );
    }
    match &report.old_copy {
        Some(old) => {
            line!(
                out,
                "{} now holds the {} shards",
                report.result,
                report.shard_count
            );
            line!(out, "the old directory was kept as {old}; delete it once the server runs well on the new one");
        }
        None => line!(
            out,
            "new data directory: {} ({} left in place)",
            report.result,
            report.source
        ),
    }
    out
}

/// `wal-repair`: each segment's plan, and whether it was carried out.
pub fn wal_repair(report: &RepairReport) -> String {
    let mut out = String::new();
    if report.segments.is_empty() {
        line!(
            out,
            "{}: every live WAL segment opens; nothing to repair",
            report.data_dir
        );
        return out;
    }
    for s in &report.segments {
        line!(out, "{} at offset {}: {}", s.path, s.offset, s.reason);
        line!(
            out,
            "  repair keeps the records before offset {} and {} intact batches ({} records) after the bad bytes",
            s.offset,
            s.kept_batches,
            s.kept_records
        );
        line!(
            out,
            "  and loses {} bad bytes: the writes with sequence numbers {} that were in them",
            s.dropped_bytes,
            s.lost_seqs
        );
        if let Some(backup) = &s.backup {
            line!(out, "  repaired; the old segment is kept as {backup}");
        }
    }
    if !report.applied {
        line!(
            out,
            "nothing was changed. Keep a copy of {}, then run again with --yes to repair.",
            report.data_dir
        );
    }
    out
}

/// `compact`: each shard's live SSTables before and after.
pub fn compact(report: &crate::compact::CompactReport) -> String {
    let mut out = String::new();
    line!(out, "compacted {}", report.data_dir);
    for s in &report.shards {
        line!(
            out,
            "  {}: {} SSTables, {} bytes -> {} SSTables, {} bytes",
            tskv::datadir::shard_dir_name(s.shard),
            s.sstables_before,
            s.sstable_bytes_before,
            s.sstables,
            s.sstable_bytes
        );
    }
    line!(out, "live SSTable bytes: {}", report.sstable_bytes);
    out
}
