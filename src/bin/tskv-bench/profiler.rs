//! `--perf-record PID` / `--perf-cmd CMD`: a profiler that runs for exactly the measured
//! window. It is started in its own process group when the window opens (after warm-up)
//! and sent SIGINT when the window closes, which makes `perf record` write its file and
//! exit. A profiler that cannot start, or exits at once (perf not permitted, say), only
//! costs a warning: the benchmark carries on without a profile.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::limits;
use crate::sys::{self, Signal};

/// What to run.
#[derive(Debug, Clone)]
pub enum ProfilerSpec {
    /// `perf record -g -p PID -o FILE`.
    PerfRecord {
        /// Process to record.
        pid: u32,
        /// perf.data path.
        output: PathBuf,
    },
    /// `sh -c CMD`.
    Shell(String),
}

impl ProfilerSpec {
    fn command(&self) -> Command {
        match self {
            ProfilerSpec::PerfRecord { pid, output } => {
                let mut command = Command::new("perf");
                command
                    .args(["record", "-g", "-p", &pid.to_string(), "-o"])
                    .arg(output);
                command
            }
            ProfilerSpec::Shell(line) => {
                let mut command = Command::new("sh");
                command.args(["-c", line]);
                command
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            ProfilerSpec::PerfRecord { pid, output } => {
                format!("perf record -g -p {pid} -o {}", output.display())
            }
            ProfilerSpec::Shell(line) => format!("sh -c {line:?}"),
        }
    }
}

/// A profiler over the measured window.
#[derive(Debug)]
pub struct Profiler {
    spec: ProfilerSpec,
    child: Option<Child>,
    started_at: Option<Instant>,
    window: Option<Duration>,
    /// Why it did not run, or how it ended.
    outcome: Option<String>,
    ran: bool,
}

impl Profiler {
    /// A profiler not yet started.
    pub fn new(spec: ProfilerSpec) -> Self {
        Self {
            spec,
            child: None,
            started_at: None,
            window: None,
            outcome: None,
            ran: false,
        }
    }

    /// Starts the profiler; on failure warns on stderr and leaves it stopped.
    pub fn start(&mut self) {
        let mut command = self.spec.command();
        command.stdin(Stdio::null()).process_group(0);
        sys::reset_sigint_in_child(&mut command);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                self.fail(format!("cannot start it: {e}"));
                return;
            }
        };
        self.started_at = Some(Instant::now());
        // perf refused (perf_event_paranoid, seccomp, no such pid) exits within moments.
        sleep(Duration::from_millis(limits::PROFILER_START_CHECK_MS));
        match child.try_wait() {
            Ok(Some(status)) => {
                self.fail(format!("it exited at once ({status})"));
            }
            Ok(None) | Err(_) => {
                eprintln!(
                    "tskv-bench: profiling the measured window: {}",
                    self.spec.describe()
                );
                self.child = Some(child);
                self.ran = true;
            }
        }
    }

    fn fail(&mut self, why: String) {
        eprintln!(
            "tskv-bench: warning: profiler `{}` did not run: {why}; continuing without a profile",
            self.spec.describe()
        );
        self.outcome = Some(format!("did not run: {why}"));
    }

    /// Sends SIGINT to the profiler's process group and waits for it to exit (killing it
    /// after [`limits::PROFILER_EXIT_TIMEOUT_MS`]).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        self.window = self.started_at.map(|t| t.elapsed());
        if let Err(e) = sys::signal_process_group(child.id(), Signal::Interrupt) {
            eprintln!("tskv-bench: warning: cannot interrupt the profiler: {e}");
        }
        let deadline = Instant::now() + Duration::from_millis(limits::PROFILER_EXIT_TIMEOUT_MS);
        let outcome = loop {
            match child.try_wait() {
                Ok(Some(status)) => break format!("exited ({status}) after SIGINT"),
                Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = sys::signal_process_group(child.id(), Signal::Kill);
                    let _ = child.wait();
                    break "killed: no exit within the timeout after SIGINT".to_string();
                }
                Err(e) => break format!("cannot wait for it: {e}"),
            }
        };
        eprintln!("tskv-bench: profiler {outcome}");
        self.outcome = Some(outcome);
    }

    /// The profiler's part of the JSON report.
    pub fn json(&self) -> Value {
        let output = match &self.spec {
            ProfilerSpec::PerfRecord { output, .. } => Some(output.display().to_string()),
            ProfilerSpec::Shell(_) => None,
        };
        json!({
            "command": self.spec.describe(),
            "ran": self.ran,
            "output": output,
            "window_s": self.window.map(|w| w.as_secs_f64()),
            "outcome": self.outcome,
        })
    }
}

impl Drop for Profiler {
    fn drop(&mut self) {
        // An early return (an error) must not leave a profiler running.
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_profiler_runs_for_the_window_and_ends_on_sigint() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("stopped");
        let line = format!(
            "trap 'echo stopped > {}; exit 0' INT; while :; do sleep 0.05; done",
            marker.display()
        );
        let mut profiler = Profiler::new(ProfilerSpec::Shell(line));
        profiler.start();
        assert!(profiler.ran);
        profiler.stop();
        assert!(marker.exists(), "the profiler did not see SIGINT");
        assert_eq!(profiler.json()["ran"], true);
    }

    #[test]
    fn a_profiler_that_cannot_run_is_a_warning() {
        let mut profiler = Profiler::new(ProfilerSpec::Shell("exit 3".into()));
        profiler.start();
        profiler.stop();
        assert!(!profiler.ran);
        let outcome = profiler.json()["outcome"].as_str().unwrap().to_string();
        assert!(outcome.contains("did not run"), "{outcome}");
    }
}
