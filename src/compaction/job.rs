//! Running one compaction task: merge the inputs, keep each key's newest version, drop
//! tombstones that shadow nothing below, and write the result as new SSTables cut at
//! `target_table_bytes`, one [`CompactionJob::step`] per output table so the compaction
//! core can serve other requests (flush installs) between outputs.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::Arc;

use super::filter::CompactionFilter;
use super::merge::{EntrySource, MergeIter};
use super::picker::CompactionTask;
use super::sink::TableSink;
use crate::base::{io_error, iolog, StoreError};
use crate::config::StoreOptions;
use crate::sstable::iter::TableIter;
use crate::sstable::writer::SstWriter;
use crate::sstable::TableEntry;
use crate::version::set::{TableIds, VersionEdit};
use crate::version::{TableHandle, Version};

/// What a compaction read and wrote, for `INFO` and the amplification figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Bytes of input tables.
    pub read_bytes: u64,
    /// Bytes of output tables.
    pub written_bytes: u64,
    /// Entries merged away: older versions and dropped tombstones.
    pub dropped_entries: u64,
}

/// One compaction in progress. Holds the version it started from, so its input files stay
/// alive until it ends, however the shard's version moves meanwhile.
pub struct CompactionJob {
    task: CompactionTask,
    merge: MergeIter<'static>,
    /// The layer above's rewrite of the merged entries, if installed.
    filter: Option<Box<dyn CompactionFilter>>,
    /// Entries the filter handed on, not yet written.
    ready: std::collections::VecDeque<TableEntry>,
    /// The buffer the filter hands entries on in.
    filtered: Vec<TableEntry>,
    merge_done: bool,
    dir: PathBuf,
    options: StoreOptions,
    table_ids: Arc<TableIds>,
    outputs: Vec<Arc<TableHandle>>,
    input_entries: u64,
    output_entries: u64,
    stats: CompactionStats,
    done: bool,
}

impl std::fmt::Debug for CompactionJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactionJob")
            .field("task", &self.task)
            .field("outputs", &self.outputs.len())
            .finish_non_exhaustive()
    }
}

impl CompactionJob {
    /// Prepares `task` over the tables of `version` (which must list them all).
    ///
    /// # Panics
    /// If an input is not in `version`: the task was picked from another version.
    pub fn new(
        task: CompactionTask,
        version: &Version,
        dir: PathBuf,
        options: StoreOptions,
        table_ids: Arc<TableIds>,
    ) -> Self {
        let mut sources: Vec<EntrySource<'static>> = Vec::new();
        let mut read_bytes = 0;
        let mut input_entries = 0;
        for id in task.all_inputs() {
            let handle = version
                .levels()
                .iter()
                .flatten()
                .find(|t| t.id() == id)
                .unwrap_or_else(|| panic!("compaction input {id:?} is not in the version"));
            read_bytes += handle.size_bytes();
            input_entries += handle.table().footer().entry_count;
            sources.push(Box::new(TableIter::new(Arc::clone(handle))));
        }
        Self {
            task,
            merge: MergeIter::new(sources, crate::base::unix_now_ms()),
            filter: options.compaction_filter.map(|make| make()),
            ready: std::collections::VecDeque::new(),
            filtered: Vec::new(),
            merge_done: false,
            dir,
            options,
            table_ids,
            outputs: Vec::new(),
            input_entries,
            output_entries: 0,
            stats: CompactionStats {
                read_bytes,
                ..CompactionStats::default()
            },
            done: false,
        }
    }

    /// The task being run.
    pub fn task(&self) -> &CompactionTask {
        &self.task
    }

