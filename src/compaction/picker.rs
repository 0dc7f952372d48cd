//! The compaction policy: a pure function from the levels' metadata to the next task.
//!
//! **Leveled**, as LevelDB and RocksDB, rather than tiered. Our users overwrite the same
//! keys (sensor ids, counters) and read them back by key, so space amplification and read
//! cost matter more than the last bit of write throughput: leveled compaction keeps about
//! one copy of the data (live bytes within ~1.1× of one copy once it settles, against up
//! to the tier count × for tiered) and a point read touches at most one table per level
//! below L0. It pays with a higher write amplification (roughly the size ratio per level),
//! which the simulator in this module's tests measures.
//!
//! Scores, highest first, a task only at score ≥ 1:
//! - level 0: tables / `l0_trigger_tables`. Its task takes every L0 table (their ranges
//!   may overlap, so taking them all keeps "newer is higher up" true) and the L1 tables
//!   their range overlaps.
//! - level i ≥ 1: bytes / (`level1_target_bytes` × `level_size_ratio`^(i-1)). Its task
//!   takes the one table whose overlap with level i+1 is smallest relative to its own size
//!   (RocksDB's `kMinOverlappingRatio`) and the level i+1 tables it overlaps.
//!
//! The last level is never a source. A task with one input and nothing overlapping below
//! is a *trivial move*: the table changes level without being rewritten.
//!
//! **Expired versions.** A table whose earliest value deadline ([`TableMeta`]'s
//! `first_deadline_ms`, from its footer) has passed holds values no read can see. When no
//! level needs compaction, the picker takes the table whose deadline passed longest ago
//! (above the last level) into the level below, as a level-i task of that one table: the
//! merge turns its expired values into tombstones, dropped where nothing lies below (as
//! RocksDB's TTL compaction does for files past their age). Such a task, and any task whose
//! single input holds expired values, is never a trivial move, so expired values are never
//! carried down unread.

use crate::config::CompactionOptions;
use crate::manifest::LEVELS_MAX;
use crate::sstable::TableId;
use crate::version::{LevelMetas, TableMeta};

/// One compaction to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionTask {
    /// The level the inputs come from.
    pub input_level: usize,
    /// Tables taken from `input_level`.
    pub inputs: Vec<TableId>,
    /// The level the outputs go to (`input_level + 1`).
    pub output_level: usize,
    /// Tables of `output_level` whose ranges overlap the inputs; merged with them.
    pub overlapping: Vec<TableId>,
    /// No table below `output_level` overlaps the task's key range, so a tombstone
    /// shadows nothing there and can be dropped.
    pub drop_tombstones: bool,
    /// An input holds values whose deadline has passed: the task must rewrite them.
    pub reclaims_expired: bool,
}

impl CompactionTask {
    /// One input, nothing to merge with and nothing expired to drop: move the table down
    /// without rewriting it.
    pub fn is_trivial_move(&self) -> bool {
        self.inputs.len() == 1 && self.overlapping.is_empty() && !self.reclaims_expired
    }

    /// Every table the task consumes.
    pub fn all_inputs(&self) -> impl Iterator<Item = TableId> + '_ {
        self.inputs.iter().chain(&self.overlapping).copied()
    }
}

/// Target size of `level` (≥ 1) in bytes.
pub fn level_target_bytes(level: usize, options: &CompactionOptions) -> u64 {
    let ratio = options.level_size_ratio.max(2);
    (1..level).fold(options.level1_target_bytes.max(1), |bytes, _| {
        bytes.saturating_mul(ratio)
    })
}

/// How urgently `level` needs compaction; ≥ 1 means it does.
fn score(levels: &LevelMetas, level: usize, options: &CompactionOptions) -> f64 {
    if level == 0 {
        return levels[0].len() as f64 / options.l0_trigger_tables.max(1) as f64;
    }
    let bytes: u64 = levels[level].iter().map(|t| t.size_bytes).sum();
    bytes as f64 / level_target_bytes(level, options) as f64
}

/// The key range `[smallest, largest]` covering `tables` (non-empty).
fn range_of<'a>(tables: impl Iterator<Item = &'a TableMeta>) -> Option<(&'a [u8], &'a [u8])> {
    tables.fold(None, |range, t| {
        let (lo, hi) = range.unwrap_or((t.smallest_key.as_slice(), t.largest_key.as_slice()));
        Some((
            lo.min(t.smallest_key.as_slice()),
            hi.max(t.largest_key.as_slice()),
        ))
    })
}

fn overlapping<'a>(level: &'a [TableMeta], lo: &[u8], hi: &[u8]) -> Vec<&'a TableMeta> {
    level.iter().filter(|t| t.overlaps(lo, hi)).collect()
}

