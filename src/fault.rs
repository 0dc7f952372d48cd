//! Fault injection for tests: failures that cannot be produced on demand from outside the
//! process, switched on by environment variables that are read once. A server started
//! without them behaves exactly as if this module did not exist.
//!
//! | variable | effect |
//! | --- | --- |
//! | `TSKV_FAULT_SHARD_PANIC=<i>` | shard `i` panics when it first executes a key operation |
//! | `TSKV_FAULT_SHARD_OPEN_HANG=<i>` | shard `i` never finishes opening (a stuck recovery) |
//! | `TSKV_FAULT_SHARD_STOP_HANG=<i>` | shard `i` never finishes stopping (a stuck drain) |
//! | `TSKV_FAULT_FALLOCATE_EOPNOTSUPP=1` | `fallocate` fails with `EOPNOTSUPP`, as on FUSE and some network file systems |
//! | `TSKV_FAULT_FDATASYNC_EIO=<i>:<n>` | the `n`th fdatasync completion (from 1; WAL, SSTable and periodic alike) of shard `i`'s ring reports `EIO` |
//! | `TSKV_FAULT_WRITE_EIO=<i>:<n>` | the `n`th write completion (WAL batches and SSTables) of shard `i`'s ring reports `EIO` |
//! | `TSKV_FAULT_COMPACTION_PAUSED=1` | the compaction core starts no compaction (flushes are still installed), so level 0 only grows |
//! | `TSKV_FAULT_RULE_HANDOVER_HELD=<i>` | shard `i` hands no closed bucket and no unlink of a compaction rule to another shard (they stay pending, as after a crash before the hand-over) |
//! | `TSKV_FAULT_RULE_LINKED_IGNORED=<i>` | shard `i` ignores the other shard's answer to its `TS.CREATERULE` across shards (as after a crash between the destination's link and the rule) |
//!
//! The ring faults replace the result of a completion that really happened, as a disk
//! error reported at completion does: the bytes may well be on disk, but the shard must
//! act as if they were not.

use std::sync::OnceLock;

/// Environment variable: the index of a shard that panics at its first key operation.
pub const SHARD_PANIC_VAR: &str = "TSKV_FAULT_SHARD_PANIC";
/// Environment variable: the index of a shard that never finishes opening.
pub const SHARD_OPEN_HANG_VAR: &str = "TSKV_FAULT_SHARD_OPEN_HANG";
/// Environment variable: the index of a shard that never finishes stopping.
pub const SHARD_STOP_HANG_VAR: &str = "TSKV_FAULT_SHARD_STOP_HANG";
/// Environment variable: `1` makes `fallocate` fail with `EOPNOTSUPP`.
pub const FALLOCATE_EOPNOTSUPP_VAR: &str = "TSKV_FAULT_FALLOCATE_EOPNOTSUPP";
/// Environment variable: `<shard>:<n>`, the `n`th fdatasync completion of the shard's ring
/// fails with `EIO`.
pub const FDATASYNC_EIO_VAR: &str = "TSKV_FAULT_FDATASYNC_EIO";
/// Environment variable: `<shard>:<n>`, the `n`th write completion of the shard's ring
/// fails with `EIO`.
pub const WRITE_EIO_VAR: &str = "TSKV_FAULT_WRITE_EIO";
/// Environment variable: `1` makes the compaction core start no compaction.
pub const COMPACTION_PAUSED_VAR: &str = "TSKV_FAULT_COMPACTION_PAUSED";

/// Environment variable: the index of a shard that hands no closed bucket and no unlink
/// of a compaction rule to another shard.
pub const RULE_HANDOVER_HELD_VAR: &str = "TSKV_FAULT_RULE_HANDOVER_HELD";

/// Environment variable: the index of a shard that ignores the answers to its
/// `TS.CREATERULE`s across shards.
pub const RULE_LINKED_IGNORED_VAR: &str = "TSKV_FAULT_RULE_LINKED_IGNORED";

/// The faults switched on, read from the environment at first use.
#[derive(Debug, Default)]
struct Faults {
    shard_panic: Option<usize>,
    shard_open_hang: Option<usize>,
    shard_stop_hang: Option<usize>,
    fallocate_eopnotsupp: bool,
    fdatasync_eio: Option<(usize, u64)>,
    write_eio: Option<(usize, u64)>,
    compaction_paused: bool,
    rule_handover_held: Option<usize>,
    rule_linked_ignored: Option<usize>,
}

