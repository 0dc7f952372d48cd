//! Replies built from server state: `INFO`, `CONFIG GET`, `COMMAND`.
//!
//! `INFO` is a verbatim string in RESP3 and a bulk string in RESP2, as in Redis 7. Its
//! `# Memory` figures are the process's resident set from `/proc/self/status` (`VmRSS`,
//! peak `VmHWM`): tskv does not count its allocator's bytes, so `used_memory` and
//! `used_memory_rss` are the same number. `# Keyspace` counts live keys exactly, by
//! asking every shard as `DBSIZE` does (a count of a snapshot of each shard's keys, off
//! its loop: see `dbsize`); `expires` and `avg_ttl` are 0, tskv having no expiry.

use std::fmt::Write as _;

use super::conn::Reply;
use super::exec::{ack_mode_name, Wait};
use super::mesh::Op;
use super::metrics::{sum, ShardMetrics};
use super::scan::KeyCount;
use super::{Shard, Shared};
use crate::command::CommandKind;
use crate::config::{FsyncMode, ServerConfig};
use crate::glob::glob_match;
use crate::resp::{self, resp3, Protocol};

impl Shard {
    /// `INFO [section ...]`: the sections from shared counters at once; with `# Keyspace`
    /// the reply waits for every shard's live key count.
    pub(super) fn info(&mut self, key: (u32, u32), sections: &[&[u8]]) -> Result<(), Wait> {
        let text = info_text(&self.shared, sections);
        if wants_section(sections, "keyspace") {
            let ops = vec![Op::DbSize; self.shards];
            return self.scatter(
                key,
                Reply::Info {
                    text,
                    keys: 0,
                    expires: 0,
                },
                &ops,
            );
        }
        let mut reply = Vec::new();
        resp3::verbatim(&mut reply, self.proto(key), b"txt", text.as_bytes());
        self.push_ready(key, Reply::Encoded(reply));
        Ok(())
    }

    /// The shard's live keys (`DBSIZE`, `INFO keyspace`) counted here, on the loop: the
    /// last count while nothing was written since and no deadline among the keys counted
    /// has passed (flushes and compactions do not change it), else a scan. Parts that can
    /// wait are counted off the loop instead (`Shard::defer_key_count`); this is their
    /// fallback.
    pub(super) fn live_keys(&mut self) -> Result<KeyCount, crate::base::StoreError> {
        let last_seq = self.store.last_seq();
        if let Some((seq, count)) = self.live_keys_counted {
            let expired = count
                .first_deadline_ms
                .is_some_and(|d| crate::base::is_expired(Some(d), crate::base::unix_now_ms()));
            if seq == last_seq && !expired {
                return Ok(count);
            }
        }
        // User keys only: a series counts once, its chunks and samples never.
        let count = super::scan::user_key_count(&self.store)?;
        self.live_keys_counted = Some((last_seq, count));
        Ok(count)
    }
}

/// Whether `INFO sections` includes section `name`: named, or `all`/`everything`, or
/// `default` or no argument (every section but `commandstats` and `latencystats`).
fn wants_section(sections: &[&[u8]], name: &str) -> bool {
    let default = name != "commandstats" && name != "latencystats";
    (sections.is_empty() && default)
        || sections.iter().any(|s| {
            s.eq_ignore_ascii_case(name.as_bytes())
                || s.eq_ignore_ascii_case(b"all")
                || s.eq_ignore_ascii_case(b"everything")
                || (s.eq_ignore_ascii_case(b"default") && default)
        })
}

