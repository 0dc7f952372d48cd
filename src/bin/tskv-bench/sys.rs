//! The only module with `unsafe`: a small epoll wrapper and the CPU-time clocks, over `libc`.
//! Every libc call goes through [`cvt`], which turns `-1` into `io::Error::last_os_error()`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Turns a libc return value of `-1` into the thread's last OS error.
fn cvt<T: PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// What a registered socket waits for. Registrations are level-triggered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Readable (replies arrived, or the peer closed).
    Read,
    /// Readable or writable (the send buffer has room again).
    ReadWrite,
}

impl Interest {
    fn flags(self) -> u32 {
        let flags = match self {
            Interest::Read => libc::EPOLLIN | libc::EPOLLRDHUP,
            Interest::ReadWrite => libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLOUT,
        };
        flags as u32
    }
}

/// One readiness event.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// The token given at registration.
    pub token: u64,
    /// Readable, or hung up / failed: a read will tell which.
    pub readable: bool,
    /// Writable.
    pub writable: bool,
}

/// An epoll instance and its event buffer.
pub struct Epoll {
    fd: OwnedFd,
    events: Vec<libc::epoll_event>,
    ready_count: usize,
    /// `epoll_pwait2` (nanosecond timeouts, Linux 5.11+) works on this kernel.
    has_pwait2: bool,
}

impl Epoll {
    /// Creates an epoll instance that returns at most `events_max` events per wait.
    ///
    /// # Errors
    /// The OS error of `epoll_create1`.
    pub fn new(events_max: usize) -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; the result is checked before use.
        let raw = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let events = vec![libc::epoll_event { events: 0, u64: 0 }; events_max.max(1)];
        let mut epoll = Self {
            fd,
            events,
            ready_count: 0,
            has_pwait2: true,
        };
        // Probe once with a zero timeout: kernels before 5.11 answer ENOSYS.
        if let Err(e) = epoll.wait(Some(Duration::ZERO)) {
            if e.raw_os_error() == Some(libc::ENOSYS) {
                epoll.has_pwait2 = false;
            } else {
                return Err(e);
            }
        }
        Ok(epoll)
    }

    /// Registers `fd` under `token`.
    ///
    /// # Errors
    /// The OS error of `epoll_ctl`.
    pub fn add(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    /// Changes what `fd` waits for.
    ///
    /// # Errors
    /// The OS error of `epoll_ctl`.
    pub fn modify(&self, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, token: u64, interest: Interest) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: interest.flags(),
            u64: token,
        };
        // SAFETY: `event` is a live, initialised epoll_event for the duration of the call;
        // the kernel copies it and keeps no pointer.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut event) })?;
        Ok(())
    }

    /// Waits for events for at most `timeout` (`None`: without limit) and returns how many
    /// arrived; read them with [`Epoll::event`]. An interrupted wait returns 0 events.
    ///
    /// # Errors
    /// The OS error of `epoll_pwait2` / `epoll_wait`.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let capacity = libc::c_int::try_from(self.events.len()).unwrap_or(libc::c_int::MAX);
        let ret = if self.has_pwait2 {
            let spec = timeout.map(|t| libc::timespec {
                tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(i32::try_from(t.subsec_nanos()).unwrap_or(0)),
            });
            let spec_ptr = spec
                .as_ref()
                .map_or(std::ptr::null(), |s| s as *const libc::timespec);
            // SAFETY: `events` has room for `capacity` entries and outlives the call;
            // `spec_ptr` is null or points at a live timespec; a null sigmask leaves the
            // signal mask alone.
            unsafe {
                libc::epoll_pwait2(
                    self.fd.as_raw_fd(),
                    self.events.as_mut_ptr(),
                    capacity,
                    spec_ptr,
                    std::ptr::null(),
                )
            }
        } else {
            // Round up, so a short deadline is not turned into a busy loop of 0 ms waits.
            let timeout_ms = timeout.map_or(-1, |t| {
                libc::c_int::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX)
            });
            // SAFETY: `events` has room for `capacity` entries and outlives the call.
            unsafe {
                libc::epoll_wait(
                    self.fd.as_raw_fd(),
                    self.events.as_mut_ptr(),
                    capacity,
                    timeout_ms,
                )
            }
        };
        match cvt(ret) {
            Ok(n) => {
                self.ready_count = usize::try_from(n).unwrap_or(0);
                Ok(self.ready_count)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.ready_count = 0;
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// The `index`-th event of the last [`Epoll::wait`].
    pub fn event(&self, index: usize) -> Event {
        assert!(index < self.ready_count, "event index out of range");
        let raw = self.events[index];
        let bits = raw.events;
        let readable_bits =
            (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        Event {
            token: raw.u64,
            readable: bits & readable_bits != 0,
            writable: bits & libc::EPOLLOUT as u32 != 0,
        }
    }
}

fn timeval_duration(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u32::try_from(tv.tv_usec).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
}

/// User plus system CPU time of the whole process so far (`getrusage(RUSAGE_SELF)`).
///
/// # Errors
/// The OS error of `getrusage`.
pub fn process_cpu_time() -> io::Result<Duration> {
    // SAFETY: rusage is plain old data, so all-zero bytes are a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live rusage the kernel fills in; no pointer is kept.
    cvt(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) })?;
    Ok(timeval_duration(usage.ru_utime) + timeval_duration(usage.ru_stime))
}

