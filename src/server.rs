//! Server start-up and shutdown: data directory lock, listening sockets, shard threads,
//! signals.
//!
//! Data directory layout:
//!
//! ```text
//! <data-dir>/LOCK          held with flock while a server runs
//! <data-dir>/TSKV          "shards=<N>": keys are hashed to N shards, so N is fixed
//! <data-dir>/shard-000/    one store per shard (WAL segments, SSTables, MANIFEST)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};

use crate::compaction::core::CompactionCore;
use crate::config::ServerConfig;
use crate::runtime::epoll::{Epoll, Interest};
use crate::runtime::sys::{block_signals, EventFd, SignalFd};
use crate::shard::mesh::{build_links, ShardId, Waker};
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
    /// A shard failed to start or stopped with an error.
    #[error("{0}")]
    Shard(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ServerError {
    let context = context.into();
    move |source| ServerError::Io { context, source }
}

/// Opens the data directory: creates it, takes the lock (kept while the returned file
/// lives) and checks or records the shard count.
fn open_data_dir(dir: &Path, shards: usize) -> Result<File, ServerError> {
    fs::create_dir_all(dir)
        .map_err(io_err(format!("creating data directory {}", dir.display())))?;
    let lock_path = dir.join("LOCK");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(format!("opening {}", lock_path.display())))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Err(ServerError::Locked(dir.to_path_buf())),
        Err(fs::TryLockError::Error(e)) => {
            return Err(io_err(format!("locking {}", lock_path.display()))(e))
        }
    }
    let meta_path = dir.join("TSKV");
    match fs::read_to_string(&meta_path) {
        Ok(text) => {
            let found = text
                .trim()
                .strip_prefix("shards=")
                .and_then(|n| n.parse::<usize>().ok());
            match found {
                Some(found) if found == shards => {}
                Some(found) => {
                    return Err(ServerError::ShardCountMismatch {
                        dir: dir.to_path_buf(),
                        found,
                    })
                }
                None => {
                    return Err(ServerError::Io {
                        context: format!("reading {}", meta_path.display()),
                        source: io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("unexpected contents {text:?}"),
                        ),
                    })
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let tmp = dir.join("TSKV.tmp");
            let write = || -> io::Result<()> {
                let mut file = File::create(&tmp)?;
                writeln!(file, "shards={shards}")?;
                file.sync_data()?;
                fs::rename(&tmp, &meta_path)?;
                File::open(dir)?.sync_all()
            };
            write().map_err(io_err(format!("writing {}", meta_path.display())))?;
        }
        Err(e) => return Err(io_err(format!("reading {}", meta_path.display()))(e)),
    }
    Ok(lock)
}

/// A non-blocking listening socket with `SO_REUSEPORT`, so every shard can have its own
/// and the kernel spreads connections across them.
fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Runs the server until SIGINT, SIGTERM or `SHUTDOWN`: prints the ready line when every
/// shard has recovered its store and listens, and returns once in-flight writes finished.
///
/// # Errors
/// [`ServerError`] if the data directory is locked or inconsistent, a socket cannot be
/// bound, or a shard fails to start (store recovery, io_uring set-up).
pub fn run(config: ServerConfig) -> Result<(), ServerError> {
    let signals =
        block_signals(&[libc::SIGINT, libc::SIGTERM]).map_err(io_err("blocking signals"))?;
    let signal_fd = SignalFd::new(&signals).map_err(io_err("creating signalfd"))?;
    let _lock = open_data_dir(&config.data_dir, config.shards)?;

    let first = reuseport_listener(SocketAddr::new(config.bind, config.port))
        .map_err(io_err(format!("binding {}:{}", config.bind, config.port)))?;
    let local = first
        .local_addr()
        .map_err(io_err("reading bound address"))?;
    let mut listeners = vec![first];
    for _ in 1..config.shards {
        listeners.push(reuseport_listener(local).map_err(io_err(format!("binding {local}")))?);
    }
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
        intake_stopped: AtomicUsize::new(0),
        shutdown_requested: EventFd::new().map_err(io_err("eventfd"))?,
        next_client_id: AtomicU64::new(1),
        started: Instant::now(),
        config: config.clone(),
    });

    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let compaction = CompactionCore::start(
        compaction_core_id(&cores, config.compaction_core),
        COMPACTION_QUEUE_PER_SHARD * shards,
    )
    .map_err(io_err("spawning the compaction core"))?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let mut threads = Vec::new();
    for ((index, listener), links) in listeners
        .into_iter()
        .enumerate()
        .zip(build_links(shards, config.shard_queue_len))
    {
        let shared = shared.clone();
        let ready_tx = ready_tx.clone();
        let core = (!cores.is_empty()).then(|| cores[index % cores.len()]);
        let store_dir = config.data_dir.join(format!("shard-{index:03}"));
        let compaction_requests = compaction.requests();
        let thread = std::thread::Builder::new()
            .name(format!("tskv-shard-{index}"))
            .spawn(move || -> Result<(), String> {
                if let Some(core) = core {
                    if !core_affinity::set_for_current(core) {
                        tracing::warn!(shard = index, "could not pin to core {}", core.id);
                    }
                }
                let opened = Shard::open(
                    ShardId(index),
                    shared,
                    listener,
                    links,
                    &store_dir,
                    compaction_requests,
                );
                let shard = match opened {
                    Ok(shard) => {
                        let _ = ready_tx.send(Ok(()));
                        shard
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.clone()));
                        return Err(e);
                    }
                };
                shard
                    .run()
                    .map_err(|e| format!("shard {index} stopped: {e}"))
            })
            .map_err(io_err("spawning shard thread"))?;
        threads.push(thread);
    }
    drop(ready_tx);

    let mut startup_error = None;
    for _ in 0..shards {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                startup_error.get_or_insert(e);
            }
            Err(_) => {
                startup_error.get_or_insert_with(|| "a shard thread exited during start-up".into());
                break;
            }
        }
    }
    if startup_error.is_none() {
        println!(
            "ready: listening on {}:{}, {} shards, data in {}",
            local.ip(),
            local.port(),
            shards,
            config.data_dir.display()
        );
        let _ = io::stdout().flush();
        wait_for_stop(&signal_fd, &shared.shutdown_requested)?;
    }

    shared.stop.store(true, Ordering::SeqCst);
    for waker in &shared.wakers {
        waker.wake();
    }
    let mut run_error = startup_error;
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                run_error.get_or_insert(e);
            }
            Err(_) => {
                run_error.get_or_insert_with(|| "a shard thread panicked".into());
            }
        }
    }
    // After the shards: a flush install they queued last is still made durable.
    compaction.stop();
    match run_error {
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

/// Blocks until SIGINT/SIGTERM arrives or a shard reports `SHUTDOWN`.
fn wait_for_stop(signal_fd: &SignalFd, shutdown: &EventFd) -> Result<(), ServerError> {
    let mut epoll = Epoll::new(4).map_err(io_err("epoll"))?;
    epoll
        .add(signal_fd.raw(), 0, Interest::Read)
        .map_err(io_err("epoll add"))?;
    epoll
        .add(shutdown.raw(), 1, Interest::Read)
        .map_err(io_err("epoll add"))?;
    let mut events = Vec::new();
    loop {
        events.clear();
        epoll.wait(&mut events, -1).map_err(io_err("epoll wait"))?;
        for event in &events {
            if event.token == 0 {
                if let Some(signal) = signal_fd.read_signal() {
                    tracing::info!("received signal {signal}, shutting down");
                    return Ok(());
                }
            } else {
                return Ok(());
            }
        }
    }
}
