//! Time series: the RedisTimeSeries 1.10 command set (`TS.CREATE`, `TS.ADD`, `TS.MADD`,
//! `TS.RANGE`, ...) on Gorilla-compressed chunks stored in the shard's own LSM tree.
//!
//! # How a series lives in the LSM
//!
//! A series belongs to the shard of its user key, like any key, and every entry of it is an
//! ordinary LSM entry of that shard, written through the same WAL, group commit, memtable,
//! flush and compaction path as a `SET`: a time-series write is acknowledged after the
//! fdatasync that covers it, and recovery needs nothing of its own.
//!
//! ```text
//!   user key space (strings, raw bytes as before)     internal key space (first byte 0xFF)
//!  ┌───────────────────────────────────┐  ┌──────────────────────────────────────────────────┐
//!  │ "cpu:1" → "42"   "temp" → "21.5"  │  │ FF 01 "sensor:7"          → meta (settings, id)  │
//!  └───────────────────────────────────┘  │ FF 02 id:BE8 last_ts:BE8  → Gorilla chunk + CRC  │
//!                                         │ FF 02 id:BE8 last_ts:BE8  → Gorilla chunk + CRC  │
//!   TS.ADD sensor:7 ts v                  │ FF 03 id:BE8 ts:BE8       → f64 (checkpoint) │
//!     ─► WAL record "put FF 03 id ts → v" │ FF 06 id:BE8              → seal mark          │
//!        + the series' open samples       └──────────────────────────────────────────────────┘
//!          in memory (no memtable entry)
//!     ─► after ~a chunk of open samples: seal = encode them (merged with any chunk they
//!        overlap) as chunks, put the chunks and the seal mark
//!     ─► before the memtable freezes: checkpoint = insert the open samples it covers
//!   TS.RANGE id from to ─► seek FF 02 id from (chunks whose last ts >= from), merged by
//!                          time with the open samples (an open sample wins a tie)
//! ```
//!
//! * **Key space.** A user key may not begin with byte `0xFF` (the command gets
//!   [`keys::RESERVED_KEY_ERROR`]), so internal entries never collide with user keys, and
//!   string values are stored exactly as before: an existing data directory means what it
//!   meant. `SCAN`, `KEYS` and `DBSIZE` show a series by its user key (from its metadata
//!   entry) and never show chunks or samples. A string write that replaces a key (`SET`,
//!   `MSET`) first deletes a series of that name (metadata, chunks, samples), as Redis's
//!   `SET` replaces a key of any type; the shard knows its series' names in memory
//!   ([`directory`]), so a `SET` of a key that is no series reads nothing more. (A data
//!   directory written before that rule may hold a string and a series of one name: the
//!   string wins, and `DEL` removes both.)
//! * **Chunks** ([`chunk`]) are keyed by series id and *last* timestamp, big-endian, so a
//!   time range is a key range and the chunk that may hold `t` is the first at or after
//!   `(id, t)`. The series id is the sequence number of the write that created the series,
//!   so a deleted series' entries never mix with a new one of the same name.
//! * **Samples are durable one by one**: each `TS.ADD` logs one small WAL record (the WAL
//!   carries the sample, not the chunk) and keeps the sample among the series' open
//!   samples in memory ([`open`]); sealing writes them as a chunk. Out-of-order samples
//!   are open samples too; sealing merges them into the chunks they overlap. How the WAL
//!   segments holding open samples are kept until the samples are in an SSTable, and how
//!   a restart tells open samples from sealed ones, is in [`open`].
//! * **State in memory** ([`series::SeriesCache`]): per series touched, its settings, its
//!   newest sample, its open samples and how far its chunks reach; rebuilt from the store
//!   after a restart.
//!
//! Samples follow Gorilla (T. Pelkonen et al., "Gorilla: A Fast, Scalable, In-Memory Time
//! Series Database", PVLDB 8(12), 2015): delta-of-delta timestamps, XOR'd values.
//!
//! Modules, in data-flow order: [`args`] parses requests (pure), [`exec`] runs them on the
//! owning shard ([`multi`] the label-filtered commands, on every shard, [`group`] their
//! `GROUPBY`, [`filter`] their label filter), [`series`] is the storage mechanism ([`open`]
//! its samples in memory, `seal` writing them as chunks), [`directory`] the shard's series names and labels in memory
//! ([`label_index`] the secondary index a filter is answered from), [`keys`] the key
//! layout ([`marks`] how `TS.DEL` cuts a chunk without rewriting it), [`meta`] the settings' format, [`chunk`] (with
//! [`bits`]) the chunk codec, [`aggregate`] the aggregators, [`reply`] the reply shapes
//! (RESP2 and RESP3), [`info`] `TS.INFO`, [`plan`] what a request will read (so the shard reads it through its ring first), [`rules`] the compaction rules ([`handover`] their
//! buckets bound for another shard), [`undo`] a transaction's sample writes written back.

pub mod aggregate;
pub mod args;
pub mod bits;
pub mod chunk;
mod delete;
pub mod directory;
pub mod exec;
pub mod filter;
pub mod group;
pub mod handover;
pub mod info;
pub mod keys;
pub mod label_index;
pub mod marks;
pub mod meta;
pub mod multi;
pub mod neighbours;
pub mod open;
pub mod plan;
pub mod range;
pub mod relocate;
pub mod reply;
pub mod rules;
mod seal;
pub mod series;
pub mod twa;
pub mod undo;