/// About how many bytes compaction must still rewrite to bring every level within its
/// target (RocksDB's "pending compaction bytes", simplified): all of level 0 once it holds
/// `l0_trigger_tables` tables, plus each deeper level's bytes above its target.
pub fn pending_compaction_bytes(levels: &LevelMetas, options: &CompactionOptions) -> u64 {
    let level_bytes = |level: usize| -> u64 { levels[level].iter().map(|t| t.size_bytes).sum() };
    let level0 = if levels[0].len() >= options.l0_trigger_tables.max(1) {
        level_bytes(0)
    } else {
        0
    };
    let deeper: u64 = (1..levels.len().min(LEVELS_MAX - 1))
        .map(|level| level_bytes(level).saturating_sub(level_target_bytes(level, options)))
        .sum();
    level0 + deeper
}

/// Whether `table` holds a value whose deadline has passed at `now_ms`.
fn holds_expired(table: &TableMeta, now_ms: u64) -> bool {
    crate::base::is_expired(table.first_deadline_ms, now_ms)
}

/// The next compaction at `now_ms` (Unix ms, for expired values), or `None` if every
/// level is within its target and no table holds an expired value.
///
/// `levels` must have [`LEVELS_MAX`] entries shaped as a [`crate::version::Version`]'s.
pub fn pick(
    levels: &LevelMetas,
    options: &CompactionOptions,
    now_ms: u64,
) -> Option<CompactionTask> {
    debug_assert_eq!(levels.len(), LEVELS_MAX);
    let (level, best) = (0..LEVELS_MAX - 1)
        .map(|level| (level, score(levels, level, options)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    if best < 1.0 {
        return pick_expired(levels, now_ms);
    }
    let inputs: Vec<&TableMeta> = if level == 0 {
        levels[0].iter().collect()
    } else {
        let below = &levels[level + 1];
        let ratio = |t: &TableMeta| {
            let overlap: u64 = overlapping(below, &t.smallest_key, &t.largest_key)
                .iter()
                .map(|o| o.size_bytes)
                .sum();
            overlap as f64 / t.size_bytes.max(1) as f64
        };
        let chosen = levels[level]
            .iter()
            .min_by(|a, b| ratio(a).total_cmp(&ratio(b)))?;
        vec![chosen]
    };
    Some(task(levels, level, &inputs, now_ms))
}

/// A task that rewrites every table of `level` into the level below (for a manual full
/// compaction, [`super::settle_full`]), `None` if the level is empty or the last.
pub fn rewrite_task(levels: &LevelMetas, level: usize, now_ms: u64) -> Option<CompactionTask> {
    if level + 1 >= LEVELS_MAX || levels[level].is_empty() {
        return None;
    }
    let inputs: Vec<&TableMeta> = levels[level].iter().collect();
    Some(task(levels, level, &inputs, now_ms))
}

/// The task that merges `inputs` of `level` into the level below.
fn task(levels: &LevelMetas, level: usize, inputs: &[&TableMeta], now_ms: u64) -> CompactionTask {
    let (lo, hi) = range_of(inputs.iter().copied()).expect("a task has inputs");
    let output_level = level + 1;
    let overlapping_tables = overlapping(&levels[output_level], lo, hi);
    let (lo, hi) =
        range_of(inputs.iter().chain(&overlapping_tables).copied()).expect("a task has inputs");
    let drop_tombstones = levels[output_level + 1..]
        .iter()
        .all(|deeper| overlapping(deeper, lo, hi).is_empty());
    CompactionTask {
        input_level: level,
        inputs: inputs.iter().map(|t| t.id).collect(),
        output_level,
        overlapping: overlapping_tables.iter().map(|t| t.id).collect(),
        drop_tombstones,
        reclaims_expired: inputs.iter().any(|t| holds_expired(t, now_ms)),
    }
}

/// The table above the last level whose earliest deadline passed longest ago, merged into
/// the level below; level 0 goes whole, as for its size-triggered task.
fn pick_expired(levels: &LevelMetas, now_ms: u64) -> Option<CompactionTask> {
    let (level, table) = levels[..LEVELS_MAX - 1]
        .iter()
        .enumerate()
        .flat_map(|(level, tables)| tables.iter().map(move |t| (level, t)))
        .filter(|(_, t)| holds_expired(t, now_ms))
        .min_by_key(|(_, t)| t.first_deadline_ms)?;
    let inputs: Vec<&TableMeta> = if level == 0 {
        levels[0].iter().collect()
    } else {
        vec![table]
    };
    Some(task(levels, level, &inputs, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: u64, lo: &str, hi: &str, size_bytes: u64) -> TableMeta {
        TableMeta {
            id: TableId(id),
            smallest_key: lo.as_bytes().to_vec(),
            largest_key: hi.as_bytes().to_vec(),
            size_bytes,
            first_deadline_ms: None,
        }
    }

    fn pick(levels: &LevelMetas, options: &CompactionOptions) -> Option<CompactionTask> {
        super::pick(levels, options, NOW_MS)
    }

    const NOW_MS: u64 = 1_000_000;

    #[test]
    fn a_table_holding_expired_values_is_rewritten_when_nothing_else_is_due() {
        let mut levels = empty();
        let mut expired = meta(3, "m", "p", 100);
        expired.first_deadline_ms = Some(NOW_MS - 10);
        let mut later = meta(4, "q", "t", 100);
        later.first_deadline_ms = Some(NOW_MS + 10);
        levels[1] = vec![meta(1, "a", "c", 100), expired, later];
        levels[2] = vec![meta(2, "n", "o", 100)];
        let task = pick(&levels, &options()).expect("the expired table is due");
        assert_eq!(task.inputs, vec![TableId(3)]);
        assert_eq!(task.overlapping, vec![TableId(2)]);
        assert!(task.reclaims_expired && !task.is_trivial_move());
        // Alone in its range, it is still rewritten rather than moved.
        levels[2].clear();
        let task = pick(&levels, &options()).unwrap();
        assert!(task.overlapping.is_empty() && task.drop_tombstones);
        assert!(
            !task.is_trivial_move(),
            "moving it would carry expired values down"
        );
        // Before its deadline, nothing is due.
        levels[1][1].first_deadline_ms = Some(NOW_MS);
        assert_eq!(pick(&levels, &options()), None);
    }

    fn options() -> CompactionOptions {
        CompactionOptions {
            l0_trigger_tables: 4,
            level1_target_bytes: 1000,
            level_size_ratio: 10,
            target_table_bytes: 250,
        }
    }

    fn empty() -> LevelMetas {
        vec![Vec::new(); LEVELS_MAX]
    }

    #[test]
    fn pending_bytes_count_level_0_past_its_trigger_and_what_deeper_levels_exceed() {
        let mut levels = empty();
        levels[0] = vec![meta(1, "a", "z", 100); 3];
        levels[1] = vec![meta(2, "a", "m", 900)];
        assert_eq!(pending_compaction_bytes(&levels, &options()), 0);
        levels[0].push(meta(3, "a", "z", 100));
        assert_eq!(pending_compaction_bytes(&levels, &options()), 400);
        levels[1].push(meta(4, "n", "z", 600));
        assert_eq!(pending_compaction_bytes(&levels, &options()), 400 + 500);
    }

    #[test]
    fn nothing_to_do_below_every_target() {
        let mut levels = empty();
        levels[0] = vec![meta(1, "a", "z", 100); 3];
        levels[1] = vec![meta(2, "a", "m", 900)];
        assert_eq!(pick(&levels, &options()), None);
    }

    #[test]
    fn level0_takes_all_its_tables_and_the_overlapping_level1_tables() {
        let mut levels = empty();
        levels[0] = vec![
            meta(5, "c", "f", 100),
            meta(6, "e", "h", 100),
            meta(7, "d", "e", 100),
            meta(8, "g", "g", 100),
        ];
        levels[1] = vec![
            meta(1, "a", "b", 100),
            meta(2, "c", "d", 100),
            meta(3, "h", "k", 100),
            meta(4, "m", "p", 100),
        ];
        let task = pick(&levels, &options()).unwrap();
        assert_eq!(task.input_level, 0);
        assert_eq!(
            task.inputs,
            vec![TableId(5), TableId(6), TableId(7), TableId(8)]
        );
        assert_eq!(task.overlapping, vec![TableId(2), TableId(3)]);
        assert!(task.drop_tombstones, "nothing below level 1");
        assert!(!task.is_trivial_move());
    }

    #[test]
    fn tombstones_kept_when_a_deeper_level_overlaps() {
        let mut levels = empty();
        levels[0] = vec![meta(5, "c", "f", 100); 4];
        levels[2] = vec![meta(1, "e", "e", 100)];
        let task = pick(&levels, &options()).unwrap();
        assert!(!task.drop_tombstones);
        levels[2] = vec![meta(1, "x", "y", 100)];
        assert!(pick(&levels, &options()).unwrap().drop_tombstones);
    }

    #[test]
    fn deeper_level_over_target_takes_the_table_with_least_overlap() {
        let mut levels = empty();
        levels[1] = vec![
            meta(1, "a", "c", 400),
            meta(2, "d", "f", 400),
            meta(3, "g", "i", 400),
        ];
        levels[2] = vec![meta(10, "a", "b", 900), meta(11, "h", "h", 50)];
        let task = pick(&levels, &options()).unwrap();
        assert_eq!(task.input_level, 1);
        assert_eq!(task.inputs, vec![TableId(2)], "no overlap below: cheapest");
        assert!(task.is_trivial_move());
    }

    #[test]
    fn the_most_urgent_level_goes_first_and_the_last_level_never() {
        let mut levels = empty();
        levels[0] = vec![meta(1, "a", "b", 10); 4]; // score 1
        levels[1] = vec![meta(2, "a", "z", 3000)]; // score 3
        assert_eq!(pick(&levels, &options()).unwrap().input_level, 1);
        let mut last_only = empty();
        last_only[LEVELS_MAX - 1] = vec![meta(3, "a", "z", u64::MAX / 2)];
        assert_eq!(pick(&last_only, &options()), None);
    }

    #[test]
    fn level_targets_grow_by_the_ratio() {
        let o = options();
        assert_eq!(level_target_bytes(1, &o), 1000);
        assert_eq!(level_target_bytes(2, &o), 10_000);
        assert_eq!(level_target_bytes(3, &o), 100_000);
    }
}
