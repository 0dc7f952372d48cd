//! The unsafe corner: thin, safe wrappers over the Linux interfaces the shards use.
//!
//! Everything that calls `libc` or hands memory to the kernel lives here, so the rest of
//! the crate can `deny(unsafe_code)`.
#![allow(unsafe_code)]

pub mod epoll;
pub mod sys;
pub mod uring;
