//! # tskv — a crash-safe, thread-per-core time-series key-value server
//!
//! The modules follow the data path of one request:
//!
//! ```text
//!  client bytes ──► resp (parse) ──► command ──► shard (route by xxh3(key) % N)
//!                                                   │
//!        ┌──────────────────────────────────────────┘
//!        ▼
//!   store ──► wal (group commit through io_uring) ──► memtable
//!     │                                                   │ full
//!     │ reads: memtables, then block_cache,               ▼
//!     │ misses read through the shard's io_uring   sstable (flush through io_uring)
//!     ▼                                                   │ hand over
//!   version (live tables by level) ◄── compaction core: installs flushes and merges
//!                                       tables (compaction), the one writer of manifest
//! ```
//!
//! * [`config`] holds every limit and option, with units in the names.
//! * [`resp`] is the incremental request parser and the RESP2/RESP3 reply encoders.
//! * [`command`] turns parsed arguments into typed commands and Redis-worded errors.
//! * [`runtime`] is the only place with `unsafe`: epoll, io_uring, eventfd and a few syscalls.
//! * [`base`] is the engine's shared vocabulary (sequence numbers, the error type, the
//!   checked-block codec, directory sync); every storage module imports from it, never upward.
//! * [`wal`], [`memtable`], [`sstable`], [`manifest`] and [`store`] are the per-shard storage
//!   engine; [`store`] composes them, and recovery at open lives in its own file.
//! * [`version`] is the set of live SSTables by level; [`compaction`] merges them on the
//!   compaction core, the one writer of manifests; [`block_cache`] keeps the data blocks
//!   point lookups read; [`glob`] is Redis's pattern matching for `SCAN`, `KEYS` and `CONFIG`.
//! * [`engine`] is the same storage engine as a library, driven with blocking I/O.
//! * [`timeseries`] is the RedisTimeSeries command set: series stored as Gorilla-compressed
//!   chunks in the shard's LSM tree, behind a reserved key prefix.
//! * [`shard`] is the per-core event loop: connections, cross-shard queues, group commit.
//! * [`listener`] binds the shards' listening sockets and keeps a second server off the port.
//! * [`datadir`] is the data directory's layout: the `TSKV` shard count, the `LOCK`, the
//!   `shard-NNN` directories and [`datadir::shard_of`], shared by the server and `tskv-tool`.
//! * [`server`] starts the shards, owns the data directory lock, supervises the shard
//!   threads and handles shutdown.
//! * [`fault`] holds the fault-injection switches tests use (off unless set in the environment).

pub mod base;
pub mod block_cache;
pub mod command;
pub mod compaction;
pub mod config;
pub mod datadir;
pub mod engine;
pub mod fault;
pub mod glob;
pub mod listener;
pub mod manifest;
pub mod memtable;
pub mod metrics_http;
pub mod resp;
pub mod runtime;
pub mod server;
pub mod shard;
pub mod sstable;
pub mod store;
pub mod timeseries;
pub mod version;
pub mod wal;
