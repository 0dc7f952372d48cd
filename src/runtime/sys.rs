//! Small syscall helpers. Every libc call goes through [`cvt`], which turns `-1` into
//! `io::Error::last_os_error()`.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Turns a libc return value of `-1` into the thread's last OS error.
pub fn cvt<T: PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Allocates `len_bytes` of disk space for `file` from offset 0 (`fallocate(2)`, mode 0),
/// growing its size, so later writes into the range do not change the file size and
/// fdatasync need not flush size metadata.
///
/// # Errors
/// The OS error, e.g. `ENOSPC` when the disk is full or `EOPNOTSUPP` on file systems
/// without fallocate support.
pub fn fallocate(file: &File, len_bytes: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len_bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "fallocate length too large"))?;
    // SAFETY: the fd is valid for the lifetime of `file`; fallocate takes no pointers.
    cvt(unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) })?;
    Ok(())
}

/// A non-blocking `eventfd(2)` counter used to wake a sleeping epoll loop.
#[derive(Debug)]
pub struct EventFd {
    fd: std::os::fd::OwnedFd,
}

impl EventFd {
    /// Creates a non-blocking, close-on-exec eventfd with count 0.
    ///
    /// # Errors
    /// The OS error (e.g. `EMFILE`).
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; the result is checked before use.
        let raw = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) };
        Ok(Self { fd })
    }

    /// The raw descriptor, to register with epoll or io_uring.
    pub fn raw(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// Adds 1 to the counter, waking any epoll waiter. Never blocks: a saturated counter
    /// (`EAGAIN`) already means "readable".
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own descriptor.
        let _ = unsafe { libc::write(self.raw(), (&one as *const u64).cast(), 8) };
    }

    /// Resets the counter to 0 so the next notify produces a new edge.
    pub fn drain(&self) {
        let mut value: u64 = 0;
        // SAFETY: reads at most 8 bytes into a live u64 from our own descriptor.
        let _ = unsafe { libc::read(self.raw(), (&mut value as *mut u64).cast(), 8) };
    }
}

/// Blocks `signals` in the calling thread (and the threads it spawns afterwards), so they
/// can be received through a [`SignalFd`] instead of interrupting arbitrary threads.
///
/// # Errors
/// The OS error of `pthread_sigmask`.
pub fn block_signals(signals: &[libc::c_int]) -> io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, live sigset_t for all three calls. Setting the default
    // action first matters: a signal ignored at start (background jobs of a shell ignore
    // SIGINT) is discarded when sent and would never reach the signalfd.
    unsafe {
        libc::sigemptyset(&mut set);
        for &signal in signals {
            libc::sigaddset(&mut set, signal);
            libc::signal(signal, libc::SIG_DFL);
        }
    }
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(set)
}

/// A `signalfd(2)` for signals previously blocked with [`block_signals`].
#[derive(Debug)]
pub struct SignalFd {
    fd: std::os::fd::OwnedFd,
}

impl SignalFd {
    /// Creates a non-blocking signalfd for the signals in `set`.
    ///
    /// # Errors
    /// The OS error of `signalfd`.
    pub fn new(set: &libc::sigset_t) -> io::Result<Self> {
        // SAFETY: `set` points to an initialised sigset_t; -1 asks for a new descriptor.
        let raw = cvt(unsafe { libc::signalfd(-1, set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) };
        Ok(Self { fd })
    }

    /// The raw descriptor, to register with epoll.
    pub fn raw(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads one pending signal number, or `None` if none is pending.
    pub fn read_signal(&self) -> Option<u32> {
        // SAFETY: signalfd_siginfo is plain data; zero is a valid bit pattern.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into a live signalfd_siginfo.
        let n = unsafe {
            libc::read(
                self.raw(),
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                size,
            )
        };
        (n == size as isize).then_some(info.ssi_signo)
    }
}

/// Restores the default action of `SIGPIPE` (terminate quietly), which Rust programs
/// ignore by default, so a command-line tool piped into `head` stops like other Unix tools
/// instead of panicking on a failed `println!`.
pub fn restore_default_sigpipe() {
    // SAFETY: installs the default disposition; no handler code runs in our process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
