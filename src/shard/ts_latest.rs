//! `LATEST` across shards: the open bucket of a compaction rule whose destination lives
//! on another shard, sent there as the source changes (the destination's shard keeps it
//! in [`crate::timeseries::series::SeriesCache::remote_latest`]).
//!
//! A write to a source queues a notice per such rule ([`RuleNotice::Latest`]). At the end
//! of each loop iteration the shard computes each noticed rule's open bucket once, however
//! many samples the iteration wrote, and queues it with the sequence number of the last
//! write it reflects. A queued bucket is sent once that write is acknowledged, and only
//! the newest acknowledged one of a rule: so `LATEST` never shows a write a crash could
//! take back, and still follows a source written without pause (the writes of the
//! iterations after it are not acknowledged yet, but its own are). The bucket travels
//! after the writes are acknowledged, so a read on the destination right after the
//! source's reply may still show the previous one for as long as the message takes.
//! In memory only on the destination's shard: so as it starts, each shard computes the
//! open bucket of every rule whose source it holds and whose destination is elsewhere
//! (found by [`crate::timeseries::directory::SeriesDirectory::read_at_start`]) before it
//! serves, and sends them once it does.
//!
//! [`RuleNotice::Latest`]: crate::timeseries::handover::RuleNotice::Latest

use std::collections::{HashMap, VecDeque};

use super::mesh::{Message, RuleMessage};
use super::Shard;
use crate::base::SeqNo;
use crate::timeseries::chunk::Sample;
use crate::timeseries::rules;

/// Buckets a rule keeps queued while their writes wait for an fdatasync (8): past it, a
/// new one replaces the newest queued, so a stalled disk does not grow the queue.
const QUEUED_PER_RULE_MAX: usize = 8;

/// A rule's open bucket (`None`: empty) as of the write with the sequence number.
type OpenBucketAt = (SeqNo, Option<Sample>);

/// The open buckets of this shard's rules into other shards' series, not sent yet.
#[derive(Debug, Default)]
pub(super) struct LatestOut {
    /// Rules written this iteration, (source, destination), with the newest write's
    /// sequence number.
    changed: HashMap<(Vec<u8>, Vec<u8>), SeqNo>,
    /// Per rule, the buckets computed and not sent, oldest first.
    queued: HashMap<(Vec<u8>, Vec<u8>), VecDeque<OpenBucketAt>>,
}

impl LatestOut {
    /// Takes note that the source of the rule into `dst_key` was written up to `seq`.
    pub(super) fn changed(&mut self, src_key: Vec<u8>, dst_key: Vec<u8>, seq: SeqNo) {
        let gate = self.changed.entry((src_key, dst_key)).or_default();
        *gate = (*gate).max(seq);
    }

    /// Queues `rule`'s open bucket as of the write `gate`. Past [`QUEUED_PER_RULE_MAX`]
    /// (the writes wait for a slow fdatasync), it replaces the newest queued one.
    fn queue(&mut self, rule: (Vec<u8>, Vec<u8>), gate: SeqNo, open: Option<Sample>) {
        let queued = self.queued.entry(rule).or_default();
        if queued.len() >= QUEUED_PER_RULE_MAX {
            queued.pop_back();
        }
        queued.push_back((gate, open));
    }

    /// Whether a queued bucket may be sent now that `ack` is acknowledged.
    pub(super) fn is_due(&self, ack: SeqNo) -> bool {
        self.queued
            .values()
            .any(|q| q.front().is_some_and(|&(gate, _)| gate <= ack))
    }
}

impl Shard {
    /// Computes the open bucket of every rule noticed this iteration and queues it.
    pub(super) fn compute_latest(&mut self) {
        for ((src_key, dst_key), gate) in std::mem::take(&mut self.rule_links.latest.changed) {
            let open = rules::open_bucket(&self.store, &mut self.series, &src_key, &dst_key);
            let open = open.unwrap_or_else(|e| {
                tracing::error!(
                    shard = self.id.0,
                    "computing an open bucket for LATEST: {e}"
                );
                None
            });
            self.rule_links.latest.queue((src_key, dst_key), gate, open);
        }
    }

    /// Sends, per rule, the newest queued bucket whose writes are acknowledged, and drops
    /// the older ones.
    pub(super) fn send_latest(&mut self) {
        let ack = self.ack_seq();
        let mut emptied = Vec::new();
        for ((src_key, dst_key), queued) in &mut self.rule_links.latest.queued {
            let mut newest_due = None;
            while queued.front().is_some_and(|&(gate, _)| gate <= ack) {
                newest_due = queued.pop_front().map(|(_, open)| open);
            }
            if queued.is_empty() {
                emptied.push((src_key.clone(), dst_key.clone()));
            }
            let Some(open) = newest_due else { continue };
            let to = self.series.route.owner(dst_key);
            let message = RuleMessage::Latest {
                src_key: src_key.clone(),
                dst_key: dst_key.clone(),
                open,
            };
            self.outbox[to.0].push_back(Message::Rule(message));
        }
        for rule in emptied {
            self.rule_links.latest.queued.remove(&rule);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_queues_a_bounded_number_of_buckets_and_keeps_the_newest() {
        let mut out = LatestOut::default();
        let rule = (b"src".to_vec(), b"dst".to_vec());
        for seq in 1..=20u64 {
            let open = Some(Sample {
                ts_ms: 0,
                value: seq as f64,
            });
            out.queue(rule.clone(), SeqNo(seq), open);
        }
        let queued = &out.queued[&rule];
        assert_eq!(queued.len(), QUEUED_PER_RULE_MAX);
        assert_eq!(
            queued.front().map(|q| q.0),
            Some(SeqNo(1)),
            "the oldest stays first"
        );
        assert_eq!(
            queued.back().map(|q| q.0),
            Some(SeqNo(20)),
            "the newest is last"
        );
        assert!(!out.is_due(SeqNo(0)));
        assert!(out.is_due(SeqNo(1)));
    }
}
