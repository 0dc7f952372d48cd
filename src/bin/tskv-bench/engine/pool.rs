//! The client threads of a run and their connections, from the first phase to the last:
//! [`ClientPool`] spawns one thread per [`ThreadPlan`], each pins itself and connects, then
//! runs one phase per [`PhaseStart`] it receives over the same connections.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use super::conn::Conn;
use super::{EngineConfig, Worker};
use crate::stats::{ThreadSummary, WorkerMessage};
use crate::sys;

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
