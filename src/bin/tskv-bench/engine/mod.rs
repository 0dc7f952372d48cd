//! The client threads. Each runs its own epoll loop over its share of the non-blocking
//! connections, encodes requests, parses replies incrementally, checks every reply and
//! records latencies per command into per-interval histograms it hands to the main thread
//! once a second.
//!
//! * Closed loop: every connection keeps `pipeline` requests outstanding; latency is reply
//!   time − send time.
//! * Open loop: the total rate is split evenly over all connections. Each connection has its
//!   own schedule of intended send times, evenly spaced and phase-shifted by its index so
//!   the aggregate is smooth (or exponential gaps for `--poisson`). A request is sent at its
//!   intended time if its connection has a free pipeline slot; otherwise it waits, is sent
//!   as soon as a slot frees and counts as `behind_schedule`. Latency is recorded twice:
//!   from the intended time (corrected for coordinated omission) and from the actual send.
//!
//! A request is measured if its intended send time (closed loop: its send time) lies after
//! the warm-up and, with `--duration`, before the end. After the last request is issued the
//! thread waits for outstanding replies, at most [`limits::DRAIN_TIMEOUT_NS`]; whatever is
//! still missing then is reported as lost or unsent, never dropped silently.
//!
//! Who owns what: [`pool`] the threads and their connections across phases; [`conn`] one
//! connection's socket, buffers and pipeline window; [`schedule`] when a request may be
//! issued (open-loop send times, warm-up, window, quota); [`recorder`] the interval's
//! statistics; this file the event loop ([`Worker`]) that drives them; [`error`] why a
//! thread stops.

mod conn;
mod error;
mod pool;
mod recorder;
mod schedule;

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;

use self::conn::{Conn, InFlight};
use self::error::EngineError;
use self::recorder::Recorder;
use self::schedule::{Issuer, Schedule};
use crate::keydist::fnv1a_64;
use crate::limits;
use crate::resp_client::parse_reply;
use crate::stats::{ThreadSummary, WorkerMessage};
use crate::sys::{self, Epoll, Interest};
use crate::workload::{Command, Outcome, Workload, WorkloadConfig};

pub use self::pool::{ClientPool, ConnectionPlan, ThreadPlan};
pub use self::schedule::OpenLoop;

/// What every client thread needs to know about the run.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Most requests outstanding per connection.
    pub pipeline: usize,
    /// Closed loop: refill a connection only once all its requests were answered
    /// (redis-benchmark's pipelining), instead of slot by slot.
    pub pipeline_batch: bool,
    /// `None`: closed loop.
    pub open_loop: Option<OpenLoop>,
    /// Warm-up length from the start of the run.
    pub warmup_ns: u64,
    /// Measured length after warm-up; `None` when a request count ends the run.
    pub duration_ns: Option<u64>,
    /// Connections over all threads.
    pub clients_total: usize,
    /// Client threads.
    pub threads: usize,
    /// Base seed; thread i uses seed + i.
    pub seed: u64,
    /// The request mix.
    pub workload: WorkloadConfig,
    /// Set on SIGINT: stop issuing, wait for the outstanding replies, and finish normally.
    pub interrupted: Arc<AtomicBool>,
}

/// One client thread's state.
struct Worker {
    base: Instant,
    stop: Arc<AtomicBool>,
    interrupted: Arc<AtomicBool>,
    cpu: Option<usize>,
    epoll: Epoll,
    conns: Vec<Conn>,
    issuer: Issuer,
    rec: Recorder,
    schedule_rng: SmallRng,
    open_loop: bool,
    issuing_over_at_ns: Option<u64>,
    /// (ns since start, thread CPU time) when the measured window began.
    window_start: Option<(u64, Duration)>,
    lost: u64,
    unsent: u64,
}

