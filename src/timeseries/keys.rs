//! Where a series lives in the shard's key space: internal keys behind a reserved first
//! byte, and the rule that keeps user keys out of it.
//!
//! ```text
//!  user string          <user key>                      first byte != 0xFF
//!  series metadata      0xFF 0x01 <user key>             value: meta::SeriesMeta
//!  sealed chunk         0xFF 0x02 <series id u64 BE> <last ts_ms u64 BE>   value: chunk
//!  deletion mark        0xFF 0x02 <series id u64 BE> <chunk's last ts_ms u64 BE>
//!                                 <from ms u64 BE> <to ms u64 BE>          value: empty
//!  unsealed sample      0xFF 0x03 <series id u64 BE> <ts_ms u64 BE>        value: f64 LE
//!  pending bucket       0xFF 0x04 <source series id u64 BE> <bucket start ms u64 BE>
//!                                 <destination user key>       value: source user key
//!  pending unlink       0xFF 0x05 <side u8> <source key len u32 BE> <source user key>
//!                                 <destination user key>       value: empty
//!  seal mark            0xFF 0x06 <series id u64 BE>                       value: empty
//! ```
//!
//! A seal mark is rewritten by every seal of the series: a sample entry with an older
//! sequence number than the mark's was sealed into a chunk (see [`super::open`]).
//!
//! A pending bucket is a closed bucket of a compaction rule whose destination lives on
//! another shard, not yet acknowledged by that shard; a pending unlink tells the shard of
//! a deleted series' rule partner to let go of it (side 0: the destination's shard clears
//! its source, side 1: the source's shard drops its rule), until that shard acknowledges
//! it (see [`super::handover`]).
//!
//! Big-endian ids and timestamps make key order time order, so a time range of one series
//! is one key range. A sealed chunk is keyed by its *last* timestamp: the first chunk at or
//! after `(id, t)` is the one that holds `t` if any does, found with one forward seek.
//! Internal keys are routed to a shard by the series' user key, never by their own bytes.

/// The first byte of every internal key; refused as the first byte of a user key.
pub const RESERVED_PREFIX: u8 = 0xFF;
const META_TAG: u8 = 0x01;
const CHUNK_TAG: u8 = 0x02;
const SAMPLE_TAG: u8 = 0x03;
const PENDING_TAG: u8 = 0x04;
const UNLINK_TAG: u8 = 0x05;
const SEALED_TAG: u8 = 0x06;

/// The error a command gets for a key that begins with [`RESERVED_PREFIX`].
pub const RESERVED_KEY_ERROR: &str =
    "ERR keys beginning with byte 0xFF are reserved for tskv's internal entries";

/// What a store key is, for `SCAN`, `KEYS` and `DBSIZE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyClass<'a> {
    /// A string key (the whole key is the user key).
    String,
    /// A series' metadata: the user key it names.
    Series(&'a [u8]),
    /// A chunk or a sample: never shown.
    Internal,
}

/// Classifies a key read from the store.
pub fn classify(key: &[u8]) -> KeyClass<'_> {
    match key {
        [RESERVED_PREFIX, META_TAG, user @ ..] => KeyClass::Series(user),
        [RESERVED_PREFIX, ..] => KeyClass::Internal,
        _ => KeyClass::String,
    }
}

/// The first key past every user-visible key (strings and series metadata): a scan of
/// user keys can stop here.
pub const USER_KEYS_END: [u8; 2] = [RESERVED_PREFIX, CHUNK_TAG];

/// The metadata key of series `user_key`.
pub fn meta_key(user_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(user_key.len() + 2);
    key.extend_from_slice(&[RESERVED_PREFIX, META_TAG]);
    key.extend_from_slice(user_key);
    key
}

fn id_key(tag: u8, series_id: u64, ts_ms: u64) -> [u8; 18] {
    let mut key = [0u8; 18];
    key[0] = RESERVED_PREFIX;
    key[1] = tag;
    key[2..10].copy_from_slice(&series_id.to_be_bytes());
    key[10..].copy_from_slice(&ts_ms.to_be_bytes());
    key
}

/// The key of the chunk of `series_id` whose last sample is at `last_ts_ms`.
pub fn chunk_key(series_id: u64, last_ts_ms: u64) -> [u8; 18] {
    id_key(CHUNK_TAG, series_id, last_ts_ms)
}

/// The key of the unsealed sample of `series_id` at `ts_ms`.
pub fn sample_key(series_id: u64, ts_ms: u64) -> [u8; 18] {
    id_key(SAMPLE_TAG, series_id, ts_ms)
}

/// The seal mark of `series_id`.
pub fn sealed_key(series_id: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[0] = RESERVED_PREFIX;
    key[1] = SEALED_TAG;
    key[2..].copy_from_slice(&series_id.to_be_bytes());
    key
}

/// If `key` is a chunk key of `series_id`, its last timestamp.
pub fn chunk_key_ts(key: &[u8], series_id: u64) -> Option<u64> {
    id_key_ts(CHUNK_TAG, key, series_id)
}

