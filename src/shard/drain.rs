//! A shard's shutdown: it stops taking connections, runs until nothing of its own or
//! addressed to it can still be pending, and sends what replies it can before its thread
//! exits.

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Shard;
use crate::config::FsyncMode;

impl Shard {
    /// Stops taking connections: the first step of a shutdown.
    pub(super) fn begin_drain(&mut self) {
        self.draining = true;
        if let Some(listener) = self.listener.take() {
            let _ = self.epoll.delete(listener.as_raw_fd());
        }
        self.shared.intake_stopped.fetch_add(1, Ordering::SeqCst);
    }

    /// True once no work of this shard or addressed to it can still be pending.
    pub(super) fn drained(&self) -> bool {
        if crate::fault::shard_stop_hangs(self.id.0) {
            return false;
        }
        if self.shared.peers_may_be_gone.load(Ordering::SeqCst) {
            return self.committer.wal_idle();
        }
        self.shared.intake_stopped.load(Ordering::SeqCst) == self.shards
            && self.links.incoming.iter().flatten().all(|c| c.is_empty())
            && self.outbox.iter().all(VecDeque::is_empty)
            && self.remote_waiting.is_empty()
            && self.txc.is_idle()
            && self.txp.is_idle()
            && self.in_flight_to.iter().all(|&n| n == 0)
            && self.committer.wal_idle()
            && self.fetches.is_idle()
            && (self.poisoned.is_some() || self.store.last_seq() == self.store.written_seq())
            && (self.config().fsync != FsyncMode::Always
                || self.poisoned.is_some()
                || self.store.durable_seq() == self.store.last_seq())
            && self.conns.iter().flatten().all(|c| c.slots.is_empty())
    }

    /// Last chance to deliver replies before the thread exits.
    pub(super) fn finish(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        for conn in self.conns.iter_mut().flatten() {
            while conn.unsent_bytes() > 0 && Instant::now() < deadline {
                if conn.write_out().is_err() {
                    break;
                }
                if conn.unsent_bytes() > 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        if self.committer.flush_in_flight() {
            tracing::info!(
                shard = self.id.0,
                "exiting with a memtable flush in flight; the WAL still covers it"
            );
        }
    }
}
