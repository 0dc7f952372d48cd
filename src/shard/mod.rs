//! The per-core event loop.
