//! The storage engine's error type.

use std::io;

/// Errors of the storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O error, with what was being done and to which file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A checksum or format check failed somewhere a torn write cannot explain.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        /// The file's path.
        file: String,
        /// Byte offset of the bad record or block.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
}

/// Builds the error mapper for an I/O failure while doing `context` (which names the file).
pub fn io_error(context: String) -> impl FnOnce(io::Error) -> StoreError {
    move |source| StoreError::Io { context, source }
}