/// The deletion mark of `[from_ms, to_ms]` on the chunk of `series_id` keyed at
/// `chunk_last_ts_ms`: it sorts right after that chunk's key, before the next chunk's.
pub fn mark_key(series_id: u64, chunk_last_ts_ms: u64, from_ms: u64, to_ms: u64) -> [u8; 34] {
    let mut key = [0u8; 34];
    key[..18].copy_from_slice(&chunk_key(series_id, chunk_last_ts_ms));
    key[18..26].copy_from_slice(&from_ms.to_be_bytes());
    key[26..].copy_from_slice(&to_ms.to_be_bytes());
    key
}

/// A deletion mark's key, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkKey {
    /// The series id.
    pub series_id: u64,
    /// The key timestamp of the chunk it cuts (ms).
    pub chunk_last_ts_ms: u64,
    /// First deleted timestamp (ms).
    pub from_ms: u64,
    /// Last deleted timestamp (ms), inclusive.
    pub to_ms: u64,
}

/// If `key` is a deletion mark: what it names.
pub fn parse_mark_key(key: &[u8]) -> Option<MarkKey> {
    let key: &[u8; 34] = key.try_into().ok()?;
    let (series_id, chunk_last_ts_ms) = parse_id_key(CHUNK_TAG, &key[..18])?;
    let word = |at: usize| u64::from_be_bytes(key[at..at + 8].try_into().expect("8 bytes"));
    Some(MarkKey {
        series_id,
        chunk_last_ts_ms,
        from_ms: word(18),
        to_ms: word(26),
    })
}

/// If `key` is a sample key of `series_id`, its timestamp.
pub fn sample_key_ts(key: &[u8], series_id: u64) -> Option<u64> {
    id_key_ts(SAMPLE_TAG, key, series_id)
}

/// The timestamp of `key` if a walk over series `series_id`'s sample entries up to `to_ms`
/// goes on there (`None`: the walk ends). The one rule of the reader and of the plan that
/// reads its blocks first.
pub fn sample_walk_ts(key: &[u8], series_id: u64, to_ms: u64) -> Option<u64> {
    sample_key_ts(key, series_id).filter(|&ts_ms| ts_ms <= to_ms)
}

fn id_key_ts(tag: u8, key: &[u8], series_id: u64) -> Option<u64> {
    let key: &[u8; 18] = key.try_into().ok()?;
    let head_matches =
        key[0] == RESERVED_PREFIX && key[1] == tag && key[2..10] == series_id.to_be_bytes();
    head_matches.then(|| u64::from_be_bytes(key[10..].try_into().expect("8 bytes")))
}

fn parse_id_key(tag: u8, key: &[u8]) -> Option<(u64, u64)> {
    let key: &[u8; 18] = key.try_into().ok()?;
    (key[0] == RESERVED_PREFIX && key[1] == tag).then(|| {
        (
            u64::from_be_bytes(key[2..10].try_into().expect("8 bytes")),
            u64::from_be_bytes(key[10..].try_into().expect("8 bytes")),
        )
    })
}

/// If `key` is a chunk key: its series id and last timestamp.
pub fn parse_chunk_key(key: &[u8]) -> Option<(u64, u64)> {
    parse_id_key(CHUNK_TAG, key)
}

/// If `key` is a sample key: its series id and timestamp.
pub fn parse_sample_key(key: &[u8]) -> Option<(u64, u64)> {
    parse_id_key(SAMPLE_TAG, key)
}

/// The first key of the seal marks (a scan of them starts here).
pub const SEALED_START: [u8; 2] = [RESERVED_PREFIX, SEALED_TAG];

/// If `key` is a seal mark: its series id.
pub fn parse_sealed_key(key: &[u8]) -> Option<u64> {
    let key: &[u8; 10] = key.try_into().ok()?;
    (key[..2] == SEALED_START).then(|| u64::from_be_bytes(key[2..].try_into().expect("8 bytes")))
}

/// The key of the pending bucket starting at `bucket_start_ms` of source series
/// `series_id`'s rule into `dst_key`.
pub fn pending_key(series_id: u64, bucket_start_ms: u64, dst_key: &[u8]) -> Vec<u8> {
    let mut key = id_key(PENDING_TAG, series_id, bucket_start_ms).to_vec();
    key.extend_from_slice(dst_key);
    key
}

/// The first key of the pending buckets (a scan of them starts here).
pub const PENDING_START: [u8; 2] = [RESERVED_PREFIX, PENDING_TAG];

/// If `key` is a pending bucket's key: its source series id, bucket start and
/// destination key.
pub fn parse_pending_key(key: &[u8]) -> Option<(u64, u64, &[u8])> {
    if key.len() < 18 || key[..2] != PENDING_START {
        return None;
    }
    let series_id = u64::from_be_bytes(key[2..10].try_into().expect("8 bytes"));
    let start_ms = u64::from_be_bytes(key[10..18].try_into().expect("8 bytes"));
    Some((series_id, start_ms, &key[18..]))
}