/// Appends `# Keyspace` with `keys` live keys of which `expires` have a deadline:
/// `db0:keys=N,expires=M,avg_ttl=0`, or no line when the database is empty, as Redis
/// prints it. (`avg_ttl` is an estimate in Redis, from its expiry sampling; tskv keeps 0.)
pub(super) fn keyspace_section(out: &mut String, keys: i64, expires: i64) {
    out.push_str("# Keyspace\r\n");
    if keys > 0 {
        let _ = write!(out, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
    }
}

/// `INFO [section ...]` text but `# Keyspace` ([`keyspace_section`], which needs every
/// shard): sections `server`, `clients`, `memory`, `persistence`, `stats`,
/// `commandstats`, `latencystats`; `all`/`everything`/none gives every section. Counters are summed over
/// all shards. Lines end in CRLF as Redis's do.
pub fn info_text(shared: &Shared, sections: &[&[u8]]) -> String {
    let wants = |name: &str| wants_section(sections, name);
    let m = &shared.metrics[..];
    let config = &shared.config;
    let mut out = String::new();
    if wants("server") {
        let uptime_s = shared.started.elapsed().as_secs();
        let _ = write!(
            out,
            "# Server\r\nredis_version:7.0.0\r\ntskv_version:{}\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime_s}\r\nshards:{}\r\ndata_dir:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            config.port,
            config.shards,
            config.data_dir.display(),
        );
    }
    if wants("clients") {
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nblocked_clients:0\r\nmaxclients:{}\r\nclient_output_bytes_max:{}\r\n\r\n",
            sum(m, |s| &s.connected_clients),
            config.clients_per_shard_max * config.shards,
            config.client_output_bytes_max,
        );
    }
    if wants("memory") {
        memory(&mut out);
    }
    if wants("persistence") {
        persistence(&mut out, m, config);
    }
    if wants("stats") {
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\nrejected_connections:{}\r\ntotal_commands_processed:{}\r\nunknown_or_invalid_commands:{}\r\nprotocol_errors:{}\r\nbackpressure_events:{}\r\nforwarded_requests:{}\r\n",
            sum(m, |s| &s.total_connections),
            sum(m, |s| &s.rejected_connections),
            sum(m, |s| &s.total_commands),
            sum(m, |s| &s.command_errors),
            sum(m, |s| &s.protocol_errors),
            sum(m, |s| &s.backpressure_events),
            sum(m, |s| &s.forwarded_requests),
        );
        out.push_str("\r\n");
    }
    if wants("commandstats") {
        out.push_str("# Commandstats\r\n");
        command_counts(&mut out, m);
        out.push_str("\r\n");
    }
    if wants("latencystats") {
        out.push_str("# Latencystats\r\n");
        latency_percentiles(&mut out, m);
        out.push_str("\r\n");
    }
    out
}

/// `# Memory`, from the process's resident set (see the module doc).
fn memory(out: &mut String) {
    let (rss, peak) = resident_bytes();
    let _ = write!(
        out,
        "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\nmaxmemory_policy:noeviction\r\nmem_allocator:mimalloc\r\n\r\n",
        bytes_to_human(rss),
        bytes_to_human(rss),
        bytes_to_human(peak),
    );
}

/// The process's resident set and its peak, in bytes (`VmRSS`, `VmHWM` of
/// `/proc/self/status`; 0 where unreadable).
pub(super) fn resident_bytes() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field_bytes = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map_or(0, |kib| kib * 1024)
    };
    (field_bytes("VmRSS:"), field_bytes("VmHWM:"))
}

/// `bytes` as Redis's `bytesToHuman` prints it: `512B`, `1.50K`, `20.00M`, ... (powers of
/// 1024, two decimals).
pub fn bytes_to_human(bytes: u64) -> String {
    const UNITS: [(u32, char); 5] = [(1, 'K'), (2, 'M'), (3, 'G'), (4, 'T'), (5, 'P')];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    for (power, unit) in UNITS {
        if bytes < 1024u64.pow(power + 1) || power == 5 {
            return format!("{:.2}{unit}", bytes as f64 / 1024f64.powi(power as i32));
        }
    }
    unreachable!("the last unit takes every size")
}

/// `cmdstat_<name>:calls=N,usec=N,usec_per_call=N.NN,rejected_calls=N` per command that
/// ran or was refused, in Redis 7.0's format. (Redis's `failed_calls`, errors raised while
/// running, is not tracked and so not printed.)
fn command_counts(out: &mut String, m: &[ShardMetrics]) {
    for kind in CommandKind::ALL {
        let i = kind as usize;
        let calls = sum(m, |s| &s.command_calls[i]);
        let rejected = sum(m, |s| &s.command_rejected[i]);
        if calls == 0 && rejected == 0 {
            continue;
        }
        let usec = sum(m, |s| &s.command_usec[i]);
        let per_call = if calls == 0 {
            0.0
        } else {
            usec as f64 / calls as f64
        };
        let _ = write!(
            out,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected}\r\n",
            kind.name()
        );
    }
}

