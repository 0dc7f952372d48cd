//! Server start-up and shutdown.
