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

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Exp};

use crate::keydist::fnv1a_64;
use crate::limits;
use crate::resp_client::{parse_reply, ProtocolError};
use crate::stats::{IntervalClock, IntervalReport, PerCommand, ThreadSummary, WorkerMessage};
use crate::sys::{self, Epoll, Interest};
use crate::workload::{Command, Outcome, Request, Workload, WorkloadConfig};

/// Open-loop parameters.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoop {
    /// Total intended requests per second over all connections.
    pub rate_per_s: f64,
    /// Exponential gaps instead of even spacing.
    pub poisson: bool,
}

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

/// One connection to open.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionPlan {
    /// Index over all threads' connections (sets the open-loop phase).
    pub global_index: usize,
    /// Server to connect to.
    pub addr: SocketAddr,
}

/// One client thread's share of the run.
#[derive(Debug, Clone)]
pub struct ThreadPlan {
    /// Thread index (seeds its generators).
    pub thread_index: usize,
    /// CPU to pin the thread to.
    pub cpu: Option<usize>,
    /// Its connections.
    pub connections: Vec<ConnectionPlan>,
    /// Measured requests this thread issues, with `--requests`.
    pub quota: Option<u64>,
}

/// What a client thread needs to run one phase (setup, measured run or ramp step).
#[derive(Debug, Clone)]
pub struct PhaseStart {
    /// The phase's shape.
    pub config: Arc<EngineConfig>,
    /// The phase's time origin, shared by every thread.
    pub base: Instant,
    /// Measured requests this thread issues in the phase, if the phase is counted.
    pub quota: Option<u64>,
}

/// Starts a client thread. It pins itself, connects, sends [`WorkerMessage::Ready`] (or
/// `Failed`), then runs one phase per [`PhaseStart`] received on `start` over the same
/// connections, until `start` says `None` or closes. Each phase sends one
/// [`WorkerMessage::Interval`] per interval and finally [`WorkerMessage::Done`]. A
/// connection that a phase leaves with requests unanswered (or ends with an error) is
/// opened anew before the next phase, so no late reply is taken for a new request.
///
/// # Errors
/// The OS error if the thread cannot be spawned.
pub fn spawn_thread(
    plan: ThreadPlan,
    tx: Sender<WorkerMessage>,
    start: Receiver<Option<PhaseStart>>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(format!("bench-{}", plan.thread_index))
        .spawn(move || run_thread(plan, &tx, &start, &stop))
}

fn run_thread(
    mut plan: ThreadPlan,
    tx: &Sender<WorkerMessage>,
    start: &Receiver<Option<PhaseStart>>,
    stop: &Arc<AtomicBool>,
) {
    let index = plan.thread_index;
    let mut conns: Vec<Option<Conn>> = match prepare(&plan) {
        Ok(conns) => conns.into_iter().map(Some).collect(),
        Err(message) => {
            let _ = tx.send(WorkerMessage::Failed(index, message));
            return;
        }
    };
    let _ = tx.send(WorkerMessage::Ready);
    while let Ok(Some(phase)) = start.recv() {
        plan.quota = phase.quota;
        let failed = |error: String| ThreadSummary {
            thread_index: index,
            cpu: plan.cpu,
            error: Some(error),
            ..ThreadSummary::default()
        };
        let reopened: Result<Vec<Conn>, String> = conns
            .iter_mut()
            .zip(&plan.connections)
            .map(|(conn, conn_plan)| match conn.take() {
                Some(conn) => Ok(conn),
                None => Conn::connect(conn_plan)
                    .map_err(|e| format!("cannot reconnect to {}: {e}", conn_plan.addr)),
            })
            .collect();
        let summary = match reopened {
            Err(message) => failed(message),
            Ok(open) => {
                // A panic must still end the phase with a Done, or the main thread would
                // wait for it forever while the other threads wait for the next phase.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_phase(&phase, &plan, open, tx, stop)
                }));
                match ran {
                    Ok((summary, kept)) => {
                        conns = kept;
                        summary
                    }
                    Err(_) => failed("client thread panicked".into()),
                }
            }
        };
        let _ = tx.send(WorkerMessage::Done(summary));
    }
}

