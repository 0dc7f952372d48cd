//! The engine's file-system operations, in one place, with a log of them for crash
//! simulation.
//!
//! Every operation of the storage engine that changes what a crash would leave on disk —
//! creating, writing, extending, syncing, renaming and removing files, and syncing a
//! directory — goes through a function here (the server's io_uring path writes WAL
//! batches and SSTables through the ring instead; see [`crate::shard`]). Normally each one
//! is the plain system call plus one relaxed atomic load.
//!
//! While a [`Recorder`] is active, each operation on a file under its root directory is
//! also appended to its log, in the order the calls happened, with the file named by its
//! identity (device and inode) so that renames keep it. A crash simulation replays a
//! prefix of the log against a model of a disk that keeps *written* and *durable* bytes
//! apart (the test `tests/store_crash_sim.rs`). The recorder can also make the Nth logged
//! write or sync fail with an OS error, without doing it, to inject `EIO` or `ENOSPC`.
//!
//! Only one recorder can be active per process; it is meant for a test binary of its own.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// A file's identity: device and inode numbers.
pub type FileId = (u64, u64);

/// One logged operation. Names are file names in the recorder's root directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A file was created (empty) under `name`.
    Create {
        /// The new entry's name.
        name: String,
        /// The file.
        id: FileId,
    },
    /// `bytes` were written at `offset`.
    Write {
        /// The file.
        id: FileId,
        /// Byte offset.
        offset: u64,
        /// What was written.
        bytes: Vec<u8>,
    },
    /// The file was made at least `len_bytes` long (zero bytes past its old end).
    Extend {
        /// The file.
        id: FileId,
        /// Its new minimum length.
        len_bytes: u64,
    },
    /// fdatasync or fsync of the file completed: its content and length are durable.
    Sync {
        /// The file.
        id: FileId,
    },
    /// Entry `from` was renamed to `to` (replacing it).
    Rename {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// Entry `name` was removed.
    Remove {
        /// The name.
        name: String,
    },
    /// The root directory was fsynced: every entry change before it is durable.
    SyncDir,
}

/// Which operations an injected fault can hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Writes and extensions.
    Write,
    /// File syncs.
    Sync,
}

struct Log {
    root: PathBuf,
    known: HashSet<FileId>,
    ops: Vec<Op>,
    /// Fail the `n`th operation of this kind from now (1-based) with this OS error.
    fault: Option<(FaultKind, u64, i32)>,
    seen: [u64; 2],
}

static RECORDING: AtomicBool = AtomicBool::new(false);
static LOG: Mutex<Option<Log>> = Mutex::new(None);

fn with_log<T>(f: impl FnOnce(&mut Log) -> T) -> Option<T> {
    if !RECORDING.load(Ordering::Relaxed) {
        return None;
    }
    let mut guard = LOG.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_mut().map(f)
}

/// Whether a recorder is active. The WAL writer prepares its next segment inline rather
/// than on a background thread then, so the order of operations follows from the caller's
/// alone.
pub fn recording() -> bool {
    RECORDING.load(Ordering::Relaxed)
}

fn id_of(file: &File) -> Option<FileId> {
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

fn name_in_root(log: &Log, path: &Path) -> Option<String> {
    let parent = path.parent()?;
    (parent == log.root).then(|| path.file_name()?.to_str().map(str::to_owned))?
}

/// An injected failure for the next operation of `kind`, if it is the chosen one.
fn injected(kind: FaultKind, id: Option<FileId>) -> io::Result<()> {
    let errno = with_log(|log| {
        if !id.is_some_and(|id| log.known.contains(&id)) {
            return None;
        }
        let (fault_kind, n, errno) = log.fault?;
        if fault_kind != kind {
            return None;
        }
        let seen = &mut log.seen[kind as usize];
        *seen += 1;
        (*seen == n).then_some(errno)
    })
    .flatten();
    match errno {
        Some(errno) => Err(io::Error::from_raw_os_error(errno)),
        None => Ok(()),
    }
}

fn log_file_op(file: &File, op: impl FnOnce(FileId) -> Op) {
    if !recording() {
        return;
    }
    let Some(id) = id_of(file) else { return };
    with_log(|log| {
        if log.known.contains(&id) {
            log.ops.push(op(id));
        }
    });
}

fn id_if_recording(file: &File) -> Option<FileId> {
    recording().then(|| id_of(file)).flatten()
}

/// Creates `path` with `options` (which must include `create` or `create_new`) and logs
/// the new entry.
///
/// # Errors
/// The OS error of `open(2)`.
pub fn create(path: &Path, options: &OpenOptions) -> io::Result<File> {
    let file = options.open(path)?;
    if recording() {
        if let Some(id) = id_of(&file) {
            with_log(|log| {
                if let Some(name) = name_in_root(log, path) {
                    log.known.insert(id);
                    log.ops.push(Op::Create { name, id });
                }
            });
        }
    }
    Ok(file)
}

/// Writes all of `bytes` at `offset` of `file` (`pwrite(2)`, repeated until done).
///
/// # Errors
/// The OS error, or an injected one.
pub fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    injected(FaultKind::Write, id_if_recording(file))?;
    file.write_all_at(bytes, offset)?;
    log_file_op(file, |id| Op::Write {
        id,
        offset,
        bytes: bytes.to_vec(),
    });
    Ok(())
}

