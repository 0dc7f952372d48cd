//! Server start-up and shutdown: data directory lock, listening sockets, shard threads and
//! their supervision, signals.
//!
//! The data directory's layout (`LOCK`, `TSKV`, `shard-NNN/`) is [`crate::datadir`]'s.

use std::fs;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use crate::compaction::core::CompactionCore;
use crate::config::ServerConfig;
use crate::datadir::{self, DataDirError, DirLock};
use crate::runtime::epoll::{Epoll, Interest};
use crate::runtime::sys::{block_signals, physical_memory_bytes, EventFd, SignalFd};
use crate::shard::mesh::{build_links, Links, Message, ShardId, Waker};
use crate::shard::metrics::ShardMetrics;
use crate::shard::{Shard, Shared};

/// Errors that stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Another process holds the data directory.
    #[error("data directory {0} is locked by another tskv-server (lock file {0}/LOCK)")]
    Locked(PathBuf),
    /// The data directory was created with another shard count.
    #[error("data directory {dir} was created with --shards {found}; start with --shards {found} (keys are hashed to shards, so the count is fixed)")]
    ShardCountMismatch {
        /// The directory.
        dir: PathBuf,
        /// The shard count recorded in it.
        found: usize,
    },
    /// An I/O error while setting up.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A start-up flag's value is refused.
    #[error("{0}")]
    Config(String),
    /// A shard failed to start or stopped with an error.
    #[error("{0}")]
    Shard(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ServerError {
    let context = context.into();
    move |source| ServerError::Io { context, source }
}

impl From<DataDirError> for ServerError {
    fn from(e: DataDirError) -> Self {
        match e {
            DataDirError::Locked(dir) => ServerError::Locked(dir),
            DataDirError::Io { context, source } => ServerError::Io { context, source },
            // A malformed TSKV file, named with what it holds.
            other => ServerError::Config(other.to_string()),
        }
    }
}

/// Protected mode (Redis's `protected-mode yes`): without a password, listening beyond
/// loopback would let anyone who can reach the port read and write every key.
///
/// # Errors
/// [`ServerError::Config`] naming the address and the three ways out.
fn check_protected_mode(config: &ServerConfig) -> Result<(), ServerError> {
    let access = &config.access;
    if access.protected_mode && access.requirepass.is_none() && !config.bind.is_loopback() {
        return Err(ServerError::Config(format!(
            "refusing to listen on {} without a password (protected mode): anyone who can reach \
             it could read and write every key. Set --requirepass, bind a loopback address \
             (--bind 127.0.0.1), or pass --protected-mode no if the network is trusted",
            config.bind
        )));
    }
    Ok(())
}

/// Reads the shard count recorded in `<dir>/TSKV`; `None` if the directory or the file does
/// not exist yet.
///
/// # Errors
/// [`ServerError::Io`] if the file cannot be read, [`ServerError::Config`] if it does not
/// hold `shards=<N>`.
pub fn recorded_shard_count(dir: &Path) -> Result<Option<usize>, ServerError> {
    Ok(datadir::read_shard_count(dir)?)
}

/// Opens the data directory: creates it, takes the lock (kept while the returned lock
/// lives) and checks or records the shard count.
fn open_data_dir(dir: &Path, shards: usize) -> Result<DirLock, ServerError> {
    fs::create_dir_all(dir)
        .map_err(io_err(format!("creating data directory {}", dir.display())))?;
    let lock = datadir::lock(dir)?;
    match datadir::read_shard_count(dir)? {
        Some(found) if found == shards => {}
        Some(found) => {
            return Err(ServerError::ShardCountMismatch {
                dir: dir.to_path_buf(),
                found,
            })
        }
        None => datadir::write_shard_count(dir, shards)?,
    }
    Ok(lock)
}

/// Bytes the cross-shard queues take: every ordered pair of shards has a queue of
/// `2 × shard_queue_len` messages (see [`crate::shard::mesh`]), allocated at start-up.
pub fn cross_shard_queue_bytes(shards: usize, shard_queue_len: usize) -> u128 {
    let pairs = shards as u128 * shards.saturating_sub(1) as u128;
    pairs * 2 * shard_queue_len as u128 * std::mem::size_of::<Message>() as u128
}

/// Refuses a shard count whose cross-shard queues would take more than half of
/// `physical_bytes`: they grow with the square of the count, and such a server would only
/// swap or be killed for lack of memory.
fn check_cross_shard_memory(
    shards: usize,
    shard_queue_len: usize,
    physical_bytes: u64,
) -> Result<(), ServerError> {
    let needed = cross_shard_queue_bytes(shards, shard_queue_len);
    if needed > u128::from(physical_bytes / 2) {
        return Err(ServerError::Config(format!(
            "--shards {shards} with --shard-queue-len {shard_queue_len} needs {} MiB of cross-shard queues \
             (shards × (shards − 1) × 2 × queue length × {} bytes), more than half of this machine's {} MiB of memory: \
             use fewer shards or a smaller --shard-queue-len",
            needed >> 20,
            std::mem::size_of::<Message>(),
            physical_bytes >> 20
        )));
    }
    Ok(())
}

/// What a shard thread tells the main thread.
#[derive(Debug)]
enum ShardEvent {
    /// The shard with this index has opened its store and listens.
    Ready(usize),
    /// The shard's thread is ending: after a stop, or because it failed (open error, run
    /// error, panic), with the reason.
    Exited(usize, Result<(), String>),
}

/// The sending side of the shard threads' reports: a channel and the eventfd that wakes the
/// main thread's epoll for it.
#[derive(Clone)]
struct Reporter {
    tx: mpsc::Sender<ShardEvent>,
    wake: Arc<EventFd>,
}

impl Reporter {
    fn report(&self, event: ShardEvent) {
        let _ = self.tx.send(event);
        self.wake.notify();
    }
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}

/// What a shard thread needs to open its shard.
struct ShardStart {
    id: ShardId,
    shared: Arc<Shared>,
    listener: TcpListener,
    links: Links,
    core: Option<core_affinity::CoreId>,
    store_dir: PathBuf,
    /// What replay must do about transactions across shards in this shard's WAL.
    outcome: crate::wal::tx::ShardOutcome,
    /// Passed once every shard has opened its store: only then may old WAL segments go.
    opened: Arc<std::sync::Barrier>,
    compaction: std::sync::mpsc::SyncSender<crate::compaction::core::Request>,
}

/// The body of a shard thread: pins it, opens the shard, reports it ready, runs it, and
/// always reports how it ended, a panic included.
fn shard_thread(start: ShardStart, reporter: &Reporter) {
    let index = start.id.0;
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        if let Some(core) = start.core {
            if !core_affinity::set_for_current(core) {
                tracing::warn!(shard = index, "could not pin to core {}", core.id);
            }
        }
        while crate::fault::shard_open_hangs(index) {
            std::thread::park();
        }
        let mut shard = Shard::open(
            start.id,
            start.shared,
            start.listener,
            start.links,
            &start.store_dir,
            &start.outcome,
            start.compaction,
        )?;
        // A covered WAL segment may hold the only commit record of a transaction another
        // shard is still replaying; once all have opened (and each wrote its own commit
        // records), none is needed. A shard that fails to open stops the server, and the
        // others are abandoned here.
        start.opened.wait();
        shard.delete_covered_wal_segments();
        reporter.report(ShardEvent::Ready(index));
        shard
            .run()
            .map_err(|e| format!("shard {index} stopped: {e}"))
    }));
    let result = outcome.unwrap_or_else(|payload| {
        Err(format!(
            "shard {index} panicked: {}",
            panic_message(payload.as_ref())
        ))
    });
    reporter.report(ShardEvent::Exited(index, result));
}

