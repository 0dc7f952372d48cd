//! Compaction rules whose source and destination live on different shards: the second
//! message round of `TS.CREATERULE` and `TS.DELETERULE`, and the hand-over of closed
//! buckets ([`crate::timeseries::handover`] has the store's side and why it is built so).
//!
//! ```text
//!  client ─► shard S (owns src)                       shard D (owns dst)
//!  TS.CREATERULE src dst ...  check src, record
//!                             "unlink dst" (durable) ── Link ──►  check dst, set its
//!                                                                 sourceKey
//!                             add the rule, drop ◄─ Linked ─ (once durable)
//!                             the record (one batch)
//!  OK ◄── (once the rule is durable)
//!
//!  TS.ADD src closes a bucket: pending entry ┐ one WAL batch
//!                              the sample   ┘
//!  once durable: recompute ── Bucket ──►     write it at its start (LAST)
//!  delete the pending entry ◄─ BucketStored ─ (once durable)
//! ```
//!
//! A command waiting for the other shard answers its client when that shard has answered,
//! so neither loop ever blocks. At most `shard_queue_len` buckets are in flight to each
//! peer; the others wait in the shard's own queue (their pending entries are durable), so
//! a slow peer backpressures the hand-over and nothing is dropped. Deleting one series of
//! a rule sends the other's shard a `Forget` from a durable pending unlink, dropped on the
//! `Forgotten` answer. After a start, every pending entry is sent again.

use std::collections::{HashMap, VecDeque};

use super::mesh::{Message, OpResult, ReplyTo, RuleMessage, ShardId};
use super::Shard;
use crate::base::SeqNo;
use crate::timeseries::exec::decode_request;
use crate::timeseries::handover::{self, PendingBucket, RuleNotice};
use crate::timeseries::rules::{self, RuleRequest};
use crate::timeseries::series::SeriesError;

/// A `TS.CREATERULE` or `TS.DELETERULE` waiting for the destination's shard.
enum Waiting {
    Create {
        from: ShardId,
        reply_to: ReplyTo,
        request: RuleRequest,
    },
    Delete {
        from: ShardId,
        reply_to: ReplyTo,
        /// The sequence number of the source's write (the rule's removal).
        gate: SeqNo,
    },
}

/// Where a pending bucket is in its hand-over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// In the send queue.
    Queued,
    /// Sent; `stale` if it changed since, so it goes again once answered.
    InFlight { stale: bool },
    /// The destination's shard refused it (it refuses writes); sent again after a start.
    Parked,
}

struct BucketState {
    src_key: Vec<u8>,
    /// Sent only once this is acknowledged here: every sample it folds is durable.
    gate: SeqNo,
    phase: Phase,
}

/// This shard's side of its rules across shards.
pub(super) struct RuleLinks {
    next_token: u64,
    waiting: HashMap<u64, Waiting>,
    buckets: HashMap<PendingBucket, BucketState>,
    queued: VecDeque<PendingBucket>,
    in_flight_to: Vec<usize>,
    /// Whether the pending entries found at start-up were queued.
    recovered: bool,
    /// Open buckets of rules into other shards' series, to send for `LATEST`.
    pub(super) latest: super::ts_latest::LatestOut,
}

impl RuleLinks {
    /// Nothing waiting, for a server of `shards` shards.
    pub(super) fn new(shards: usize) -> Self {
        Self {
            next_token: 0,
            waiting: HashMap::new(),
            buckets: HashMap::new(),
            queued: VecDeque::new(),
            in_flight_to: vec![0; shards],
            recovered: false,
            latest: super::ts_latest::LatestOut::default(),
        }
    }

    /// Takes note that `pending` must be (sent) again, once `gate` is acknowledged.
    fn dirty(&mut self, pending: PendingBucket, src_key: Vec<u8>, gate: SeqNo) {
        match self.buckets.get_mut(&pending) {
            None => {
                self.queued.push_back(pending.clone());
                let phase = Phase::Queued;
                let state = BucketState {
                    src_key,
                    gate,
                    phase,
                };
                self.buckets.insert(pending, state);
            }
            Some(state) => {
                state.gate = state.gate.max(gate);
                if let Phase::InFlight { stale } = &mut state.phase {
                    *stale = true;
                }
            }
        }
    }
}