/// The first key of the pending unlinks (a scan of them starts here).
pub const UNLINK_START: [u8; 2] = [RESERVED_PREFIX, UNLINK_TAG];

/// The key of a pending unlink of the rule from `src_key` into `dst_key`, to be applied on
/// `side` (0: the destination's shard, 1: the source's).
pub fn unlink_key(side: u8, src_key: &[u8], dst_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(7 + src_key.len() + dst_key.len());
    key.extend_from_slice(&UNLINK_START);
    key.push(side);
    key.extend_from_slice(&(src_key.len() as u32).to_be_bytes());
    key.extend_from_slice(src_key);
    key.extend_from_slice(dst_key);
    key
}

/// If `key` is a pending unlink's key: its side, source key and destination key.
pub fn parse_unlink_key(key: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let rest = key.strip_prefix(&UNLINK_START)?;
    let (&side, rest) = rest.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let src = rest.get(4..4 + len)?;
    Some((side, src, &rest[4 + len..]))
}

/// Whether a command's key arguments include one in the reserved space. `positions` is
/// the command's (first, last, step) as `COMMAND` reports it; `args` includes the name.
pub fn has_reserved_key(args: &[&[u8]], positions: (i64, i64, i64)) -> bool {
    let (first, last, step) = positions;
    if first <= 0 || step <= 0 {
        return false;
    }
    let last = if last < 0 {
        args.len() as i64 + last
    } else {
        last
    };
    (first..=last)
        .step_by(step as usize)
        .filter_map(|i| args.get(i as usize))
        .any(|key| key.first() == Some(&RESERVED_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_is_time_order_and_user_keys_come_first() {
        assert!(chunk_key(7, 9) < chunk_key(7, 10));
        assert!(chunk_key(7, u64::MAX) < chunk_key(8, 0));
        assert!(meta_key(b"\xfe\xff\xff") < USER_KEYS_END.to_vec());
        assert!(USER_KEYS_END.as_slice() <= chunk_key(0, 0).as_slice());
        assert!(b"\xfe\xff".as_slice() < meta_key(b"").as_slice());
        assert_eq!(chunk_key_ts(&chunk_key(3, 42), 3), Some(42));
        assert_eq!(chunk_key_ts(&chunk_key(3, 42), 4), None);
        let mark = mark_key(3, 42, 40, 41);
        assert!(chunk_key(3, 42).as_slice() < mark.as_slice());
        assert!(mark.as_slice() < chunk_key(3, 43).as_slice());
        assert_eq!(chunk_key_ts(&mark, 3), None);
        assert_eq!(parse_chunk_key(&mark), None);
        assert_eq!(
            parse_mark_key(&mark),
            Some(MarkKey {
                series_id: 3,
                chunk_last_ts_ms: 42,
                from_ms: 40,
                to_ms: 41
            })
        );
        assert_eq!(parse_mark_key(&chunk_key(3, 42)), None);
        assert_eq!(sample_key_ts(&chunk_key(3, 42), 3), None);
        assert_eq!(parse_chunk_key(&chunk_key(3, 42)), Some((3, 42)));
        assert_eq!(parse_chunk_key(&sample_key(3, 42)), None);
        assert_eq!(parse_sample_key(&sample_key(7, 9)), Some((7, 9)));
        assert_eq!(parse_sealed_key(&sealed_key(5)), Some(5));
        assert_eq!(parse_sealed_key(&chunk_key(5, 1)), None);
        assert_eq!(classify(&meta_key(b"temp")), KeyClass::Series(b"temp"));
        assert_eq!(classify(&sample_key(1, 1)), KeyClass::Internal);
        assert_eq!(classify(b"plain"), KeyClass::String);
        let pending = pending_key(3, 40, b"dst");
        assert_eq!(
            parse_pending_key(&pending),
            Some((3, 40, b"dst".as_slice()))
        );
        assert_eq!(parse_pending_key(&chunk_key(3, 40)), None);
        assert!(pending_key(3, 40, b"\xff") < pending_key(3, 41, b""));
        assert_eq!(classify(&pending), KeyClass::Internal);
        let unlink = unlink_key(1, b"src", b"dst");
        assert_eq!(
            parse_unlink_key(&unlink),
            Some((1, b"src".as_slice(), b"dst".as_slice()))
        );
        assert_eq!(parse_unlink_key(&pending), None);
        assert_eq!(parse_unlink_key(&UNLINK_START), None);
    }

    #[test]
    fn reserved_keys_are_found_at_their_positions() {
        let args: Vec<&[u8]> = vec![b"MSET", b"a", b"\xff", b"b", b"1"];
        assert!(!has_reserved_key(&args, (1, -1, 2)), "values are not keys");
        assert!(has_reserved_key(&args, (1, -1, 1)));
        assert!(!has_reserved_key(&args, (0, 0, 0)));
    }
}
