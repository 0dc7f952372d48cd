//! Directory durability, and the one way a small file is replaced durably.

use std::fs::OpenOptions;
use std::path::Path;

use super::error::{io_error, StoreError};
use super::iolog;

/// Fsyncs directory `dir`, making entries created, renamed or removed in it durable.
///
/// # Errors
/// [`StoreError::Io`] naming the directory.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let context = || format!("syncing directory {}", dir.display());
    super::iolog::sync_dir(dir).map_err(|e| io_error(context())(e))
}

/// Makes `bytes` the content of `dir/name` durably: written to `dir/temp_name`,
/// fdatasynced, the directory fsynced (so every entry created before, such as the
/// SSTables a manifest names, is durable first), renamed over `dir/name`, then the
/// directory fsynced again, so a crash leaves the
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
    let file = iolog::create(
        &tmp,
        OpenOptions::new().write(true).create(true).truncate(true),
    )
    .map_err(io_error(format!("creating {shown}")))?;
    iolog::write_at(&file, bytes, 0).map_err(io_error(format!("writing {shown}")))?;
    iolog::sync_data(&file).map_err(io_error(format!("syncing {shown}")))?;
    drop(file);
    // Entries created before this install (the SSTables a new manifest names) must be
    // durable before the new file can be: without an ordering guarantee from the file
    // system, a crash could otherwise keep the renamed manifest but not a table's entry.
    sync_dir(dir)?;
    let path = dir.join(name);
    iolog::rename(&tmp, &path)
        .map_err(io_error(format!("renaming {shown} to {}", path.display())))?;
    sync_dir(dir)
}