fn encoded_error(text: &str) -> OpResult {
    let mut out = Vec::new();
    crate::resp::error(&mut out, text);
    OpResult::Encoded(out)
}

fn encoded_ok() -> OpResult {
    let mut out = Vec::new();
    crate::resp::simple(&mut out, "OK");
    OpResult::Encoded(out)
}

/// The unlink of `request`'s destination, recorded while the destination's shard links it.
fn intent_of(request: &RuleRequest) -> handover::PendingUnlink {
    handover::PendingUnlink {
        side: handover::UnlinkSide::Destination,
        src_key: request.src_key.clone(),
        dst_key: request.rule.dest_key.clone(),
    }
}

/// The reply text of a failed rule step.
fn error_text(e: &SeriesError) -> String {
    match e {
        SeriesError::Refused(text) => text.clone(),
        other => format!("ERR storage error: {other}"),
    }
}

impl Shard {
    /// Queues `message` to shard `to` once the acknowledgement point reaches `gate`.
    fn send_when_acknowledged(&mut self, to: ShardId, message: Message, gate: SeqNo) {
        if gate <= self.ack_seq() {
            self.outbox[to.0].push_back(message);
        } else {
            let tail_gate = self.remote_waiting.back().map_or(SeqNo(0), |(g, _, _)| *g);
            self.remote_waiting
                .push_back((gate.max(tail_gate), to, message));
        }
    }

    /// If `request` is a `TS.CREATERULE` or `TS.DELETERULE` whose destination is on
    /// another shard, runs the source's half, asks the destination's shard for the other
    /// and returns true: the part is answered when that shard answers. When the source's
    /// half fails it returns false without a change: the part then runs as a command of
    /// this shard, which fails the same check with the same reply (the part's slot does
    /// not exist yet, so it cannot be answered from here).
    pub(super) fn defer_rule_command(
        &mut self,
        request: &[u8],
        from: ShardId,
        reply_to: ReplyTo,
    ) -> bool {
        // Most series requests are no rule command: look at the name's length (both names
        // have 13 bytes) before decoding anything.
        if self.shards == 1 || request.get(1..5) != Some(&13u32.to_le_bytes()[..]) {
            return false;
        }
        let Some((_, args)) = decode_request(request) else {
            return false;
        };
        let create = args[0].eq_ignore_ascii_case(b"TS.CREATERULE");
        let delete = args[0].eq_ignore_ascii_case(b"TS.DELETERULE") && args.len() == 3;
        if !(create || delete) || args.len() < 3 || self.series.route.is_local(args[2]) {
            return false;
        }
        if self.poisoned.is_some() {
            return false;
        }
        let token = self.rule_links.next_token;
        let (src, dst) = (args[1].to_vec(), args[2].to_vec());
        let waiting = if create {
            match rules::parse_create(&args).and_then(|request| {
                rules::check_source(&self.store, &mut self.series, &request.src_key)?;
                Ok(request)
            }) {
                Ok(request) => Waiting::Create {
                    from,
                    reply_to,
                    request,
                },
                // The part runs as a local command, which fails the same check.
                Err(_) => return false,
            }
        } else {
            match rules::drop_rule(&mut self.store, &mut self.series, &src, &dst) {
                Ok(gate) => Waiting::Delete {
                    from,
                    reply_to,
                    gate,
                },
                Err(_) => return false,
            }
        };
        // The destination links only once the source has durably recorded how to unlink it
        // (should a crash come before the rule is added), and lets go only once the
        // source's removal of the rule is durable.
        let gate = match &waiting {
            Waiting::Delete { gate, .. } => *gate,
            Waiting::Create { request, .. } => {
                handover::record_unlink(&mut self.store, &intent_of(request))
            }
        };
        self.rule_links.next_token += 1;
        self.rule_links.waiting.insert(token, waiting);
        let to = self.series.route.owner(&dst);
        let message = if create {
            RuleMessage::Link {
                token,
                src_key: src,
                dst_key: dst,
            }
        } else {
            RuleMessage::Unlink {
                token: Some(token),
                src_key: src,
                dst_key: dst,
            }
        };
        self.send_when_acknowledged(to, Message::Rule(message), gate);
        true
    }