/// Runs the server until SIGINT, SIGTERM or `SHUTDOWN`: prints the ready line when every
/// shard has recovered its store and listens, and returns once in-flight writes finished.
///
/// Any shard failure (its store cannot be opened, its loop fails, it panics) stops the whole
/// server promptly: the failure is logged at once, the other shards stop without waiting for
/// the failed one, and the reason is returned. A signal during start-up stops the shards
/// that are up and does not wait for those still recovering; a second signal while stopping
/// exits at once.
///
/// # Errors
/// [`ServerError`] if the configuration is refused, the data directory is locked or
/// inconsistent, the address is in use, a shard fails, or a second signal cut the stop short.
pub fn run(config: ServerConfig) -> Result<(), ServerError> {
    check_protected_mode(&config)?;
    let signals =
        block_signals(&[libc::SIGINT, libc::SIGTERM]).map_err(io_err("blocking signals"))?;
    let signal_fd = SignalFd::new(&signals).map_err(io_err("creating signalfd"))?;
    if let Some(physical_bytes) = physical_memory_bytes() {
        check_cross_shard_memory(config.shards, config.shard_queue_len, physical_bytes)?;
    }
    let _lock = open_data_dir(&config.data_dir, config.shards)?;
    let tx_outcomes = datadir::tx_outcomes(&config.data_dir, config.shards).map_err(|e| {
        ServerError::Shard(format!(
            "reading the WALs for transactions across shards: {e}"
        ))
    })?;

    let bind = SocketAddr::new(config.bind, config.port);
    let listeners = crate::listener::bind_shard_listeners(bind, config.shards)
        .map_err(io_err(format!("binding {bind}")))?;
    let local = listeners[0]
        .local_addr()
        .map_err(io_err("reading bound address"))?;
    let mut config = config;
    config.port = local.port();

    let shards = config.shards;
    let shared = Arc::new(Shared {
        wakers: (0..shards)
            .map(|_| Waker::new())
            .collect::<io::Result<_>>()
            .map_err(io_err("eventfd"))?,
        metrics: (0..shards).map(|_| ShardMetrics::default()).collect(),
        stop: AtomicBool::new(false),
        peers_may_be_gone: AtomicBool::new(false),
        intake_stopped: AtomicUsize::new(0),
        shutdown_requested: EventFd::new().map_err(io_err("eventfd"))?,
        next_client_id: AtomicU64::new(1),
        next_tx_id: AtomicU64::new(tx_outcomes.next_id()),
        next_slowlog_id: AtomicU64::new(0),
        clients: AtomicUsize::new(0),
        keys_replies: AtomicUsize::new(0),
        started: Instant::now(),
        config: config.clone(),
    });

    let metrics_endpoint = match config.metrics_addr {
        Some(addr) => Some(
            crate::metrics_http::MetricsEndpoint::start(addr, Arc::clone(&shared))
                .map_err(io_err("starting the metrics endpoint"))?,
        ),
        None => None,
    };
    let (tx, rx) = mpsc::channel();
    let reporter = Reporter {
        tx,
        wake: Arc::new(EventFd::new().map_err(io_err("eventfd"))?),
    };
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let compaction = CompactionCore::start(
        compaction_core_id(&cores, config.compaction_core),
        COMPACTION_QUEUE_PER_SHARD * shards,
    )
    .map_err(io_err("spawning the compaction core"))?;
    let mut threads = Vec::new();
    let opened = Arc::new(std::sync::Barrier::new(shards));
    for ((index, listener), links) in listeners
        .into_iter()
        .enumerate()
        .zip(build_links(shards, config.shard_queue_len))
    {
        let start = ShardStart {
            id: ShardId(index),
            shared: shared.clone(),
            listener,
            links,
            core: (!cores.is_empty()).then(|| cores[index % cores.len()]),
            store_dir: datadir::shard_dir(&config.data_dir, index),
            outcome: tx_outcomes.shard(index),
            opened: Arc::clone(&opened),
            compaction: compaction.requests(),
        };
        let reporter = reporter.clone();
        let thread = std::thread::Builder::new()
            .name(format!("tskv-shard-{index}"))
            .spawn(move || shard_thread(start, &reporter))
            .map_err(io_err("spawning shard thread"))?;
        threads.push(thread);
    }
    drop(reporter.tx);

    let mut supervisor = Supervisor {
        shared: &shared,
        ready: vec![false; shards],
        exited: vec![false; shards],
        first_error: None,
        stopping: false,
    };
    let announce = || {
        println!(
            "ready: listening on {}:{}, {} shards, data in {}",
            local.ip(),
            local.port(),
            shards,
            config.data_dir.display()
        );
        let _ = io::stdout().flush();
    };
    let outcome = supervisor.supervise(&signal_fd, &reporter.wake, &rx, announce);
    // Join the threads that ended; one still opening its store (abandoned above) is left
    // to end with the process.
    for (thread, exited) in threads.into_iter().zip(&supervisor.exited) {
        if *exited {
            let _ = thread.join();
        }
    }
    // After the shards: a flush install they queued last is still made durable.
    compaction.stop();
    if let Some(endpoint) = metrics_endpoint {
        endpoint.stop();
    }
    outcome?;
    match supervisor.first_error {
        Some(e) => Err(ServerError::Shard(e)),
        None => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
    }
}

