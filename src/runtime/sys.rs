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
