//! `SCAN`, `KEYS` and `RANDOMKEY` on one shard: streaming range scans over the shard's LSM, and the
//! saved positions that make a `SCAN` cursor a plain integer, as clients expect.
//!
//! A shard's keys are scanned in key order, so a position is "the next key to look at".
//! Keys can be long, and clients parse the cursor as a 64-bit integer, so the position is
//! kept here, in a ring of [`SCAN_POSITIONS_MAX`] slots, and the cursor names the slot
//! (Kvrocks keeps a cursor dictionary for the same reason):
//!
//! ```text
//!  cursor (u64) = shard u16 | generation u32 | slot u16        (high to low bits)
//!  cursor 0     = the start of shard 0;  shard s with generation 0 = the start of shard s
//! ```
//!
//! An iteration keeps one slot: each step writes its new position into the slot it resumed
//! from, under a new generation, so only the newest cursor of an iteration is valid. New
//! iterations take the next slot in turn; a cursor whose slot was since reused gets
//! `ERR invalid cursor`, which needs more than [`SCAN_POSITIONS_MAX`] iterations started
//! on the shard meanwhile.
//!
//! Guarantee, as Redis's: a key present from the start to the end of a full iteration is
//! returned at least once, since every step resumes at the first key after the last one
//! examined, whatever flushes and compactions did meanwhile (a position is a key, not a
//! file offset).

use super::mesh::{Op, OpResult, ShardId};
use super::scan_walk::{KeyFilter, Walk, WalkEnd};
use crate::store::ShardStore;
use crate::timeseries::keys::{self, KeyClass};

/// The live user keys of a shard, as counted at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyCount {
    /// Live user keys: strings and series, never internal entries (`DBSIZE`).
    pub keys: u64,
    /// How many of them have an expiry deadline (`INFO keyspace`'s `expires`).
    pub expires: u64,
    /// The earliest of their deadlines (absolute Unix ms): the count is stale once the
    /// clock passes it.
    pub first_deadline_ms: Option<u64>,
}

/// Counts the live user keys of `store` ([`KeyCount`]).
///
/// # Errors
/// A failed read.
pub fn user_key_count(store: &ShardStore) -> Result<KeyCount, crate::base::StoreError> {
    snapshot_user_key_count(&store.snapshot(Some(&keys::USER_KEYS_END)))
}

/// Counts the live user keys of a store snapshot ([`KeyCount`]), as [`user_key_count`]
/// does: a string counts once, a series once unless a live string of its name shadows it,
/// internal entries never. Reads the snapshot's tables with `pread`: run it off the
/// shard's loop.
///
/// # Errors
/// A failed read.
pub fn snapshot_user_key_count(
    snapshot: &crate::store::Snapshot,
) -> Result<KeyCount, crate::base::StoreError> {
    let mut count = KeyCount::default();
    for entry in snapshot.scan() {
        let entry = entry?;
        if entry.key.as_slice() >= keys::USER_KEYS_END.as_slice() {
            break;
        }
        if entry.value.is_none() {
            continue;
        }
        let live_user_key = match keys::classify(&entry.key) {
            KeyClass::String => true,
            KeyClass::Series(user) => !snapshot.is_live(user)?,
            KeyClass::Internal => false,
        };
        if live_user_key {
            count.keys += 1;
            if let Some(deadline) = entry.expire_at_ms {
                count.expires += 1;
                count.first_deadline_ms = Some(
                    count
                        .first_deadline_ms
                        .map_or(deadline, |d| d.min(deadline)),
                );
            }
        }
    }
    Ok(count)
}

/// Saved `SCAN` positions per shard: the iterations that can run at once on it.
pub const SCAN_POSITIONS_MAX: usize = 4096;
/// Most entries one `SCAN` step examines, whatever its `COUNT` (a hint, as in Redis).
pub const SCAN_STEP_ENTRIES_MAX: usize = 100_000;

const SLOT_BITS: u32 = 16;
const GENERATION_BITS: u32 = 32;
const SHARD_SHIFT: u32 = SLOT_BITS + GENERATION_BITS;

// The slot number must fit its field.
const _: () = assert!(SCAN_POSITIONS_MAX <= 1 << SLOT_BITS);

/// The shard a cursor points into.
pub fn cursor_shard(cursor: u64) -> ShardId {
    ShardId((cursor >> SHARD_SHIFT) as usize)
}

/// The cursor of the start of shard `shard`.
fn start_of(shard: usize) -> u64 {
    (shard as u64) << SHARD_SHIFT
}

/// Saved positions of the `SCAN` iterations on one shard.
#[derive(Debug)]
pub struct ScanPositions {
    slots: Vec<Option<(u32, Vec<u8>)>>,
    next_slot: usize,
    next_generation: u32,
}

impl Default for ScanPositions {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            next_slot: 0,
            next_generation: 1,
        }
    }
}

impl ScanPositions {
    fn generation(&mut self) -> u32 {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        generation
    }

    /// Saves `next_key` in `slot` (or a fresh slot) and returns the cursor naming it.
    fn save(&mut self, shard: ShardId, slot: Option<usize>, next_key: Vec<u8>) -> u64 {
        let slot = slot.unwrap_or_else(|| {
            let slot = self.next_slot;
            self.next_slot = (self.next_slot + 1) % SCAN_POSITIONS_MAX;
            slot
        });
        if self.slots.len() <= slot {
            self.slots.resize(slot + 1, None);
        }
        let generation = self.generation();
        self.slots[slot] = Some((generation, next_key));
        start_of(shard.0) | (u64::from(generation) << SLOT_BITS) | slot as u64
    }