    /// Answers a deferred part with the error of `e` (a refusal may rest on state not yet
    /// durable: it waits like a read). Returns true.
    fn refuse_part(&mut self, from: ShardId, reply_to: ReplyTo, e: &SeriesError) -> bool {
        let result = match e {
            SeriesError::Refused(text) => encoded_error(text),
            other => OpResult::Err(error_text(other)),
        };
        let gate = self.store.last_seq();
        self.answer_part(from, reply_to, result, gate);
        true
    }

    /// Handles a message about a rule across shards from shard `from`.
    pub(super) fn handle_rule_message(&mut self, from: ShardId, message: RuleMessage) {
        let refusal = self.poisoned.clone();
        match message {
            RuleMessage::Link {
                token,
                src_key,
                dst_key,
            } => {
                let (error, gate) = match refusal {
                    Some(reason) => (Some(reason), SeqNo(0)),
                    None => {
                        match rules::link_destination(
                            &mut self.store,
                            &mut self.series,
                            &src_key,
                            &dst_key,
                        ) {
                            Ok(seq) => (None, seq),
                            Err(e) => (Some(error_text(&e)), self.store.last_seq()),
                        }
                    }
                };
                let answer = Message::Rule(RuleMessage::Linked { token, error });
                self.send_when_acknowledged(from, answer, gate);
            }
            // Held: as if this shard crashed before the answer arrived.
            RuleMessage::Linked { .. } if crate::fault::rule_linked_ignored(self.id.0) => {}
            RuleMessage::Linked { token, error } => self.linked(token, error),
            RuleMessage::Unlink {
                token,
                src_key,
                dst_key,
            } => {
                let (error, gate) = match refusal {
                    Some(reason) => (Some(reason), SeqNo(0)),
                    None => {
                        let store = &mut self.store;
                        match rules::unlink_destination(store, &mut self.series, &src_key, &dst_key)
                        {
                            Ok(seq) => (None, seq),
                            Err(e) => (Some(error_text(&e)), self.store.last_seq()),
                        }
                    }
                };
                if let Some(token) = token {
                    let answer = Message::Rule(RuleMessage::Unlinked { token, error });
                    self.send_when_acknowledged(from, answer, gate);
                }
            }
            RuleMessage::Unlinked { token, error } => {
                if let Some(Waiting::Delete {
                    from,
                    reply_to,
                    gate,
                }) = self.rule_links.waiting.remove(&token)
                {
                    let result = error.map_or_else(encoded_ok, |text| encoded_error(&text));
                    self.answer_part(from, reply_to, result, gate);
                }
            }
            RuleMessage::Forget(unlink) => {
                let (done, gate) = match refusal {
                    Some(_) => (false, SeqNo(0)),
                    None => {
                        match handover::apply_unlink(&mut self.store, &mut self.series, &unlink) {
                            Ok(seq) => (true, seq),
                            Err(e) => {
                                tracing::error!(shard = self.id.0, "unlinking a rule: {e}");
                                (false, SeqNo(0))
                            }
                        }
                    }
                };
                let answer = Message::Rule(RuleMessage::Forgotten { unlink, done });
                self.send_when_acknowledged(from, answer, gate);
            }
            RuleMessage::Forgotten { unlink, done } => {
                if done && self.poisoned.is_none() {
                    handover::finish_unlink(&mut self.store, &unlink);
                }
            }
            RuleMessage::Bucket {
                pending,
                src_key,
                value,
            } => self.store_remote_bucket(from, pending, &src_key, value),
            RuleMessage::Latest {
                src_key,
                dst_key,
                open,
            } => {
                self.series.remote_latest.insert(dst_key, (src_key, open));
            }
            RuleMessage::BucketStored { pending, stored } => {
                self.bucket_stored(from, pending, stored);
            }
        }
    }

