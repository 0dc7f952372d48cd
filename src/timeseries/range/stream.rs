//! A range reply streamed as its client reads it ([`RangeStream`]), with the reads of its
//! chunks planned ahead of it: before each step the shard asks [`RangeStream::plan`] which
//! blocks the next [`STREAM_PLAN_SEGMENTS`] chunks need, reads them through its io_uring,
//! and pins them in the stream, so the step runs from memory (see the shard's
//! `fill_stream`).

use std::cell::RefCell;

use super::{RangeCursor, RangeSource, STREAM_STEP_BYTES};
use crate::block_cache::{BlockCache, PinnedBlocks};
use crate::resp::{self, Protocol};
use crate::store::BlockFetch;
use crate::timeseries::series::SeriesError;

/// Chunks a stream plans ahead of its cursor per step (64 chunks: at most 256 KiB of
/// encoded chunks at the default `CHUNK_SIZE` of 4 KiB, about a megabyte of reply).
pub const STREAM_PLAN_SEGMENTS: usize = 64;

/// A range reply sent piece by piece as the client reads it: the array header with the
/// counted length, then the entries of a few segments per step.
#[derive(Clone, Debug)]
pub struct RangeStream {
    source: RangeSource,
    cursor: RangeCursor,
    /// Entries the header announces.
    total: u64,
    /// Entries sent so far.
    sent: u64,
    proto: Protocol,
    /// The shard whose store froze the source, set by that shard: only its block cache
    /// may serve the reads.
    pub owner: Option<usize>,
    /// Segments (in walk order) a step may take, once planned ([`RangeStream::plan`]);
    /// `None` until then, and a step of an unplanned stream reads what it needs itself.
    planned_until: Option<usize>,
}

impl RangeStream {
    /// A stream of `total` entries of `source` from `cursor` on, in `proto`.
    pub(super) fn new(
        source: RangeSource,
        cursor: RangeCursor,
        total: u64,
        proto: Protocol,
    ) -> Self {
        Self {
            source,
            cursor,
            total,
            sent: 0,
            proto,
            owner: None,
            planned_until: None,
        }
    }

    /// Appends the reply's array header.
    pub fn header(&self, out: &mut Vec<u8>) {
        resp::array_header(out, usize::try_from(self.total).unwrap_or(usize::MAX));
    }

    /// Chunks read with a blocking `pread` since the last call (the stream was read
    /// without its store's cache): the reading shard counts them as blocking reads.
    pub fn take_uncached_reads(&self) -> u64 {
        self.source.uncached_reads.replace(0)
    }

    /// Whether a step must be planned first: the stream is planned and its cursor reached
    /// the end of what was planned.
    pub fn needs_plan(&self) -> bool {
        self.planned_until
            .is_none_or(|until| self.cursor.segments_done >= until)
            && !self.cursor.done
    }

    /// Plans the next step: adds to `out` the blocks that the next
    /// [`STREAM_PLAN_SEGMENTS`] chunks read and neither the stream's pins nor `cache` (the
    /// owning store's, if this shard is the owner) hold, and lets the next steps take
    /// those chunks. Pins of chunks behind the cursor are dropped. The caller reads the
    /// blocks and gives them to [`RangeStream::pin`] before filling.
    pub fn plan(&mut self, cache: Option<&RefCell<BlockCache>>, out: &mut Vec<BlockFetch>) {
        let from = self.cursor.segments_done;
        let until = (from + STREAM_PLAN_SEGMENTS).min(self.source.segment_count());
        let mut old = std::mem::take(&mut self.source.pinned);
        let mut keep = PinnedBlocks::new();
        if let Some(view) = self.source.view.as_ref() {
            let first = out.len();
            for walk_index in from..until {
                let chunk = self.source.walk_chunk(walk_index);
                if let Some(chunk) = chunk.filter(|c| c.value.is_none()) {
                    view.blocks_to_fetch(&chunk.key, cache, &mut old, &mut keep, out);
                }
            }
            // Neighbouring chunks often share a block: read it once.
            let mut planned = out.split_off(first);
            let mut seen = std::collections::HashSet::new();
            planned.retain(|fetch| seen.insert((fetch.table.id(), fetch.index)));
            out.append(&mut planned);
        }
        self.source.pinned = keep;
        self.planned_until = Some(until);
    }

    /// Keeps `block` (block `index` of table `table`, read through the ring for a plan)
    /// for the chunks planned.
    pub fn pin(&mut self, fetch: &BlockFetch, block: crate::block_cache::Block) {
        let index = u32::try_from(fetch.index).expect("fewer than 2^32 blocks");
        self.source.pinned.insert((fetch.table.id(), index), block);
    }

    /// Appends the next entries until `out` grew by [`STREAM_STEP_BYTES`], the reply
    /// ended, or (when planned) the planned chunks are taken; returns true when it has
    /// ended (every announced entry sent).
    ///
    /// # Errors
    /// A failed read or a damaged chunk, or fewer or more entries than announced (a bug):
    /// the reply cannot be finished, and the connection must be closed.
    pub fn fill(
        &mut self,
        cache: Option<&RefCell<BlockCache>>,
        out: &mut Vec<u8>,
    ) -> Result<bool, SeriesError> {
        let target = out.len() + STREAM_STEP_BYTES;
        let mut samples = Vec::new();
        while out.len() < target {
            let planned_out = self
                .planned_until
                .is_some_and(|until| self.cursor.segments_done >= until)
                && self.cursor.segments_done < self.source.segment_count();
            if planned_out || !self.cursor.step(&self.source, cache, &mut samples)? {
                break;
            }
            self.sent += samples.len() as u64;
            for s in samples.drain(..) {
                crate::timeseries::reply::sample(out, self.proto, s);
            }
        }
        let ended = self.cursor.done;
        if self.sent > self.total || (ended && self.sent < self.total) {
            return Err(SeriesError::Refused(format!(
                "ERR internal error: a streamed range produced {} entries, {} announced",
                self.sent, self.total
            )));
        }
        Ok(ended)
    }
}

/// A [`RangeStream`] as a shard's op result carries it: compared by identity (two
/// results are equal only if they are the same stream).
#[derive(Clone, Debug)]
pub struct StreamedRange(pub Box<RangeStream>);

impl PartialEq for StreamedRange {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for StreamedRange {}