    /// The slot and saved key of `cursor`; `Ok(None)` for the start of the shard.
    fn resolve(&self, cursor: u64) -> Result<Option<(usize, &[u8])>, ()> {
        let generation = ((cursor >> SLOT_BITS) & ((1 << GENERATION_BITS) - 1)) as u32;
        let slot = (cursor & ((1 << SLOT_BITS) - 1)) as usize;
        if generation == 0 {
            return if slot == 0 { Ok(None) } else { Err(()) };
        }
        match self.slots.get(slot) {
            Some(Some((saved, key))) if *saved == generation => Ok(Some((slot, key))),
            _ => Err(()),
        }
    }

    fn release(&mut self, slot: Option<usize>) {
        if let Some(entry) = slot.and_then(|s| self.slots.get_mut(s)) {
            *entry = None;
        }
    }
}

/// The walk that `op` runs on shard `shard`, or `None` if `op` is not `SCAN` (of this
/// shard, with a valid cursor), `KEYS` or `RANDOMKEY`. A `KEYS` walk stops once it kept
/// `keys_whole_bytes_max` bytes of keys (`usize::MAX`: it keeps them all).
pub fn walk_for(
    op: &Op<&[u8]>,
    positions: &ScanPositions,
    shard: ShardId,
    keys_whole_bytes_max: usize,
) -> Option<Walk> {
    match *op {
        Op::Scan {
            shard: scanned,
            cursor,
            count,
            pattern,
            type_name,
        } if scanned == shard => {
            let start = match positions.resolve(cursor) {
                Ok(Some((_, key))) => key.to_vec(),
                Ok(None) => Vec::new(),
                Err(()) => return None,
            };
            let filter = KeyFilter {
                pattern: pattern.map(<[u8]>::to_vec),
                type_name: type_name.map(<[u8]>::to_vec),
            };
            Some(Walk::new(
                start,
                count.clamp(1, SCAN_STEP_ENTRIES_MAX),
                filter,
            ))
        }
        Op::Keys(pattern) => {
            let filter = KeyFilter {
                pattern: Some(pattern.to_vec()),
                type_name: None,
            };
            let walk = Walk::batch(Vec::new(), usize::MAX, keys_whole_bytes_max, filter);
            Some(walk.with_round_entries_max(crate::config::KEYS_WALK_ROUND_ENTRIES_MAX))
        }
        // The first live key at or after a random 8-byte position, wrapping to the first
        // key. Keys that follow a long gap in key order are picked more often than others
        // (Redis's pick is not uniform either); the walk skips tombstones, so it costs more
        // on a shard with many deletions not yet compacted away.
        Op::RandomKey => Some(Walk::first_from(rand::random::<[u8; 8]>().to_vec())),
        _ => None,
    }
}

/// The reply of `op` (`SCAN`, `KEYS` or `RANDOMKEY`) from its finished `walk`: for `SCAN`,
/// the matching keys with the next cursor (the walk's stop saved in the iteration's slot).
pub fn walk_result(
    op: &Op<&[u8]>,
    walk: Walk,
    positions: &mut ScanPositions,
    shards: usize,
) -> OpResult {
    let end = walk.end.expect("the walk has ended");
    if let WalkEnd::Failed(message) = end {
        return OpResult::Err(message);
    }
    match *op {
        Op::Scan { shard, cursor, .. } => {
            let Ok(resolved) = positions.resolve(cursor) else {
                return OpResult::Err("ERR invalid cursor".into());
            };
            let slot = resolved.map(|(slot, _)| slot);
            let next_cursor = match end {
                WalkEnd::At(key) => positions.save(shard, slot, key),
                _ => {
                    positions.release(slot);
                    let next_shard = shard.0 + 1;
                    if next_shard < shards {
                        start_of(next_shard)
                    } else {
                        0
                    }
                }
            };
            OpResult::Keys {
                next_cursor,
                keys: walk.keys,
            }
        }
        Op::RandomKey => OpResult::Value(walk.keys.into_iter().next()),
        _ => OpResult::Keys {
            next_cursor: 0,
            keys: walk.keys,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_fields_round_trip() {
        let mut positions = ScanPositions::default();
        let cursor = positions.save(ShardId(3), None, b"key:42".to_vec());
        assert_eq!(cursor_shard(cursor), ShardId(3));
        let (slot, key) = positions.resolve(cursor).unwrap().unwrap();
        assert_eq!((slot, key), (0, &b"key:42"[..]));
        assert_eq!(positions.resolve(start_of(3)), Ok(None));
        assert_eq!(cursor_shard(0), ShardId(0));
    }

    #[test]
    fn a_step_reuses_its_slot_and_invalidates_the_old_cursor() {
        let mut positions = ScanPositions::default();
        let first = positions.save(ShardId(0), None, b"a".to_vec());
        let second = positions.save(ShardId(0), Some(0), b"b".to_vec());
        assert_eq!(positions.resolve(first), Err(()));
        assert_eq!(positions.resolve(second).unwrap().unwrap().1, b"b");
    }

    #[test]
    fn a_reused_slot_invalidates_the_cursor() {
        let mut positions = ScanPositions::default();
        let old = positions.save(ShardId(0), None, b"a".to_vec());
        for _ in 0..SCAN_POSITIONS_MAX {
            positions.save(ShardId(0), None, b"z".to_vec());
        }
        assert_eq!(positions.resolve(old), Err(()));
        assert_eq!(positions.resolve(old ^ 1), Err(()));
    }
}