    /// The destination's shard answered `TS.CREATERULE`'s second round: adds the rule to
    /// the source (checked again) and answers the client.
    fn linked(&mut self, token: u64, error: Option<String>) {
        let Some(Waiting::Create {
            from,
            reply_to,
            request,
        }) = self.rule_links.waiting.remove(&token)
        else {
            return;
        };
        let intent = intent_of(&request);
        if let Some(text) = error {
            if self.poisoned.is_none() {
                handover::finish_unlink(&mut self.store, &intent);
            }
            let gate = self.store.last_seq();
            self.answer_part(from, reply_to, encoded_error(&text), gate);
            return;
        }
        let added = match &self.poisoned {
            Some(reason) => Err(SeriesError::Refused(reason.clone())),
            None => rules::add_rule(&mut self.store, &mut self.series, &request),
        };
        match added {
            Ok(seq) => {
                // In the rule's WAL batch: from now on the rule holds, unlinked by deletes.
                let seq = seq.max(handover::finish_unlink(&mut self.store, &intent));
                self.answer_part(from, reply_to, encoded_ok(), seq);
            }
            Err(e) => {
                // The source changed meanwhile: the destination lets go of it again.
                self.send_unlink(intent);
                self.refuse_part(from, reply_to, &e);
            }
        }
    }

    /// Stores a bucket sent by the source's shard `from` and answers once it is durable.
    fn store_remote_bucket(
        &mut self,
        from: ShardId,
        pending: PendingBucket,
        src_key: &[u8],
        value: Option<f64>,
    ) {
        let stored = match self.poisoned {
            Some(_) => Err(None),
            None => handover::store_bucket(
                &mut self.store,
                &mut self.series,
                src_key,
                &pending.dst_key,
                pending.bucket_start_ms,
                value,
            )
            .map_err(Some),
        };
        let (stored, gate) = match stored {
            Ok(seq) => (true, seq),
            // The destination refuses it (a retention, say): nothing more to do with it.
            Err(Some(SeriesError::Refused(_))) => (true, self.store.last_seq()),
            Err(Some(e)) => {
                tracing::error!(shard = self.id.0, "storing a compacted bucket: {e}");
                (false, SeqNo(0))
            }
            Err(None) => (false, SeqNo(0)),
        };
        let answer = Message::Rule(RuleMessage::BucketStored { pending, stored });
        self.send_when_acknowledged(from, answer, gate);
    }

    /// Shard `from` answered a bucket: its pending entry goes, or it is sent again if it
    /// changed meanwhile.
    fn bucket_stored(&mut self, from: ShardId, pending: PendingBucket, stored: bool) {
        let links = &mut self.rule_links;
        links.in_flight_to[from.0] = links.in_flight_to[from.0].saturating_sub(1);
        let Some(state) = links.buckets.get_mut(&pending) else {
            return;
        };
        match (stored, state.phase) {
            (true, Phase::InFlight { stale: true }) => {
                state.phase = Phase::Queued;
                links.queued.push_back(pending);
            }
            (true, _) => {
                links.buckets.remove(&pending);
                if self.poisoned.is_none() {
                    handover::finish(&mut self.store, &pending);
                }
            }
            (false, _) => state.phase = Phase::Parked,
        }
    }