/// Requests the compaction core queues per shard (a shard has at most one flush install
/// in flight, so this bound is never reached in normal running).
const COMPACTION_QUEUE_PER_SHARD: usize = 4;

/// The core the compaction thread is pinned to: `requested` if the machine has it, else
/// the last core (shared with a shard when there are no more cores than shards).
fn compaction_core_id(
    cores: &[core_affinity::CoreId],
    requested: Option<usize>,
) -> Option<core_affinity::CoreId> {
    match requested {
        Some(id) => {
            let found = cores.iter().copied().find(|c| c.id == id);
            if found.is_none() {
                tracing::warn!(
                    core = id,
                    "no such core for the compaction core; not pinning it"
                );
            }
            found
        }
        None => cores.last().copied(),
    }
}

/// The main thread's view of the shard threads while the server runs.
struct Supervisor<'a> {
    shared: &'a Shared,
    /// Shards that reported [`ShardEvent::Ready`].
    ready: Vec<bool>,
    /// Shards that reported [`ShardEvent::Exited`].
    exited: Vec<bool>,
    /// The first failure of a shard, returned at the end.
    first_error: Option<String>,
    /// A stop was requested or a shard failed.
    stopping: bool,
}

const TOKEN_SIGNAL: u64 = 0;
const TOKEN_SHUTDOWN: u64 = 1;
const TOKEN_SHARD_EVENT: u64 = 2;

