//! Compaction: merging SSTables so read cost and disk use stay bounded however long the
//! store runs.
//!
//! - [`picker`] is the policy, a pure function from the levels to the next task.
//! - [`merge`] is the k-way merging iterator, shared with range scans.
//! - [`job`] runs one task, one output table at a time.
//! - [`sink`] writes a finished table and fdatasyncs it (io_uring or blocking).
//! - [`core`] is the compaction core thread that serves every shard in the server and is
//!   the only writer of their manifests.
//!
//! [`settle`] runs the same picker and jobs synchronously, for the engine driven without a
//! compaction core (tests, tools and embedded use).

pub mod core;
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
        let version = std::sync::Arc::clone(versions.current());
        if task.is_trivial_move() {
            versions.apply(trivial_move(&task, &version))?;
            continue;
        }
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
    }
    Ok(total)
}
