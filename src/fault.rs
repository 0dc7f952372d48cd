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

use std::sync::OnceLock;

/// Environment variable: the index of a shard that panics at its first key operation.
pub const SHARD_PANIC_VAR: &str = "TSKV_FAULT_SHARD_PANIC";
/// Environment variable: the index of a shard that never finishes opening.
pub const SHARD_OPEN_HANG_VAR: &str = "TSKV_FAULT_SHARD_OPEN_HANG";
/// Environment variable: the index of a shard that never finishes stopping.
pub const SHARD_STOP_HANG_VAR: &str = "TSKV_FAULT_SHARD_STOP_HANG";
/// Environment variable: `1` makes `fallocate` fail with `EOPNOTSUPP`.
pub const FALLOCATE_EOPNOTSUPP_VAR: &str = "TSKV_FAULT_FALLOCATE_EOPNOTSUPP";

/// The faults switched on, read from the environment at first use.
#[derive(Debug, Default)]
struct Faults {
    shard_panic: Option<usize>,
    shard_open_hang: Option<usize>,
    shard_stop_hang: Option<usize>,
    fallocate_eopnotsupp: bool,
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
        };
        if faults.shard_panic.is_some()
            || faults.shard_open_hang.is_some()
            || faults.shard_stop_hang.is_some()
            || faults.fallocate_eopnotsupp
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

/// Whether `fallocate` must fail with `EOPNOTSUPP`.
pub fn fallocate_unsupported() -> bool {
    faults().fallocate_eopnotsupp
}