/// Makes `file` at least `len_bytes` long with its space allocated
/// ([`crate::runtime::sys::allocate_or_zero_fill`]).
///
/// Returns how the room was made.
///
/// # Errors
/// The OS error (e.g. `ENOSPC`), or an injected one.
pub fn allocate(file: &File, len_bytes: u64) -> io::Result<crate::runtime::sys::Allocation> {
    injected(FaultKind::Write, id_if_recording(file))?;
    let how = crate::runtime::sys::allocate_or_zero_fill(file, len_bytes)?;
    log_file_op(file, |id| Op::Extend { id, len_bytes });
    Ok(how)
}

/// `fdatasync(2)` of `file`.
///
/// # Errors
/// The OS error, or an injected one (then nothing was synced).
pub fn sync_data(file: &File) -> io::Result<()> {
    injected(FaultKind::Sync, id_if_recording(file))?;
    file.sync_data()?;
    log_file_op(file, |id| Op::Sync { id });
    Ok(())
}

/// `fsync(2)` of `file` (data and metadata).
///
/// # Errors
/// As [`sync_data`].
pub fn sync_all(file: &File) -> io::Result<()> {
    injected(FaultKind::Sync, id_if_recording(file))?;
    file.sync_all()?;
    log_file_op(file, |id| Op::Sync { id });
    Ok(())
}

/// Renames `from` to `to` (`rename(2)`: replaces `to`).
///
/// # Errors
/// The OS error.
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    with_log(|log| {
        if let (Some(from), Some(to)) = (name_in_root(log, from), name_in_root(log, to)) {
            log.ops.push(Op::Rename { from, to });
        }
    });
    Ok(())
}

/// Removes the file `path`.
///
/// # Errors
/// The OS error.
pub fn remove(path: &Path) -> io::Result<()> {
    fs::remove_file(path)?;
    with_log(|log| {
        if let Some(name) = name_in_root(log, path) {
            log.ops.push(Op::Remove { name });
        }
    });
    Ok(())
}

/// Fsyncs directory `dir`.
///
/// # Errors
/// The OS error.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()?;
    with_log(|log| {
        if dir == log.root {
            log.ops.push(Op::SyncDir);
        }
    });
    Ok(())
}

/// Records the file-system operations under one directory while it lives. Only one may
/// exist at a time in a process.
#[derive(Debug)]
pub struct Recorder {
    _private: (),
}

impl Recorder {
    /// Starts recording operations on files in `root` (not its subdirectories). The files
    /// already there are known from the start.
    ///
    /// # Panics
    /// If another recorder is active, or `root` cannot be listed.
    pub fn start(root: &Path) -> Self {
        let mut known = HashSet::new();
        for entry in fs::read_dir(root).expect("list the recorded directory") {
            let meta = entry.expect("list the recorded directory").metadata();
            if let Some(meta) = meta.ok().filter(|m| m.is_file()) {
                known.insert((meta.dev(), meta.ino()));
            }
        }
        let mut guard = LOG.lock().unwrap_or_else(|e| e.into_inner());
        assert!(guard.is_none(), "one iolog recorder at a time");
        *guard = Some(Log {
            root: root.to_path_buf(),
            known,
            ops: Vec::new(),
            fault: None,
            seen: [0; 2],
        });
        RECORDING.store(true, Ordering::Relaxed);
        Self { _private: () }
    }

    /// The operations logged so far.
    pub fn len(&self) -> usize {
        with_log(|log| log.ops.len()).unwrap_or(0)
    }

    /// Whether nothing was logged yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes the `n`th operation of `kind` from now (1-based) fail with OS error `errno`
    /// without being done.
    pub fn fail_nth(&self, kind: FaultKind, n: u64, errno: i32) {
        with_log(|log| {
            log.fault = Some((kind, n, errno));
            log.seen = [0; 2];
        });
    }

    /// Stops recording and returns the log.
    pub fn finish(self) -> Vec<Op> {
        let log = LOG.lock().unwrap_or_else(|e| e.into_inner()).take();
        RECORDING.store(false, Ordering::Relaxed);
        std::mem::forget(self);
        log.map(|l| l.ops).unwrap_or_default()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        RECORDING.store(false, Ordering::Relaxed);
        LOG.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}
