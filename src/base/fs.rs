//! Directory durability.

use std::fs::File;
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