/// CPU time the calling thread has used so far (`CLOCK_THREAD_CPUTIME_ID`).
///
/// # Errors
/// The OS error of `clock_gettime`.
pub fn thread_cpu_time() -> io::Result<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec the kernel fills in; no pointer is kept.
    cvt(unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) })?;
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Ok(Duration::new(secs, nanos))
}

/// Sets the calling thread's timer slack, so short epoll timeouts wake near their deadline
/// rather than up to 50 µs late (the default slack).
///
/// # Errors
/// The OS error of `prctl`.
pub fn set_timer_slack_ns(slack_ns: u64) -> io::Result<()> {
    let slack = libc::c_ulong::try_from(slack_ns.max(1)).unwrap_or(1);
    // SAFETY: PR_SET_TIMERSLACK takes its argument by value; the unused arguments are 0.
    cvt(unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, slack, 0, 0, 0) })?;
    Ok(())
}

/// Signals the profiler helper sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: "stop and write your output".
    Interrupt,
    /// SIGKILL.
    Kill,
}

/// Sends `signal` to every process of process group `pgid` (`kill(-pgid, signal)`).
///
/// # Errors
/// `InvalidInput` for a pgid that is not a positive pid_t; else the OS error of `kill`.
pub fn signal_process_group(pgid: u32, signal: Signal) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process group id"))?;
    let signal = match signal {
        Signal::Interrupt => libc::SIGINT,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: kill takes plain integers; a negative pid addresses the process group.
    cvt(unsafe { libc::kill(-pgid, signal) })?;
    Ok(())
}

/// Makes `command`'s child start with SIGINT at its default action even when this process
/// was started with SIGINT ignored (as background jobs of a non-interactive shell are), so
/// a profiler, or a shell's `trap ... INT` in `--perf-cmd`, can be stopped with SIGINT.
pub fn reset_sigint_in_child(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the closure only calls signal(2), which is
    // async-signal-safe, and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn epoll_reports_a_readable_socket_and_times_out_otherwise() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut epoll = Epoll::new(8).unwrap();
        epoll.add(server.as_raw_fd(), 7, Interest::Read).unwrap();
        assert_eq!(epoll.wait(Some(Duration::from_millis(5))).unwrap(), 0);
        client.write_all(b"+OK\r\n").unwrap();
        assert_eq!(epoll.wait(Some(Duration::from_secs(5))).unwrap(), 1);
        let event = epoll.event(0);
        assert_eq!(event.token, 7);
        assert!(event.readable && !event.writable);
        epoll
            .modify(server.as_raw_fd(), 7, Interest::ReadWrite)
            .unwrap();
        assert_eq!(epoll.wait(Some(Duration::ZERO)).unwrap(), 1);
        assert!(epoll.event(0).writable);
    }

    #[test]
    fn cpu_clocks_advance() {
        let before = thread_cpu_time().unwrap();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_time().unwrap() > before);
        assert!(process_cpu_time().unwrap() > Duration::ZERO);
        set_timer_slack_ns(1_000).unwrap();
    }
}
