//! Why a client thread stopped early.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::limits;
use crate::resp_client::ProtocolError;

/// Why a client thread stopped early.
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineError {
    /// A socket or epoll call failed.
    Io {
        /// The connection's server, if the error is about one.
        addr: Option<SocketAddr>,
        /// The OS error.
        source: io::Error,
    },
    /// The server sent bytes that are not RESP.
    Protocol {
        /// The connection's server.
        addr: SocketAddr,
        /// What was wrong.
        source: ProtocolError,
    },
    /// The server closed the connection.
    Closed(SocketAddr),
    /// A reply arrived with no request outstanding.
    Unsolicited(SocketAddr),
    /// Requests were outstanding with no reply for [`limits::REPLY_TIMEOUT_NS`].
    ReplyTimeout(SocketAddr),
    /// The main thread asked every thread to stop (another one failed).
    Stopped,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Io {
                addr: Some(addr),
                source,
            } => write!(f, "I/O error on connection to {addr}: {source}"),
            EngineError::Io { addr: None, source } => write!(f, "I/O error: {source}"),
            EngineError::Protocol { addr, source } => {
                write!(f, "protocol error from {addr}: {source}")
            }
            EngineError::Closed(addr) => write!(f, "{addr} closed the connection"),
            EngineError::Unsolicited(addr) => {
                write!(f, "{addr} sent a reply with no request outstanding")
            }
            EngineError::ReplyTimeout(addr) => write!(
                f,
                "no reply from {addr} for {} s with requests outstanding",
                limits::REPLY_TIMEOUT_NS / 1_000_000_000
            ),
            EngineError::Stopped => f.write_str("stopped because another client thread failed"),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::Io { source, .. } => Some(source),
            EngineError::Protocol { source, .. } => Some(source),
            _ => None,
        }
    }
}

pub(super) fn io_error(addr: SocketAddr) -> impl FnOnce(io::Error) -> EngineError {
    move |source| EngineError::Io {
        addr: Some(addr),
        source,
    }
}