    /// Writes the next output table (through `sink`, fdatasynced) and opens it. Returns
    /// `true` once every input entry has been merged.
    ///
    /// # Errors
    /// A read, checksum, write or fdatasync failure. The inputs are untouched; outputs
    /// written so far are never installed and are deleted (as leftovers at the latest).
    pub fn step(&mut self, sink: &mut dyn TableSink) -> Result<bool, StoreError> {
        if self.done {
            return Ok(true);
        }
        let target_bytes = self.options.compaction.target_table_bytes.max(1);
        let mut writer = SstWriter::new(
            self.options.sstable_block_bytes,
            self.options.bloom_bits_per_key,
        );
        loop {
            if writer.size_bytes() >= target_bytes {
                break;
            }
            let Some(entry) = self.next_entry()? else {
                self.done = true;
                break;
            };
            let TableEntry {
                key,
                seq,
                value,
                expire_at_ms,
            } = entry;
            if value.is_none() && self.task.drop_tombstones {
                continue;
            }
            writer.add(&key, seq, value.as_deref(), expire_at_ms);
        }
        if writer.entry_count() > 0 {
            self.output_entries += writer.entry_count();
            self.write_output(writer, sink)?;
        }
        Ok(self.done)
    }

    /// The next entry to write: the merge's, through the filter if one is installed.
    fn next_entry(&mut self) -> Result<Option<TableEntry>, StoreError> {
        let Some(filter) = self.filter.as_mut() else {
            return self.merge.next().transpose();
        };
        if let Some(entry) = self.ready.pop_front() {
            return Ok(Some(entry));
        }
        // A filter hands most entries straight on: one reused buffer, no allocation each.
        let out = &mut self.filtered;
        while out.is_empty() && !self.merge_done {
            match self.merge.next().transpose()? {
                Some(entry) => filter.push(entry, out),
                None => {
                    filter.finish(out);
                    self.merge_done = true;
                }
            }
        }
        if out.len() <= 1 {
            return Ok(out.pop());
        }
        self.ready.extend(out.drain(..));
        Ok(self.ready.pop_front())
    }

    fn write_output(
        &mut self,
        writer: SstWriter,
        sink: &mut dyn TableSink,
    ) -> Result<(), StoreError> {
        let id = self.table_ids.allocate();
        let path = self.dir.join(id.file_name());
        let file = iolog::create(&path, OpenOptions::new().write(true).create_new(true))
            .map_err(io_error(format!("creating SSTable {}", path.display())))?;
        let buf = writer.finish();
        self.stats.written_bytes += buf.len() as u64;
        sink.write_table(Arc::new(file), &path, buf)?;
        let handle = TableHandle::open(&self.dir, id)?;
        self.outputs.push(handle);
        Ok(())
    }

    /// Discards the job after a failure: its outputs are not installed, so their files are
    /// deleted as soon as the job is dropped.
    pub fn abandon(self) {
        for output in &self.outputs {
            output.mark_obsolete();
        }
    }

    /// The edit that replaces the inputs with the outputs, and what the job did.
    ///
    /// # Panics
    /// If called before [`CompactionJob::step`] returned `true`.
    pub fn finish(self) -> (VersionEdit, CompactionStats) {
        assert!(self.done, "finish() before the merge ended");
        let mut stats = self.stats;
        stats.dropped_entries = self.input_entries.saturating_sub(self.output_entries);
        let level = self.task.output_level;
        let edit = VersionEdit {
            added: self.outputs.into_iter().map(|t| (level, t)).collect(),
            removed: self.task.all_inputs().collect(),
            wal_start: None,
            last_seq: None,
        };
        (edit, stats)
    }
}

/// The edit of a trivial move: the one input changes level, nothing is rewritten.
///
/// # Panics
/// If the task is not a trivial move or its input is not in `version`.
pub fn trivial_move(task: &CompactionTask, version: &Version) -> VersionEdit {
    assert!(task.is_trivial_move(), "not a trivial move: {task:?}");
    let id = task.inputs[0];
    let handle = version
        .levels()
        .iter()
        .flatten()
        .find(|t| t.id() == id)
        .expect("input in the version");
    VersionEdit {
        added: vec![(task.output_level, Arc::clone(handle))],
        removed: vec![id],
        wal_start: None,
        last_seq: None,
    }
}
