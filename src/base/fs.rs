//! Directory durability, and the one way a small file is replaced durably.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::error::{io_error, StoreError};

/// Fsyncs directory `dir`, making entries created, renamed or removed in it durable.
///
/// # Errors
/// [`StoreError::Io`] naming the directory.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let context = || format!("syncing directory {}", dir.display());
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(context())(e))
}

/// Makes `bytes` the content of `dir/name` durably: written to `dir/temp_name`,
/// fdatasynced, renamed over `dir/name`, then the directory fsynced, so a crash leaves the
/// old file or the new one, never a mix (RocksDB's `SetCurrentFile`; the ALICE study of
/// crash-consistent updates). Used for the manifest and the data directory's meta file.
///
/// # Errors
/// [`StoreError::Io`] naming the step and file. The old file stays in force unless the
/// rename happened.
pub fn install_file(
    dir: &Path,
    name: &str,
    temp_name: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let tmp = dir.join(temp_name);
    let shown = tmp.display();
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_error(format!("creating {shown}")))?;
    file.write_all(bytes)
        .map_err(io_error(format!("writing {shown}")))?;
    file.sync_data()
        .map_err(io_error(format!("syncing {shown}")))?;
    drop(file);
    let path = dir.join(name);
    fs::rename(&tmp, &path).map_err(io_error(format!("renaming {shown} to {}", path.display())))?;
    sync_dir(dir)
}
