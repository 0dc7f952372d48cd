//! Compaction: merging SSTables so read cost and disk use stay bounded however long the
//! store runs.
//!
//! - [`picker`] is the policy, a pure function from the levels to the next task.
//! - [`merge`] is the k-way merging iterator, shared with range scans.
//! - [`filter`] is the hook through which a layer above rewrites what a job writes.
//! - [`job`] runs one task, one output table at a time.
//! - [`sink`] writes a finished table and fdatasyncs it (io_uring or blocking).
//! - [`core`] is the compaction core thread that serves every shard in the server and is
//!   the only writer of their manifests.
//!
//! [`settle`] runs the same picker and jobs synchronously, for the engine driven without a
//! compaction core (tests, tools and embedded use).

pub mod core;
pub mod filter;
pub mod job;
pub mod merge;
pub mod picker;
pub mod simulate;
pub mod sink;

use crate::base::StoreError;
use crate::config::StoreOptions;
use crate::version::set::VersionSet;
use job::{trivial_move, CompactionJob, CompactionStats};
use sink::TableSink;

/// Runs compactions on `versions` until the picker finds nothing to do, writing through
/// `sink`. Returns the summed statistics.
///
/// # Errors
/// The first failure; the version set then stays at the last installed version.
pub fn settle(
    versions: &mut VersionSet,
    options: &StoreOptions,
    sink: &mut dyn TableSink,
) -> Result<CompactionStats, StoreError> {
    let mut total = CompactionStats::default();
    while let Some(task) = picker::pick(
        &versions.current().metas(),
        &options.compaction,
        crate::base::unix_now_ms(),
    ) {
        if task.is_trivial_move() {
            let version = std::sync::Arc::clone(versions.current());
            versions.apply(trivial_move(&task, &version))?;
            continue;
        }
        run(versions, options, sink, task, &mut total)?;
    }
    Ok(total)
}

/// Rewrites every table down to the last level, level by level (a manual full
/// compaction, as RocksDB's `CompactRange` with a bottommost rewrite): afterwards every
/// overwritten version is gone and so is every tombstone, since nothing lies below the
/// last level. For offline tools; the server never does this.
///
/// # Errors
/// The first failure; the version set then stays at the last installed version.
pub fn settle_full(
    versions: &mut VersionSet,
    options: &StoreOptions,
    sink: &mut dyn TableSink,
) -> Result<CompactionStats, StoreError> {
    let mut total = CompactionStats::default();
    for level in 0..crate::manifest::LEVELS_MAX - 1 {
        let metas = versions.current().metas();
        if let Some(task) = picker::rewrite_task(&metas, level, crate::base::unix_now_ms()) {
            run(versions, options, sink, task, &mut total)?;
        }
    }
    Ok(total)
}

/// Runs one task to the end and installs its result, adding its statistics to `total`.
fn run(
    versions: &mut VersionSet,
    options: &StoreOptions,
    sink: &mut dyn TableSink,
    task: picker::CompactionTask,
    total: &mut CompactionStats,
) -> Result<(), StoreError> {
    let version = std::sync::Arc::clone(versions.current());
    let mut job = CompactionJob::new(
        task,
        &version,
        versions.dir().to_path_buf(),
        options.clone(),
        std::sync::Arc::clone(versions.table_ids()),
    );
    let stepped = loop {
        match job.step(sink) {
            Ok(true) => break Ok(()),
            Ok(false) => {}
            Err(e) => break Err(e),
        }
    };
    if let Err(e) = stepped {
        job.abandon();
        return Err(e);
    }
    let (edit, stats) = job.finish();
    versions.apply(edit)?;
    total.read_bytes += stats.read_bytes;
    total.written_bytes += stats.written_bytes;
    total.dropped_entries += stats.dropped_entries;
    Ok(())
}