impl Supervisor<'_> {
    /// Waits for signals, `SHUTDOWN` and shard reports until the server has stopped: every
    /// shard thread ended, except shards still opening their store when the stop came.
    /// Calls `announce` once every shard is ready (unless stopping by then).
    fn supervise(
        &mut self,
        signal_fd: &SignalFd,
        wake: &EventFd,
        rx: &mpsc::Receiver<ShardEvent>,
        announce: impl Fn(),
    ) -> Result<(), ServerError> {
        let mut epoll = Epoll::new(4).map_err(io_err("epoll"))?;
        epoll
            .add(signal_fd.raw(), TOKEN_SIGNAL, Interest::Read)
            .map_err(io_err("epoll add"))?;
        epoll
            .add(
                self.shared.shutdown_requested.raw(),
                TOKEN_SHUTDOWN,
                Interest::Read,
            )
            .map_err(io_err("epoll add"))?;
        epoll
            .add(wake.raw(), TOKEN_SHARD_EVENT, Interest::Read)
            .map_err(io_err("epoll add"))?;
        let mut events = Vec::new();
        loop {
            if self.stopping && self.all_stopped() {
                return self.abandoned_error();
            }
            events.clear();
            epoll.wait(&mut events, -1).map_err(io_err("epoll wait"))?;
            for event in &events {
                match event.token {
                    TOKEN_SIGNAL => {
                        while let Some(signal) = signal_fd.read_signal() {
                            self.on_signal(signal)?;
                        }
                    }
                    TOKEN_SHUTDOWN => self.stop(),
                    _ => {
                        wake.drain();
                        while let Ok(report) = rx.try_recv() {
                            self.on_report(report, &announce);
                        }
                    }
                }
            }
        }
    }

    fn on_signal(&mut self, signal: u32) -> Result<(), ServerError> {
        if self.stopping {
            return Err(ServerError::Shard(format!(
                "received signal {signal} again while stopping; exiting without waiting for shards {}",
                self.list(|s, i| !s.exited[i])
            )));
        }
        tracing::info!("received signal {signal}, shutting down");
        self.stop();
        Ok(())
    }

    fn on_report(&mut self, report: ShardEvent, announce: &impl Fn()) {
        match report {
            ShardEvent::Ready(index) => {
                self.ready[index] = true;
                if !self.stopping && self.ready.iter().all(|&r| r) {
                    announce();
                }
            }
            ShardEvent::Exited(index, result) => {
                self.exited[index] = true;
                let failure = match result {
                    Err(e) => Some(e),
                    Ok(()) if !self.stopping => Some(format!("shard {index} stopped unexpectedly")),
                    Ok(()) => None,
                };
                if let Some(reason) = failure {
                    tracing::error!("{reason}; stopping the server");
                    self.first_error.get_or_insert(reason);
                    // The failed shard takes no part in the shutdown handshake.
                    self.shared.peers_may_be_gone.store(true, Ordering::SeqCst);
                    self.stop();
                }
            }
        }
    }

    /// Tells every shard to stop. During start-up, shards still opening may take long (or
    /// never finish), so the others are told not to wait for them.
    fn stop(&mut self) {
        if !self.ready.iter().all(|&r| r) {
            self.shared.peers_may_be_gone.store(true, Ordering::SeqCst);
        }
        self.stopping = true;
        self.shared.stop.store(true, Ordering::SeqCst);
        for waker in &self.shared.wakers {
            waker.wake();
        }
    }

    /// Every shard either ended or is still opening its store (it holds no client and has
    /// acknowledged nothing, and its recovery resumes at the next start).
    fn all_stopped(&self) -> bool {
        (0..self.exited.len()).all(|i| self.exited[i] || !self.ready[i])
    }

    fn abandoned_error(&self) -> Result<(), ServerError> {
        if self.exited.iter().all(|&e| e) {
            return Ok(());
        }
        let abandoned = self.list(|s, i| !s.exited[i]);
        tracing::warn!("not waiting for shards {abandoned}, still opening their stores");
        match &self.first_error {
            Some(_) => Ok(()),
            None => Err(ServerError::Shard(format!(
                "stopped during start-up; shards {abandoned} had not finished opening their stores (recovery resumes at the next start)"
            ))),
        }
    }

    fn list(&self, pick: impl Fn(&Self, usize) -> bool) -> String {
        (0..self.exited.len())
            .filter(|&i| pick(self, i))
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_shard_queues_grow_with_the_square_of_the_shard_count() {
        let one_queue = 2 * 4096 * std::mem::size_of::<Message>() as u128;
        assert_eq!(cross_shard_queue_bytes(1, 4096), 0);
        assert_eq!(cross_shard_queue_bytes(2, 4096), 2 * one_queue);
        assert_eq!(cross_shard_queue_bytes(64, 4096), 64 * 63 * one_queue);
    }

    #[test]
    fn shard_counts_whose_queues_exceed_half_the_memory_are_refused() {
        let gib = 1u64 << 30;
        check_cross_shard_memory(2, 4096, gib).unwrap();
        let needed = cross_shard_queue_bytes(64, 4096) as u64;
        check_cross_shard_memory(64, 4096, 2 * needed).unwrap();
        let err = check_cross_shard_memory(64, 4096, 2 * needed - 1).unwrap_err();
        assert!(err.to_string().contains("--shards 64"), "{err}");
        check_cross_shard_memory(1000, 4096, 64 * gib).unwrap_err();
    }
}
