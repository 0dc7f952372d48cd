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
///
/// With `TSKV_FAULT_FALLOCATE_EOPNOTSUPP=1` in the environment it fails with `EOPNOTSUPP`
/// without calling the kernel (see [`crate::fault`]).
pub fn fallocate(file: &File, len_bytes: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len_bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "fallocate length too large"))?;
    if crate::fault::fallocate_unsupported() {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    // SAFETY: the fd is valid for the lifetime of `file`; fallocate takes no pointers.
    cvt(unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) })?;
    Ok(())
}

/// Makes `file` at least `len_bytes` long with its space allocated: [`fallocate`], or, on
/// file systems that do not support it (`EOPNOTSUPP`: FUSE, some network file systems),
/// writes zeros from the file's current end to `len_bytes`. Either way a full disk shows
/// here, as `ENOSPC`, and not in a later write into the range. Bytes before the current end
/// are never touched.
///
/// Returns which of the two it did: callers that want written zeros (not just allocated
/// space) need not write them again after [`Allocation::ZeroFilled`].
///
/// # Errors
/// The OS error of `fallocate` (other than `EOPNOTSUPP`), of reading the file's length, or of
/// the zero writes.
pub fn allocate_or_zero_fill(file: &File, len_bytes: u64) -> io::Result<Allocation> {
    match fallocate(file, len_bytes) {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            static WARNED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    "this file system does not support fallocate; WAL segments are written out with zeros instead"
                );
            }
            zero_fill(file, len_bytes).map(|()| Allocation::ZeroFilled)
        }
        other => other.map(|()| Allocation::Allocated),
    }
}

/// How [`allocate_or_zero_fill`] made room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// `fallocate`: the space is allocated but reads as "unwritten" extents.
    Allocated,
    /// Zero bytes were written from the old end of the file to the new length.
    ZeroFilled,
}

/// Writes zeros from the end of `file` to `len_bytes` (nothing if it is already that long).
fn zero_fill(file: &File, len_bytes: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    const CHUNK_BYTES: usize = 1 << 20;
    let mut offset = file.metadata()?.len();
    let zeros = vec![0u8; CHUNK_BYTES.min(len_bytes.saturating_sub(offset) as usize)];
    while offset < len_bytes {
        let n = zeros.len().min((len_bytes - offset) as usize);
        file.write_all_at(&zeros[..n], offset)?;
        offset += n as u64;
    }
    Ok(())
}

/// The machine's physical memory in bytes (`sysconf(_SC_PHYS_PAGES)` pages of
/// `_SC_PAGESIZE`), or `None` if the system does not say. A cgroup memory limit is not
/// taken into account.
pub fn physical_memory_bytes() -> Option<u64> {
    // SAFETY: sysconf takes no pointers.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    // SAFETY: sysconf takes no pointers.
    let page_bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (pages > 0 && page_bytes > 0).then(|| pages as u64 * page_bytes as u64)
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

/// What C's `printf("%.15g")` prints for `value`, from the C library itself: the reference
/// the time-series value formatting is tested against.
#[cfg(test)]
pub(crate) fn printf_g15(value: f64) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: the buffer is 64 bytes and snprintf writes at most that many (its terminating
    // NUL included); the format string is NUL-terminated and takes one double, which is
    // passed.
    let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.15g".as_ptr(), value) };
    String::from_utf8(buf[..n as usize].to_vec()).expect("printf prints ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    /// The fallback for file systems without fallocate grows a file with zeros and keeps what
    /// it holds (a WAL segment being grown has records in it).
    #[test]
    fn zero_fill_grows_with_zeros_and_keeps_existing_bytes() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"records").unwrap();
        zero_fill(&file, 3 << 20).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 3 << 20);
        let mut all = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut all).unwrap();
        assert_eq!(&all[..7], b"records");
        assert!(all[7..].iter().all(|&b| b == 0));
        // Never shrinks, never rewrites.
        zero_fill(&file, 4).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 3 << 20);
    }
}