impl Worker {
    fn new(
        config: &EngineConfig,
        plan: &ThreadPlan,
        mut conns: Vec<Conn>,
        base: Instant,
        tx: Sender<WorkerMessage>,
        stop: Arc<AtomicBool>,
    ) -> Result<Worker, EngineError> {
        let io = |source| EngineError::Io { addr: None, source };
        let epoll = Epoll::new(limits::EPOLL_EVENTS_MAX).map_err(io)?;
        let thread_seed = config.seed.wrapping_add(plan.thread_index as u64);
        // A separate stream for send times, so the request sequence does not depend on them.
        let mut schedule_rng = SmallRng::seed_from_u64(fnv1a_64(thread_seed) ^ 0x5c4e_d01e);
        for (token, (conn, conn_plan)) in conns.iter_mut().zip(&plan.connections).enumerate() {
            conn.schedule = Schedule::new(config, conn_plan.global_index, &mut schedule_rng);
            epoll
                .add(conn.stream.as_raw_fd(), token as u64, Interest::Read)
                .map_err(io)?;
        }
        Ok(Worker {
            base,
            stop,
            interrupted: Arc::clone(&config.interrupted),
            cpu: plan.cpu,
            epoll,
            conns,
            issuer: Issuer {
                workload: Workload::new(
                    &config.workload,
                    config.seed,
                    plan.thread_index,
                    config.threads,
                ),
                pipeline: config.pipeline,
                pipeline_batch: config.pipeline_batch,
                warmup_end_ns: config.warmup_ns,
                issue_end_ns: config.duration_ns.map(|d| config.warmup_ns + d),
                quota_left: plan.quota,
                interrupted: false,
            },
            rec: Recorder::new(
                plan.thread_index,
                config.warmup_ns,
                config.open_loop.is_some(),
                tx,
            ),
            schedule_rng,
            open_loop: config.open_loop.is_some(),
            issuing_over_at_ns: None,
            window_start: None,
            lost: 0,
            unsent: 0,
        })
    }

    /// Nanoseconds since the run's start; also closes finished intervals and opens the
    /// measured window, so every caller sees statistics in the right interval.
    fn now(&mut self) -> u64 {
        let now_ns = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.rec.roll_until(now_ns);
        if self.window_start.is_none() && now_ns >= self.issuer.warmup_end_ns {
            self.window_start = Some((now_ns, sys::thread_cpu_time().unwrap_or_default()));
        }
        now_ns
    }