/// Runs one phase over `conns`; returns its summary and the connections fit for the next
/// phase (`None`: to be opened anew).
fn run_phase(
    phase: &PhaseStart,
    plan: &ThreadPlan,
    mut conns: Vec<Conn>,
    tx: &Sender<WorkerMessage>,
    stop: &Arc<AtomicBool>,
) -> (ThreadSummary, Vec<Option<Conn>>) {
    for conn in &mut conns {
        conn.reset();
    }
    let config = &phase.config;
    match Worker::new(
        config,
        plan,
        conns,
        phase.base,
        tx.clone(),
        Arc::clone(stop),
    ) {
        Ok(mut worker) => {
            let result = worker.run();
            worker.finish(result.err())
        }
        Err(e) => (
            ThreadSummary {
                thread_index: plan.thread_index,
                cpu: plan.cpu,
                error: Some(e.to_string()),
                ..ThreadSummary::default()
            },
            plan.connections.iter().map(|_| None).collect(),
        ),
    }
}

/// The client threads of a run with their connections, from the first phase to the last.
pub struct ClientPool {
    starts: Vec<Sender<Option<PhaseStart>>>,
    handles: Vec<JoinHandle<()>>,
    messages: Receiver<WorkerMessage>,
    stop: Arc<AtomicBool>,
}

impl ClientPool {
    /// Spawns one thread per plan and waits until each has pinned itself and connected.
    ///
    /// # Errors
    /// Every thread that could not start, in one sentence; the others are ended.
    pub fn connect(plans: Vec<ThreadPlan>) -> Result<ClientPool, String> {
        let threads = plans.len();
        let (tx, messages) = std::sync::mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut pool = ClientPool {
            starts: Vec::new(),
            handles: Vec::new(),
            messages,
            stop,
        };
        for plan in plans {
            let (start_tx, start_rx) = std::sync::mpsc::channel();
            pool.starts.push(start_tx);
            let handle = spawn_thread(plan, tx.clone(), start_rx, Arc::clone(&pool.stop))
                .map_err(|e| format!("cannot spawn a client thread: {e}"))?;
            pool.handles.push(handle);
        }
        drop(tx);
        let failures = pool.wait_until_connected(threads);
        if failures.is_empty() {
            Ok(pool)
        } else {
            Err(failures.join("; "))
        }
    }

    /// Waits for every thread's Ready or Failed and returns the failures.
    fn wait_until_connected(&self, threads: usize) -> Vec<String> {
        let mut failures = Vec::new();
        let mut answered = 0;
        while answered < threads {
            match self.messages.recv() {
                Ok(WorkerMessage::Ready) => answered += 1,
                Ok(WorkerMessage::Failed(thread, message)) => {
                    answered += 1;
                    failures.push(format!("client thread {thread}: {message}"));
                }
                Ok(_) => {}
                Err(_) => {
                    failures.push("a client thread ended before connecting".into());
                    break;
                }
            }
        }
        failures
    }

    /// Starts a phase on every thread, thread i with `quotas[i]`; returns its time origin
    /// and the wall-clock time of it.
    pub fn start_phase(
        &self,
        config: &Arc<EngineConfig>,
        quotas: &[Option<u64>],
    ) -> (Instant, std::time::SystemTime) {
        self.stop.store(false, Ordering::Relaxed);
        let base = Instant::now();
        let wall = std::time::SystemTime::now();
        for (start, &quota) in self.starts.iter().zip(quotas) {
            let phase = PhaseStart {
                config: Arc::clone(config),
                base,
                quota,
            };
            // A thread that is gone shows as a missing Done in the phase's collection.
            let _ = start.send(Some(phase));
        }
        (base, wall)
    }

    /// The threads' messages of the running phase.
    pub fn messages(&self) -> &Receiver<WorkerMessage> {
        &self.messages
    }

    /// Set to end the running phase early on every thread (one failed).
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }
}