fn faults() -> &'static Faults {
    static FAULTS: OnceLock<Faults> = OnceLock::new();
    FAULTS.get_or_init(|| {
        let index = |var: &str| std::env::var(var).ok().and_then(|v| v.parse().ok());
        let faults = Faults {
            shard_panic: index(SHARD_PANIC_VAR),
            shard_open_hang: index(SHARD_OPEN_HANG_VAR),
            shard_stop_hang: index(SHARD_STOP_HANG_VAR),
            fallocate_eopnotsupp: std::env::var(FALLOCATE_EOPNOTSUPP_VAR).is_ok_and(|v| v == "1"),
            fdatasync_eio: shard_and_count(FDATASYNC_EIO_VAR),
            write_eio: shard_and_count(WRITE_EIO_VAR),
            compaction_paused: std::env::var(COMPACTION_PAUSED_VAR).is_ok_and(|v| v == "1"),
            rule_handover_held: index(RULE_HANDOVER_HELD_VAR),
            rule_linked_ignored: index(RULE_LINKED_IGNORED_VAR),
        };
        if faults.shard_panic.is_some()
            || faults.shard_open_hang.is_some()
            || faults.shard_stop_hang.is_some()
            || faults.fallocate_eopnotsupp
            || faults.fdatasync_eio.is_some()
            || faults.write_eio.is_some()
            || faults.compaction_paused
            || faults.rule_handover_held.is_some()
            || faults.rule_linked_ignored.is_some()
        {
            tracing::warn!("fault injection is on: {faults:?}");
        }
        faults
    })
}

/// Whether shard `index` must panic now (at a key operation).
pub fn shard_panics(index: usize) -> bool {
    faults().shard_panic == Some(index)
}

/// Whether shard `index` must never finish opening.
pub fn shard_open_hangs(index: usize) -> bool {
    faults().shard_open_hang == Some(index)
}

/// Whether shard `index` must never finish stopping.
pub fn shard_stop_hangs(index: usize) -> bool {
    faults().shard_stop_hang == Some(index)
}

/// Whether shard `index` must hold its closed buckets and unlinks bound for other shards.
pub fn rule_handover_held(index: usize) -> bool {
    faults().rule_handover_held == Some(index)
}

/// Whether shard `index` must ignore the answers to its `TS.CREATERULE`s across shards.
pub fn rule_linked_ignored(index: usize) -> bool {
    faults().rule_linked_ignored == Some(index)
}

/// Whether `fallocate` must fail with `EOPNOTSUPP`.
pub fn fallocate_unsupported() -> bool {
    faults().fallocate_eopnotsupp
}

/// Whether the compaction core must start no compaction.
pub fn compaction_paused() -> bool {
    faults().compaction_paused
}

/// Parses `<shard>:<n>` from `var`; `None` if unset or malformed.
fn shard_and_count(var: &str) -> Option<(usize, u64)> {
    let value = std::env::var(var).ok()?;
    let (shard, n) = value.split_once(':')?;
    Some((shard.parse().ok()?, n.parse().ok()?))
}

/// The ring-completion faults of one shard: counts its fdatasync and write completions and
/// turns the chosen one into `EIO`.
#[derive(Debug, Default)]
pub struct RingFaults {
    fdatasync_fail_at: Option<u64>,
    write_fail_at: Option<u64>,
    fdatasyncs: u64,
    writes: u64,
}

impl RingFaults {
    /// The faults switched on for shard `index` (none, usually).
    pub fn for_shard(index: usize) -> Self {
        let pick = |fault: Option<(usize, u64)>| fault.filter(|&(i, _)| i == index).map(|(_, n)| n);
        Self {
            fdatasync_fail_at: pick(faults().fdatasync_eio),
            write_fail_at: pick(faults().write_eio),
            ..Self::default()
        }
    }

    /// Counts `completion` and replaces its result with `EIO` if it is the chosen one.
    pub fn inject(&mut self, completion: &mut crate::runtime::uring::Completion) {
        use crate::runtime::uring::OpKind;
        let (count, fail_at) = match completion.kind {
            OpKind::Fdatasync => (&mut self.fdatasyncs, self.fdatasync_fail_at),
            OpKind::Write => (&mut self.writes, self.write_fail_at),
            OpKind::Read => return,
        };
        *count += 1;
        if fail_at == Some(*count) {
            tracing::warn!(kind = ?completion.kind, n = *count, "fault injection: completion fails with EIO");
            completion.result = Err(std::io::Error::from_raw_os_error(libc::EIO));
        }
    }
}