    fn run(&mut self) -> Result<(), EngineError> {
        let now_ns = self.now();
        if !self.open_loop {
            for c in 0..self.conns.len() {
                self.fill_closed(c, now_ns)?;
            }
        }
        let mut checked_interval = self.rec.index;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err(EngineError::Stopped);
            }
            let now_ns = self.now();
            if !self.issuer.interrupted && self.interrupted.load(Ordering::Relaxed) {
                // Drain from now: the drain deadline counts from the end of issuing.
                self.issuer.interrupted = true;
                self.issuer.issue_end_ns = Some(now_ns);
            }
            if self.open_loop {
                for c in 0..self.conns.len() {
                    self.pump_open(c, now_ns)?;
                }
            }
            if self.rec.index != checked_interval {
                checked_interval = self.rec.index;
                self.check_reply_timeout(now_ns)?;
            }
            if self.issuing_over(now_ns) {
                self.issuing_over_at_ns.get_or_insert(now_ns);
                if self.all_answered() {
                    return Ok(());
                }
            }
            if self.drain_deadline_ns().is_some_and(|d| now_ns >= d) {
                self.count_abandoned();
                return Ok(());
            }
            let wait_ns = self.next_deadline_ns().saturating_sub(now_ns);
            let timeout = if wait_ns < limits::SPIN_THRESHOLD_NS {
                Duration::ZERO
            } else {
                Duration::from_nanos(wait_ns)
            };
            let ready = self
                .epoll
                .wait(Some(timeout))
                .map_err(|source| EngineError::Io { addr: None, source })?;
            for i in 0..ready {
                let event = self.epoll.event(i);
                let c = usize::try_from(event.token).expect("token is a connection index");
                if event.writable {
                    self.flush(c)?;
                }
                if event.readable {
                    self.on_readable(c)?;
                    if !self.open_loop {
                        let now_ns = self.now();
                        self.fill_closed(c, now_ns)?;
                    }
                }
            }
        }
    }

    /// Closed loop: tops connection `c` up to `pipeline` outstanding requests.
    fn fill_closed(&mut self, c: usize, now_ns: u64) -> Result<(), EngineError> {
        let Worker {
            conns, issuer, rec, ..
        } = self;
        let conn = &mut conns[c];
        let before = conn.inflight.len();
        if issuer.pipeline_batch && before > 0 {
            return Ok(());
        }
        while conn.inflight.len() < issuer.pipeline && issuer.may_issue(now_ns) {
            issuer.issue(conn, rec, now_ns, now_ns, false);
        }
        if conn.inflight.len() > before {
            self.flush(c)?;
        }
        Ok(())
    }

    /// Open loop: sends every request of connection `c` that is due, as far as the
    /// pipeline allows.
    fn pump_open(&mut self, c: usize, now_ns: u64) -> Result<(), EngineError> {
        let Worker {
            conns,
            issuer,
            rec,
            schedule_rng,
            ..
        } = self;
        let conn = &mut conns[c];
        let before = conn.inflight.len();
        while !conn.schedule_done {
            let intended_ns = conn.schedule.next_ns();
            if !issuer.may_issue(intended_ns) {
                conn.schedule_done = true;
                break;
            }
            if intended_ns > now_ns {
                conn.stalled = false;
                break;
            }
            if conn.inflight.len() >= issuer.pipeline {
                conn.stalled = true;
                break;
            }
            let behind = conn.stalled;
            issuer.issue(conn, rec, intended_ns, now_ns, behind);
            conn.schedule.advance(schedule_rng);
        }
        if conn.inflight.len() > before {
            self.flush(c)?;
        }
        Ok(())
    }

    /// Writes what connection `c` has pending, see [`Conn::flush`].
    fn flush(&mut self, c: usize) -> Result<(), EngineError> {
        self.conns[c].flush(&self.epoll, c)
    }

    /// Reads what connection `c` has received and handles every complete reply.
    fn on_readable(&mut self, c: usize) -> Result<(), EngineError> {
        while let Some(drained) = self.conns[c].receive()? {
            let now_ns = self.now();
            if self.take_replies(c, now_ns)? {
                self.flush(c)?;
            }
            if drained {
                break;
            }
        }
        Ok(())
    }

    /// Handles every complete reply of connection `c`; returns whether it queued requests
    /// (the SETs of read-modify-writes) that need a flush.
    fn take_replies(&mut self, c: usize, now_ns: u64) -> Result<bool, EngineError> {
        let Worker {
            conns, rec, issuer, ..
        } = self;
        let conn = &mut conns[c];
        let mut replies = 0usize;
        let mut queued = false;
        loop {
            // The fields, not a method, so `reply` borrows only the read buffer.
            let unparsed = &conn.inbuf[conn.in_start..conn.in_end];
            let parsed = parse_reply(unparsed).map_err(|source| EngineError::Protocol {
                addr: conn.addr,
                source,
            })?;
            let Some((reply, used)) = parsed else {
                break;
            };
            let request = conn
                .inflight
                .pop_front()
                .ok_or(EngineError::Unsolicited(conn.addr))?;
            if request.rmw_read {
                let outcome = Command::Get.judge(&reply);
                if outcome == Outcome::Ok {
                    issuer.workload.encode_set(&request.request, &mut conn.out);
                    conn.inflight.push_back(InFlight {
                        rmw_read: false,
                        ..request
                    });
                    queued = true;
                } else {
                    rec.on_reply(&request, outcome, now_ns);
                }
            } else {
                rec.on_reply(&request, request.request.command.judge(&reply), now_ns);
            }
            conn.consume(used);
            replies += 1;
        }
        if replies > 0 {
            conn.last_reply_ns = now_ns;
        }
        Ok(queued)
    }

    fn issuing_over(&self, now_ns: u64) -> bool {
        if self.open_loop {
            self.conns.iter().all(|c| c.schedule_done)
        } else {
            !self.issuer.may_issue(now_ns)
        }
    }

    fn all_answered(&self) -> bool {
        self.conns
            .iter()
            .all(|c| c.inflight.is_empty() && c.out.is_empty())
    }

    fn drain_deadline_ns(&self) -> Option<u64> {
        let issuing_end = self.issuer.issue_end_ns.or(self.issuing_over_at_ns)?;
        Some(issuing_end + limits::DRAIN_TIMEOUT_NS)
    }

    fn next_deadline_ns(&self) -> u64 {
        let mut deadline = self.rec.end_ns;
        if let Some(drain) = self.drain_deadline_ns() {
            deadline = deadline.min(drain);
        }
        if self.open_loop {
            for conn in &self.conns {
                if !conn.schedule_done && conn.inflight.len() < self.issuer.pipeline {
                    deadline = deadline.min(conn.schedule.next_ns());
                }
            }
        }
        deadline
    }

    fn check_reply_timeout(&self, now_ns: u64) -> Result<(), EngineError> {
        for conn in &self.conns {
            if let Some(oldest) = conn.inflight.front() {
                let since_ns = oldest.sent_ns.max(conn.last_reply_ns);
                if now_ns.saturating_sub(since_ns) > limits::REPLY_TIMEOUT_NS {
                    return Err(EngineError::ReplyTimeout(conn.addr));
                }
            }
        }
        Ok(())
    }

    /// At the drain deadline: counts requests sent but unanswered, and scheduled requests
    /// never sent.
    fn count_abandoned(&mut self) {
        self.lost = self.conns.iter().map(|c| c.inflight.len() as u64).sum();
        if let Some(quota) = self.issuer.quota_left {
            self.unsent = quota;
            return;
        }
        if !self.open_loop {
            return;
        }
        let Worker {
            conns,
            issuer,
            schedule_rng,
            unsent,
            ..
        } = self;
        for conn in conns.iter_mut().filter(|c| !c.schedule_done) {
            while issuer.may_issue(conn.schedule.next_ns()) {
                *unsent += 1;
                conn.schedule.advance(schedule_rng);
            }
        }
    }

    /// Ends the phase: the last interval, the summary, and the connections that can serve
    /// the next phase (not after an error, nor with requests left unanswered).
    fn finish(mut self, error: Option<EngineError>) -> (ThreadSummary, Vec<Option<Conn>>) {
        let now_ns = self.now();
        self.rec.emit(now_ns);
        let (window_ns, cpu_ns) = match self.window_start {
            Some((start_ns, cpu_start)) => {
                let cpu_now = sys::thread_cpu_time().unwrap_or_default();
                let cpu = cpu_now.saturating_sub(cpu_start);
                (
                    now_ns.saturating_sub(start_ns),
                    u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX),
                )
            }
            None => (0, 0),
        };
        let clean = error.is_none();
        let conns = std::mem::take(&mut self.conns)
            .into_iter()
            .map(|c| (clean && c.inflight.is_empty() && c.out.is_empty()).then_some(c))
            .collect();
        let summary = ThreadSummary {
            thread_index: self.rec.thread_index,
            cpu: self.cpu,
            last_interval: self.rec.index,
            cpu_ns,
            window_ns,
            last_measured_reply_ns: self.rec.last_measured_reply_ns,
            lost: self.lost,
            unsent: self.unsent,
            error: error.map(|e| e.to_string()),
        };
        (summary, conns)
    }
}