impl Drop for ClientPool {
    fn drop(&mut self) {
        // A phase still running (the run ended on an error) stops rather than runs out.
        self.stop.store(true, Ordering::Relaxed);
        for start in &self.starts {
            let _ = start.send(None);
        }
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// Pins the thread and opens its connections.
fn prepare(plan: &ThreadPlan) -> Result<Vec<Conn>, String> {
    if let Some(cpu) = plan.cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            return Err(format!(
                "cannot pin client thread {} to CPU {cpu}",
                plan.thread_index
            ));
        }
    }
    // Not fatal: only makes short open-loop waits less precise.
    let _ = sys::set_timer_slack_ns(1_000);
    plan.connections
        .iter()
        .map(|c| Conn::connect(c).map_err(|e| format!("cannot connect to {}: {e}", c.addr)))
        .collect()
}

/// Why a client thread stopped early.
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineError {
    /// A socket or epoll call failed.
    Io {
        /// The connection's server, if the error is about one.
        addr: Option<SocketAddr>,
        /// The OS error.
        source: io::Error,
    },
    /// The server sent bytes that are not RESP.
    Protocol {
        /// The connection's server.
        addr: SocketAddr,
        /// What was wrong.
        source: ProtocolError,
    },
    /// The server closed the connection.
    Closed(SocketAddr),
    /// A reply arrived with no request outstanding.
    Unsolicited(SocketAddr),
    /// Requests were outstanding with no reply for [`limits::REPLY_TIMEOUT_NS`].
    ReplyTimeout(SocketAddr),
    /// The main thread asked every thread to stop (another one failed).
    Stopped,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Io {
                addr: Some(addr),
                source,
            } => write!(f, "I/O error on connection to {addr}: {source}"),
            EngineError::Io { addr: None, source } => write!(f, "I/O error: {source}"),
            EngineError::Protocol { addr, source } => {
                write!(f, "protocol error from {addr}: {source}")
            }
            EngineError::Closed(addr) => write!(f, "{addr} closed the connection"),
            EngineError::Unsolicited(addr) => {
                write!(f, "{addr} sent a reply with no request outstanding")
            }
            EngineError::ReplyTimeout(addr) => write!(
                f,
                "no reply from {addr} for {} s with requests outstanding",
                limits::REPLY_TIMEOUT_NS / 1_000_000_000
            ),
            EngineError::Stopped => f.write_str("stopped because another client thread failed"),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::Io { source, .. } => Some(source),
            EngineError::Protocol { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_error(addr: SocketAddr) -> impl FnOnce(io::Error) -> EngineError {
    move |source| EngineError::Io {
        addr: Some(addr),
        source,
    }
}

/// A request awaiting its reply.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    request: Request,
    intended_ns: u64,
    sent_ns: u64,
    measured: bool,
    /// The GET of a read-modify-write: its reply triggers the SET, which keeps this entry's
    /// times, so the RMW is timed from its GET's (intended) send to its SET's reply.
    rmw_read: bool,
}

/// A connection's intended send times (open loop), ns since the run's start.
#[derive(Debug, Clone)]
enum Schedule {
    Closed,
    Even {
        phase_ns: f64,
        period_ns: f64,
        issued: u64,
    },
    Poisson {
        next_ns: f64,
        gap: Exp<f64>,
    },
}

impl Schedule {
    fn new(config: &EngineConfig, global_index: usize, rng: &mut SmallRng) -> Self {
        let Some(open) = config.open_loop else {
            return Schedule::Closed;
        };
        let period_ns = config.clients_total as f64 * 1e9 / open.rate_per_s;
        if open.poisson {
            let gap = Exp::new(1.0 / period_ns).expect("positive rate");
            Schedule::Poisson {
                next_ns: gap.sample(rng),
                gap,
            }
        } else {
            Schedule::Even {
                phase_ns: period_ns * global_index as f64 / config.clients_total as f64,
                period_ns,
                issued: 0,
            }
        }
    }

    fn next_ns(&self) -> u64 {
        match self {
            Schedule::Closed => 0,
            Schedule::Even {
                phase_ns,
                period_ns,
                issued,
            } => (phase_ns + *issued as f64 * period_ns) as u64,
            Schedule::Poisson { next_ns, .. } => *next_ns as u64,
        }
    }

    fn advance(&mut self, rng: &mut SmallRng) {
        match self {
            Schedule::Closed => {}
            Schedule::Even { issued, .. } => *issued += 1,
            Schedule::Poisson { next_ns, gap } => *next_ns += gap.sample(rng),
        }
    }
}

/// One non-blocking connection and its buffers.
struct Conn {
    addr: SocketAddr,
    stream: TcpStream,
    /// Encoded requests not yet written, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    /// Received bytes not yet parsed: `inbuf[in_start..in_end]`.
    inbuf: Vec<u8>,
    in_start: usize,
    in_end: usize,
    inflight: VecDeque<InFlight>,
    interest: Interest,
    schedule: Schedule,
    /// Open loop: a request came due while the pipeline was full, and the connection has
    /// not caught up with its schedule since.
    stalled: bool,
    /// Open loop: no further request of its schedule will be issued.
    schedule_done: bool,
    last_reply_ns: u64,
}

impl Conn {
    fn connect(plan: &ConnectionPlan) -> io::Result<Conn> {
        let timeout = Duration::from_millis(limits::CONNECT_TIMEOUT_MS);
        let stream = TcpStream::connect_timeout(&plan.addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        Ok(Conn {
            addr: plan.addr,
            stream,
            out: Vec::new(),
            out_pos: 0,
            inbuf: vec![0; limits::READ_CHUNK_BYTES],
            in_start: 0,
            in_end: 0,
            inflight: VecDeque::new(),
            interest: Interest::Read,
            schedule: Schedule::Closed,
            stalled: false,
            schedule_done: false,
            last_reply_ns: 0,
        })
    }

    /// Readies a connection that the previous phase left clean for the next phase.
    fn reset(&mut self) {
        debug_assert!(self.inflight.is_empty() && self.out.is_empty());
        self.out_pos = 0;
        self.in_start = 0;
        self.in_end = 0;
        self.interest = Interest::Read;
        self.schedule = Schedule::Closed;
        self.stalled = false;
        self.schedule_done = false;
        self.last_reply_ns = 0;
    }

    /// Makes room at the end of the read buffer: first by moving unparsed bytes to the
    /// front, else by growing it (a reply larger than the buffer).
    fn make_room(&mut self) {
        if self.in_start > 0 {
            self.inbuf.copy_within(self.in_start..self.in_end, 0);
            self.in_end -= self.in_start;
            self.in_start = 0;
        } else {
            let len = self.inbuf.len();
            self.inbuf.resize(len * 2, 0);
        }
    }
}

/// The current interval's statistics; sends each finished interval to the main thread.
struct Recorder {
    thread_index: usize,
    clock: IntervalClock,
    index: u32,
    end_ns: u64,
    warmup: bool,
    commands: PerCommand,
    open_loop: bool,
    last_measured_reply_ns: Option<u64>,
    tx: Sender<WorkerMessage>,
}

impl Recorder {
    /// Sends every interval that ended by `now_ns`.
    fn roll_until(&mut self, now_ns: u64) {
        while now_ns >= self.end_ns {
            self.emit(self.end_ns);
            self.index += 1;
            let (_, end_ns, warmup) = self.clock.bounds(self.index);
            self.end_ns = end_ns;
            self.warmup = warmup;
        }
    }

    fn emit(&mut self, end_ns: u64) {
        let report = IntervalReport {
            index: self.index,
            end_ns,
            commands: std::mem::take(&mut self.commands),
        };
        // The main thread only goes away after every Done, so a failed send changes nothing.
        let _ = self.tx.send(WorkerMessage::Interval(Box::new(report)));
    }

    fn on_send(&mut self, command: Command, measured: bool, behind: bool, lag_ns: u64) {
        let stats = &mut self.commands[command.index()];
        stats.sent += 1;
        if measured && self.open_loop {
            stats.send_lag.saturating_record(lag_ns);
            if behind {
                stats.behind_schedule += 1;
            }
        }
    }

    fn on_reply(&mut self, request: &InFlight, outcome: Outcome, now_ns: u64) {
        // A warm-up request answered after the warm-up belongs to no interval.
        if request.measured == self.warmup {
            return;
        }
        let stats = &mut self.commands[request.request.command.index()];
        match outcome {
            Outcome::Ok => {
                stats.ok += 1;
                stats
                    .uncorrected
                    .saturating_record(now_ns.saturating_sub(request.sent_ns));
                if self.open_loop {
                    stats
                        .corrected
                        .saturating_record(now_ns.saturating_sub(request.intended_ns));
                }
            }
            Outcome::Error => stats.errors += 1,
            Outcome::Unexpected => stats.unexpected += 1,
        }
        if request.measured {
            self.last_measured_reply_ns = Some(now_ns);
        }
    }
}

/// Decides whether a request may be issued and issues it.
struct Issuer {
    workload: Workload,
    pipeline: usize,
    pipeline_batch: bool,
    warmup_end_ns: u64,
    issue_end_ns: Option<u64>,
    quota_left: Option<u64>,
    /// SIGINT arrived: nothing more is issued, warm-up or not.
    interrupted: bool,
}

impl Issuer {
    /// Whether a request intended at `intended_ns` belongs to the run.
    fn may_issue(&self, intended_ns: u64) -> bool {
        if self.interrupted {
            return false;
        }
        if intended_ns < self.warmup_end_ns {
            return true;
        }
        self.issue_end_ns.is_none_or(|end| intended_ns < end) && self.quota_left != Some(0)
    }

    fn issue(
        &mut self,
        conn: &mut Conn,
        rec: &mut Recorder,
        intended_ns: u64,
        now_ns: u64,
        behind: bool,
    ) {
        let request = self.workload.next(&mut conn.out);
        let measured = intended_ns >= self.warmup_end_ns;
        if measured {
            if let Some(quota) = &mut self.quota_left {
                debug_assert!(*quota > 0, "issued beyond the quota");
                *quota = quota.saturating_sub(1);
            }
        }
        rec.on_send(
            request.command,
            measured,
            behind,
            now_ns.saturating_sub(intended_ns),
        );
        conn.inflight.push_back(InFlight {
            request,
            intended_ns,
            sent_ns: now_ns,
            measured,
            rmw_read: request.command == Command::Rmw,
        });
    }
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
        let clock = IntervalClock::new(config.warmup_ns);
        let (_, end_ns, warmup) = clock.bounds(0);
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
            rec: Recorder {
                thread_index: plan.thread_index,
                clock,
                index: 0,
                end_ns,
                warmup,
                commands: PerCommand::default(),
                open_loop: config.open_loop.is_some(),
                last_measured_reply_ns: None,
                tx,
            },
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

    /// Writes as much of connection `c`'s pending requests as the socket takes, and waits
    /// for writability only while something is left.
    fn flush(&mut self, c: usize) -> Result<(), EngineError> {
        let Worker { conns, epoll, .. } = self;
        let conn = &mut conns[c];
        while conn.out_pos < conn.out.len() {
            match (&conn.stream).write(&conn.out[conn.out_pos..]) {
                Ok(0) => return Err(EngineError::Closed(conn.addr)),
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(conn.addr)(e)),
            }
        }
        if conn.out_pos == conn.out.len() {
            conn.out.clear();
            conn.out_pos = 0;
        }
        let want = if conn.out.is_empty() {
            Interest::Read
        } else {
            Interest::ReadWrite
        };
        if want != conn.interest {
            epoll
                .modify(conn.stream.as_raw_fd(), c as u64, want)
                .map_err(io_error(conn.addr))?;
            conn.interest = want;
        }
        Ok(())
    }

    /// Reads what connection `c` has received and handles every complete reply.
    fn on_readable(&mut self, c: usize) -> Result<(), EngineError> {
        loop {
            let conn = &mut self.conns[c];
            if conn.in_end == conn.inbuf.len() {
                conn.make_room();
            }
            let space = conn.inbuf.len() - conn.in_end;
            let read = match (&conn.stream).read(&mut conn.inbuf[conn.in_end..]) {
                Ok(0) => return Err(EngineError::Closed(conn.addr)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(conn.addr)(e)),
            };
            conn.in_end += read;
            let now_ns = self.now();
            if self.take_replies(c, now_ns)? {
                self.flush(c)?;
            }
            // A short read drained the socket; skip the read that would say EAGAIN.
            if read < space {
                return Ok(());
            }
        }
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
            let parsed =
                parse_reply(&conn.inbuf[conn.in_start..conn.in_end]).map_err(|source| {
                    EngineError::Protocol {
                        addr: conn.addr,
                        source,
                    }
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
            conn.in_start += used;
            replies += 1;
        }
        if replies > 0 {
            conn.last_reply_ns = now_ns;
        }
        if conn.in_start == conn.in_end {
            conn.in_start = 0;
            conn.in_end = 0;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{KeyDistKind, ValueSize};
    use crate::workload::{Mix, OpWeights};

    fn config(clients_total: usize, open_loop: Option<OpenLoop>) -> EngineConfig {
        EngineConfig {
            pipeline: 1,
            pipeline_batch: false,
            open_loop,
            warmup_ns: 1_000,
            duration_ns: Some(10_000),
            clients_total,
            threads: 1,
            seed: 0,
            interrupted: Arc::new(AtomicBool::new(false)),
            workload: WorkloadConfig {
                mix: Mix::KeyValue(OpWeights {
                    read: 1,
                    update: 1,
                    ..OpWeights::default()
                }),
                keys: 10,
                key_dist: KeyDistKind::Uniform,
                key_prefix: b"k:".to_vec(),
                value_size: ValueSize {
                    min_bytes: 1,
                    max_bytes: 1,
                },
                scan_len_max: 100,
            },
        }
    }

    #[test]
    fn even_schedules_are_phase_shifted_into_a_smooth_aggregate() {
        // 4 connections at 4000 ops/s in total: 1 ms apart each, 250 µs apart together.
        let open = OpenLoop {
            rate_per_s: 4000.0,
            poisson: false,
        };
        let cfg = config(4, Some(open));
        let mut rng = SmallRng::seed_from_u64(0);
        let mut sends = Vec::new();
        for conn in 0..4 {
            let mut schedule = Schedule::new(&cfg, conn, &mut rng);
            for _ in 0..5 {
                sends.push(schedule.next_ns());
                schedule.advance(&mut rng);
            }
        }
        sends.sort_unstable();
        let gaps: Vec<u64> = sends.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g == 250_000), "{gaps:?}");
        assert_eq!(sends[0], 0);
    }

    #[test]
    fn poisson_schedules_keep_the_mean_rate() {
        let open = OpenLoop {
            rate_per_s: 1000.0,
            poisson: true,
        };
        let cfg = config(2, Some(open));
        let mut rng = SmallRng::seed_from_u64(1);
        let mut schedule = Schedule::new(&cfg, 0, &mut rng);
        let count = 20_000u64;
        for _ in 0..count {
            schedule.advance(&mut rng);
        }
        // One of 2 connections at 1000 ops/s in total: a mean gap of 2 ms.
        let mean_gap_ns = schedule.next_ns() as f64 / count as f64;
        assert!(
            (mean_gap_ns - 2e6).abs() < 0.03 * 2e6,
            "mean gap {mean_gap_ns} ns"
        );
    }

    #[test]
    fn requests_are_issued_in_warmup_and_window_and_within_the_quota() {
        let cfg = config(1, None);
        let mut issuer = Issuer {
            workload: Workload::new(&cfg.workload, 0, 0, 1),
            pipeline: 1,
            pipeline_batch: false,
            warmup_end_ns: 1_000,
            issue_end_ns: Some(11_000),
            quota_left: None,
            interrupted: false,
        };
        assert!(issuer.may_issue(0) && issuer.may_issue(10_999));
        assert!(!issuer.may_issue(11_000));
        issuer.issue_end_ns = None;
        issuer.quota_left = Some(0);
        // Warm-up requests do not count against the quota; measured ones do.
        assert!(issuer.may_issue(999));
        assert!(!issuer.may_issue(1_000));
    }
}