/// `latency_percentiles_usec_<name>:p50=N,p99=N,p99.9=N` per command that ran, from the
/// shards' histograms merged, in Redis 7.0's format.
fn latency_percentiles(out: &mut String, m: &[ShardMetrics]) {
    for kind in CommandKind::ALL {
        let Some(merged) = merged_command_latency(m, kind) else {
            continue;
        };
        let _ = write!(out, "latency_percentiles_usec_{}:", kind.name());
        for (i, (label, quantile)) in LATENCY_PERCENTILES.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(
                out,
                "{sep}{label}={:.3}",
                merged.value_at_quantile(*quantile) as f64
            );
        }
        out.push_str("\r\n");
    }
}

/// The percentiles `INFO latencystats` prints, as Redis 7.0's default
/// `latency-tracking-info-percentiles "50 99 99.9"`.
pub const LATENCY_PERCENTILES: [(&str, f64); 3] = [("p50", 0.50), ("p99", 0.99), ("p99.9", 0.999)];

/// The execution latencies of `kind` over all shards; `None` if it never ran.
pub fn merged_command_latency(
    m: &[ShardMetrics],
    kind: CommandKind,
) -> Option<hdrhistogram::Histogram<u64>> {
    let mut merged: Option<hdrhistogram::Histogram<u64>> = None;
    for shard in m {
        let latencies = shard.latencies();
        if let Some(h) = &latencies.command_us[kind as usize] {
            match merged.as_mut() {
                Some(total) => total.add(h).expect("histograms of one shape"),
                None => merged = Some(h.clone()),
            }
        }
    }
    merged
}

fn persistence(out: &mut String, m: &[ShardMetrics], config: &ServerConfig) {
    let poisoned: Vec<String> = m
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let reason = s
                .poisoned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()?;
            Some(format!("shard {i}: {reason}"))
        })
        .collect();
    let _ = write!(
        out,
        "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\nfsync:{}\r\nfsync_period_ms:{}\r\nwal_batches:{}\r\nwal_bytes:{}\r\nwal_fsyncs:{}\r\nmemtable_bytes:{}\r\nmemtable_bytes_max:{}\r\nts_open_samples:{}\r\nsstables:{}\r\nl0_sstables:{}\r\nsstable_bytes:{}\r\nlevel_sstables:{}\r\nlevel_bytes:{}\r\nflushes:{}\r\ncompactions:{}\r\ncompaction_read_bytes:{}\r\ncompaction_written_bytes:{}\r\ncompactions_failed_shards:{}\r\nblock_cache_bytes:{}\r\nblock_cache_hits:{}\r\nblock_cache_misses:{}\r\nblock_cache_hit_ratio:{:.4}\r\nbloom_negatives:{}\r\npending_compaction_bytes:{}\r\nwrite_stalls:{}\r\nwrite_stall_us:{}\r\nwrite_slowdowns:{}\r\nwrite_slowdown_us:{}\r\nblock_reads_async:{}\r\nblock_reads_blocking:{}\r\nlast_seq_sum:{}\r\ndurable_seq_sum:{}\r\nrecovery_replayed_records:{}\r\nrecovery_truncated_bytes:{}\r\nwrites_refused:{}\r\nwrites_refused_reason:{}\r\n\r\n",
        sum(m, |s| &s.changes_since_save),
        u8::from(sum(m, |s| &s.bgsave_in_progress) > 0),
        super::admin::last_save_unix_s(m),
        ack_mode_name(config.fsync),
        if config.fsync == FsyncMode::Periodic { config.fsync_period_ms } else { 0 },
        sum(m, |s| &s.wal_batches),
        sum(m, |s| &s.wal_bytes),
        sum(m, |s| &s.wal_fsyncs),
        sum(m, |s| &s.memtable_bytes),
        config.store.memtable_bytes,
        sum(m, |s| &s.ts_open_samples),
        sum(m, |s| &s.sstables),
        sum(m, |s| &s.l0_sstables),
        sum(m, |s| &s.sstable_bytes),
        per_level(m, |s| &s.level_sstables),
        per_level(m, |s| &s.level_bytes),
        sum(m, |s| &s.flushes),
        sum(m, |s| &s.compactions),
        sum(m, |s| &s.compaction_read_bytes),
        sum(m, |s| &s.compaction_written_bytes),
        sum(m, |s| &s.compaction_failed),
        sum(m, |s| &s.block_cache_bytes),
        sum(m, |s| &s.block_cache_hits),
        sum(m, |s| &s.block_cache_misses),
        hit_ratio(sum(m, |s| &s.block_cache_hits), sum(m, |s| &s.block_cache_misses)),
        sum(m, |s| &s.bloom_negatives),
        sum(m, |s| &s.pending_compaction_bytes),
        sum(m, |s| &s.write_stalls),
        sum(m, |s| &s.write_stall_us),
        sum(m, |s| &s.write_slowdowns),
        sum(m, |s| &s.write_slowdown_us),
        sum(m, |s| &s.block_reads),
        sum(m, |s| &s.block_reads_blocking),
        sum(m, |s| &s.last_seq),
        sum(m, |s| &s.durable_seq),
        sum(m, |s| &s.recovery_replayed_records),
        sum(m, |s| &s.recovery_truncated_bytes),
        u8::from(!poisoned.is_empty()),
        poisoned.join("; ").replace(['\r', '\n'], " "),
    );
}