    /// Takes the rule notices of the requests that ran, and sends the queued buckets whose
    /// samples are acknowledged, within each peer's window. Runs every loop iteration.
    pub(super) fn pump_rules(&mut self) {
        if self.shards == 1 {
            return;
        }
        if !self.rule_links.recovered {
            self.rule_links.recovered = true;
            match handover::scan_pending(&self.store) {
                Ok(found) => {
                    for (pending, src_key) in found {
                        self.rule_links.dirty(pending, src_key, SeqNo(0));
                    }
                }
                Err(e) => tracing::error!(shard = self.id.0, "reading pending buckets: {e}"),
            }
            match handover::scan_unlinks(&self.store) {
                Ok(found) => found.into_iter().for_each(|u| self.send_unlink(u)),
                Err(e) => tracing::error!(shard = self.id.0, "reading pending unlinks: {e}"),
            }
        }
        for notice in std::mem::take(&mut self.series.notices) {
            match notice {
                RuleNotice::Bucket {
                    pending,
                    src_key,
                    seq,
                } => self.rule_links.dirty(pending, src_key, seq),
                RuleNotice::Unlink(unlink) => self.send_unlink(unlink),
                RuleNotice::Latest {
                    src_key,
                    dst_key,
                    seq,
                } => self.rule_links.latest.changed(src_key, dst_key, seq),
            }
        }
        self.compute_latest();
        let held = crate::fault::rule_handover_held(self.id.0);
        if self.poisoned.is_none() && !self.draining && !held {
            self.send_buckets();
            self.send_latest();
        }
    }

    /// Sends `unlink` to the shard of the series that lets go, once everything written so
    /// far here (the deletion that caused it) is acknowledged: the other side must not
    /// let go of a rule whose deletion a crash could still take back.
    fn send_unlink(&mut self, unlink: handover::PendingUnlink) {
        if crate::fault::rule_handover_held(self.id.0) {
            return;
        }
        let to = self.series.route.owner(unlink.applies_to());
        let gate = self.store.last_seq();
        self.send_when_acknowledged(to, Message::Rule(RuleMessage::Forget(unlink)), gate);
    }

    /// Whether [`Shard::pump_rules`] has something to do now: the pending entries of a
    /// start not read yet, or a queued bucket it may send. The loop must not sleep then.
    pub(super) fn rules_have_work(&self) -> bool {
        let links = &self.rule_links;
        if self.shards == 1 || self.poisoned.is_some() || self.draining {
            return false;
        }
        if !links.recovered {
            return true;
        }
        if crate::fault::rule_handover_held(self.id.0) {
            return false;
        }
        let ack = self.ack_seq();
        if links.latest.is_due(ack) {
            return true;
        }
        let window = self.config().shard_queue_len.max(1);
        links.queued.front().is_some_and(|pending| {
            let to = self.series.route.owner(&pending.dst_key);
            links.buckets[pending].gate <= ack && links.in_flight_to[to.0] < window
        })
    }

    fn send_buckets(&mut self) {
        let ack = self.ack_seq();
        let window = self.config().shard_queue_len.max(1);
        while let Some(pending) = self.rule_links.queued.front() {
            let state = &self.rule_links.buckets[pending];
            let to = self.series.route.owner(&pending.dst_key);
            if state.gate > ack || self.rule_links.in_flight_to[to.0] >= window {
                break;
            }
            let pending = self.rule_links.queued.pop_front().expect("front exists");
            let src_key = self.rule_links.buckets[&pending].src_key.clone();
            match handover::bucket_of(&self.store, &mut self.series, &pending, &src_key) {
                Ok(Some(value)) => {
                    let state = self.rule_links.buckets.get_mut(&pending).expect("queued");
                    state.phase = Phase::InFlight { stale: false };
                    self.rule_links.in_flight_to[to.0] += 1;
                    let message = RuleMessage::Bucket {
                        pending,
                        src_key,
                        value,
                    };
                    self.outbox[to.0].push_back(Message::Rule(message));
                }
                Ok(None) => {
                    // The rule is gone: nothing to hand over.
                    self.rule_links.buckets.remove(&pending);
                    handover::finish(&mut self.store, &pending);
                }
                Err(e) => {
                    tracing::error!(shard = self.id.0, "recomputing a compacted bucket: {e}");
                    let state = self.rule_links.buckets.get_mut(&pending).expect("queued");
                    state.phase = Phase::Parked;
                }
            }
        }
    }
}
