//! A reply sent piece by piece as its connection's socket drains: encoded bytes, and range
//! replies ([`RangeStream`]) that produce their entries as they are sent. A `TS.RANGE`
//! reply too long to build at once is one range; a `TS.MRANGE` reply is the array header,
//! then per series its encoded head (key, labels) and its samples, built at once or
//! streamed. A `KEYS` reply too long to build at once is its header and the keys given,
//! then batches pulled from shards ([`super::keys_reply::KeysPull`]). The connection holds the stream in place of its reply slot, and the replies
//! after it wait ([`super::conn::Conn::streaming`]); the shard fills it
//! ([`super::conns`]).

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::block_cache::BlockCache;
use crate::timeseries::range::{RangeStream, STREAM_STEP_BYTES};
use crate::timeseries::series::SeriesError;

/// One piece of a streamed reply.
#[derive(Debug)]
enum Piece {
    /// Encoded bytes, sent as they are.
    Bytes(Vec<u8>),
    /// A range reply; `started` once its array header went out.
    Range {
        stream: Box<RangeStream>,
        started: bool,
    },
    /// The streamed part of a `KEYS` reply.
    Keys(Box<super::keys_reply::KeysPull>),
}

/// A reply under way: the pieces not sent yet, in order.
#[derive(Debug, Default)]
pub struct ReplyStream {
    pieces: VecDeque<Piece>,
}

impl ReplyStream {
    /// A reply that is one range.
    pub fn range(stream: Box<RangeStream>) -> Self {
        let mut reply = Self::default();
        reply.push_range(stream);
        reply
    }

    /// Appends encoded bytes.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        match self.pieces.back_mut() {
            Some(Piece::Bytes(last)) => last.extend_from_slice(bytes),
            _ => self.pieces.push_back(Piece::Bytes(bytes.to_vec())),
        }
    }

    /// Appends a range reply, header included.
    pub fn push_range(&mut self, stream: Box<RangeStream>) {
        self.pieces.push_back(Piece::Range {
            stream,
            started: false,
        });
    }

    /// Appends the streamed part of a `KEYS` reply.
    pub fn push_keys(&mut self, pull: Box<super::keys_reply::KeysPull>) {
        self.pieces.push_back(Piece::Keys(pull));
    }

    /// Whether it waits for a `KEYS` batch with nothing to send meanwhile (its arrival
    /// marks the connection for writing again).
    pub fn waiting(&self) -> bool {
        matches!(self.pieces.front(), Some(Piece::Keys(pull)) if pull.waiting())
    }

    /// The `KEYS` cursor to pull from now, if a pull is due.
    pub fn take_keys_pull(&mut self) -> Option<(super::mesh::ShardId, u64)> {
        match self.pieces.front_mut() {
            Some(Piece::Keys(pull)) => pull.take_pull(),
            _ => None,
        }
    }

    /// Hands a `KEYS` batch to the piece that asked for it; false if none did.
    pub fn deliver_keys(
        &mut self,
        shard: super::mesh::ShardId,
        cursor: u64,
        result: super::mesh::OpResult,
    ) -> bool {
        match self.pieces.front_mut() {
            Some(Piece::Keys(pull)) => pull.deliver(shard, cursor, result),
            _ => false,
        }
    }

    /// The range the next step fills, if it must be planned first
    /// ([`RangeStream::plan`]): the first range piece.
    fn range_to_plan(&mut self) -> Option<&mut RangeStream> {
        self.pieces.iter_mut().find_map(|piece| match piece {
            Piece::Range { stream, .. } => Some(stream.as_mut()),
            Piece::Bytes(_) | Piece::Keys(_) => None,
        })
    }

    /// Plans the next step of the first range piece if it needs it: adds to `out` the
    /// blocks it would read that are not in memory (`cache` is shard `shard`'s, used for
    /// the ranges it froze). The caller reads them and gives each to
    /// [`ReplyStream::pin`].
    pub fn plan(
        &mut self,
        shard: usize,
        cache: &RefCell<BlockCache>,
        out: &mut Vec<crate::store::BlockFetch>,
    ) {
        if let Some(stream) = self.range_to_plan().filter(|s| s.needs_plan()) {
            let own = (stream.owner == Some(shard)).then_some(cache);
            stream.plan(own, out);
        }
    }

    /// Keeps a block read for the plan of [`ReplyStream::plan`].
    pub fn pin(&mut self, fetch: &crate::store::BlockFetch, block: crate::block_cache::Block) {
        if let Some(stream) = self.range_to_plan() {
            stream.pin(fetch, block);
        }
    }

    /// Appends the next pieces to `out` until it grew by [`STREAM_STEP_BYTES`], the
    /// reply ended (returns true), or a range must be planned again
    /// ([`ReplyStream::plan`]). A range is read through `cache` when shard `shard` (the
    /// one filling) froze it, else with `pread`: from memory when planned.
    ///
    /// # Errors
    /// A range or a `KEYS` batch failed mid-reply: the reply cannot be finished.
    pub fn fill(
        &mut self,
        shard: usize,
        cache: &RefCell<BlockCache>,
        out: &mut Vec<u8>,
    ) -> Result<bool, SeriesError> {
        let target = out.len() + STREAM_STEP_BYTES;
        while out.len() < target {
            let Some(piece) = self.pieces.front_mut() else {
                return Ok(true);
            };
            match piece {
                Piece::Bytes(bytes) => {
                    out.extend_from_slice(bytes);
                    self.pieces.pop_front();
                }
                Piece::Range { stream, started } => {
                    if stream.needs_plan() {
                        return Ok(false);
                    }
                    if !*started {
                        stream.header(out);
                        *started = true;
                    }
                    let own = (stream.owner == Some(shard)).then_some(cache);
                    if stream.fill(own, out)? {
                        self.pieces.pop_front();
                    }
                }
                Piece::Keys(pull) => {
                    if !pull.fill(out, target).map_err(SeriesError::Refused)? {
                        return Ok(false);
                    }
                    self.pieces.pop_front();
                }
            }
        }
        Ok(self.pieces.is_empty())
    }

    /// Chunks its ranges read with a blocking `pread` since the last call.
    pub fn take_uncached_reads(&self) -> u64 {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Range { stream, .. } => stream.take_uncached_reads(),
                Piece::Bytes(_) | Piece::Keys(_) => 0,
            })
            .sum()
    }
}