/// Hits over lookups, 0 before the first lookup.
fn hit_ratio(hits: u64, misses: u64) -> f64 {
    match hits + misses {
        0 => 0.0,
        lookups => hits as f64 / lookups as f64,
    }
}

/// A per-level counter summed over shards, as `a,b,c,...` from level 0 down.
fn per_level(
    shards: &[ShardMetrics],
    field: impl Fn(&ShardMetrics) -> &[std::sync::atomic::AtomicU64; crate::manifest::LEVELS_MAX],
) -> String {
    (0..crate::manifest::LEVELS_MAX)
        .map(|level| sum(shards, |s| &field(s)[level]).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// `CONFIG GET pattern...`: the parameters clients and redis-benchmark ask about, as a map
/// (RESP2: a flat array of name/value pairs). Patterns support `*` as in Redis (glob, any
/// run).
pub fn config_get(out: &mut Vec<u8>, proto: Protocol, config: &ServerConfig, patterns: &[&[u8]]) {
    let appendfsync = match config.fsync {
        FsyncMode::Always => "always",
        FsyncMode::Periodic => "everysec",
        FsyncMode::Never => "no",
    };
    let params: [(&str, String); 10] = [
        ("save", String::new()),
        ("appendonly", "yes".into()),
        ("appendfsync", appendfsync.into()),
        ("databases", "1".into()),
        ("port", config.port.to_string()),
        ("bind", config.bind.to_string()),
        ("dir", config.data_dir.display().to_string()),
        (
            "proto-max-bulk-len",
            config.limits.bulk_bytes_max.to_string(),
        ),
        (
            "slowlog-log-slower-than",
            config.slowlog.log_slower_than_us.to_string(),
        ),
        ("slowlog-max-len", config.slowlog.max_len.to_string()),
    ];
    let matched: Vec<&(&str, String)> = params
        .iter()
        .filter(|(name, _)| {
            patterns
                .iter()
                .any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes()))
        })
        .collect();
    resp3::map_header(out, proto, matched.len());
    for (name, value) in matched {
        resp::bulk(out, name.as_bytes());
        resp::bulk(out, value.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use crate::glob::glob_match;

    #[test]
    fn human_sizes_like_redis() {
        use super::bytes_to_human;
        assert_eq!(bytes_to_human(1023), "1023B");
        assert_eq!(bytes_to_human(1536), "1.50K");
        assert_eq!(bytes_to_human(20 * 1024 * 1024), "20.00M");
        assert_eq!(bytes_to_human(3 << 30), "3.00G");
    }

    #[test]
    fn config_patterns() {
        assert!(glob_match(b"*", b"save"));
        assert!(glob_match(b"append*", b"appendfsync"));
        assert!(!glob_match(b"append", b"appendfsync"));
        assert!(glob_match(b"s?ve", b"save"));
    }
}
