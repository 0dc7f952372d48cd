//! The metrics endpoint (`--metrics-addr`): `GET /metrics` in the Prometheus text
//! exposition format (version 0.0.4), served by one thread of its own with `tiny_http`,
//! never by a shard thread.
//!
//! Every value is read from the shards' [`ShardMetrics`] at the time of the request:
//! counters and gauges labelled by `shard`, per-command call counts and execution-latency
//! summaries (the shards' histograms merged) labelled by `command`, and per shard the WAL
//! fdatasync latency and group-commit batch sizes. Latencies are in seconds, as Prometheus
//! names them.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use hdrhistogram::Histogram;

use crate::command::CommandKind;
use crate::shard::info::{merged_command_latency, LATENCY_PERCENTILES};
use crate::shard::metrics::ShardMetrics;
use crate::shard::Shared;

/// The running endpoint; [`MetricsEndpoint::stop`] ends it.
pub struct MetricsEndpoint {
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    addr: SocketAddr,
}

impl MetricsEndpoint {
    /// Binds `addr` and starts serving.
    ///
    /// # Errors
    /// If the address cannot be bound (in use, not local) or the thread cannot start.
    pub fn start(addr: SocketAddr, shared: Arc<Shared>) -> io::Result<Self> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| io::Error::other(format!("binding the metrics endpoint {addr}: {e}")))?;
        let addr = server.server_addr().to_ip().unwrap_or(addr);
        let server = Arc::new(server);
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("tskv-metrics".into())
            .spawn(move || serve(&serving, &shared))?;
        tracing::info!("metrics endpoint on http://{addr}/metrics");
        Ok(Self {
            server,
            thread: Some(thread),
            addr,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(server: &tiny_http::Server, shared: &Shared) {
    for request in server.incoming_requests() {
        let response = if request.url() == "/metrics" {
            let content_type = tiny_http::Header::from_bytes(
                &b"Content-Type"[..],
                &b"text/plain; version=0.0.4; charset=utf-8"[..],
            )
            .expect("a valid header");
            tiny_http::Response::from_string(render(shared)).with_header(content_type)
        } else {
            tiny_http::Response::from_string("not found; try /metrics\n").with_status_code(404)
        };
        if let Err(e) = request.respond(response) {
            tracing::debug!("metrics response not sent: {e}");
        }
    }
}

/// One metric family: its help line, type, and the samples `(labels, value)`.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

fn per_shard(
    m: &[ShardMetrics],
    field: impl Fn(&ShardMetrics) -> &AtomicU64,
) -> Vec<(String, f64)> {
    m.iter()
        .enumerate()
        .map(|(i, s)| {
            (
                format!("{{shard=\"{i}\"}}"),
                field(s).load(Ordering::Relaxed) as f64,
            )
        })
        .collect()
}

/// A summary's samples: quantiles, then `_sum` and `_count` under their own names.
fn summary(
    out: &mut String,
    name: &str,
    help: &str,
    series: &[(String, Histogram<u64>)],
    scale: f64,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} summary");
    for (labels, h) in series {
        for (_, quantile) in LATENCY_PERCENTILES {
            let value = h.value_at_quantile(quantile) as f64 * scale;
            let _ = writeln!(out, "{name}{{{labels}quantile=\"{quantile}\"}} {value}");
        }
        let sum: f64 = h
            .iter_recorded()
            .map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64)
            .sum();
        let _ = writeln!(
            out,
            "{name}_sum{{{}}} {}",
            labels.trim_end_matches(','),
            sum * scale
        );
        let _ = writeln!(
            out,
            "{name}_count{{{}}} {}",
            labels.trim_end_matches(','),
            h.len()
        );
    }
}

/// A per-shard metric: its name, help text and the counter it reads.
type Family = (&'static str, &'static str, fn(&ShardMetrics) -> &AtomicU64);

/// The whole exposition.
pub fn render(shared: &Shared) -> String {
    let m = &shared.metrics[..];
    let mut out = String::new();
    let counters: [Family; 23] = [
        (
            "tskv_connections_total",
            "Client connections accepted.",
            |s| &s.total_connections,
        ),
        (
            "tskv_rejected_connections_total",
            "Client connections refused at a connection limit.",
            |s| &s.rejected_connections,
        ),
        (
            "tskv_commands_total",
            "Commands processed, refused ones included.",
            |s| &s.total_commands,
        ),
        (
            "tskv_command_errors_total",
            "Unknown or malformed commands.",
            |s| &s.command_errors,
        ),
        (
            "tskv_backpressure_events_total",
            "Times a connection stopped being read for unsent replies.",
            |s| &s.backpressure_events,
        ),
        (
            "tskv_protocol_errors_total",
            "Connections closed for a protocol error.",
            |s| &s.protocol_errors,
        ),
        (
            "tskv_forwarded_requests_total",
            "Requests forwarded to the shard that owns the key.",
            |s| &s.forwarded_requests,
        ),
        (
            "tskv_wal_batches_total",
            "Group-commit batches written to the WAL.",
            |s| &s.wal_batches,
        ),
        ("tskv_wal_bytes_total", "Bytes written to the WAL.", |s| {
            &s.wal_bytes
        }),
        ("tskv_wal_fsyncs_total", "WAL fdatasyncs completed.", |s| {
            &s.wal_fsyncs
        }),
        ("tskv_flushes_total", "Memtable flushes to SSTables.", |s| {
            &s.flushes
        }),
        ("tskv_compactions_total", "Compactions installed.", |s| {
            &s.compactions
        }),
        (
            "tskv_compaction_read_bytes_total",
            "Bytes compactions read.",
            |s| &s.compaction_read_bytes,
        ),
        (
            "tskv_compaction_written_bytes_total",
            "Bytes compactions wrote.",
            |s| &s.compaction_written_bytes,
        ),
        (
            "tskv_block_cache_hits_total",
            "Point lookups answered by the block cache.",
            |s| &s.block_cache_hits,
        ),
        (
            "tskv_block_cache_misses_total",
            "Point lookups that read a block from its file.",
            |s| &s.block_cache_misses,
        ),
        (
            "tskv_block_reads_total",
            "SSTable blocks read through the ring for lookups.",
            |s| &s.block_reads,
        ),
        (
            "tskv_block_reads_blocking_total",
            "SSTable blocks read with a blocking pread on a shard's loop.",
            |s| &s.block_reads_blocking,
        ),
        (
            "tskv_bloom_negatives_total",
            "Point lookups a table's Bloom filter answered without reading a block.",
            |s| &s.bloom_negatives,
        ),
        (
            "tskv_write_stalls_total",
            "Times writes had to wait for a memtable flush.",
            |s| &s.write_stalls,
        ),
        (
            "tskv_write_stall_microseconds_total",
            "Microseconds writes spent stalled, over the stalls that ended.",
            |s| &s.write_stall_us,
        ),
        (
            "tskv_write_slowdowns_total",
            "Times a WAL batch was held back because level 0 was in the slowdown band.",
            |s| &s.write_slowdowns,
        ),
        (
            "tskv_write_slowdown_microseconds_total",
            "Microseconds WAL batches were held back by the write slowdown, over holds that ended.",
            |s| &s.write_slowdown_us,
        ),
    ];
    for (name, help, field) in counters {
        family(&mut out, name, "counter", help, &per_shard(m, field));
    }
    let gauges: [Family; 8] = [
        ("tskv_connected_clients", "Client connections open.", |s| {
            &s.connected_clients
        }),
        (
            "tskv_memtable_bytes",
            "Bytes in the active memtable.",
            |s| &s.memtable_bytes,
        ),
        (
            "tskv_ts_open_samples",
            "Time-series samples held open in memory (in the WAL, not yet sealed).",
            |s| &s.ts_open_samples,
        ),
        ("tskv_sstables", "Live SSTables.", |s| &s.sstables),
        ("tskv_sstable_bytes", "Bytes of live SSTables.", |s| {
            &s.sstable_bytes
        }),
        (
            "tskv_block_cache_bytes",
            "Bytes held by the block cache.",
            |s| &s.block_cache_bytes,
        ),
        (
            "tskv_pending_compaction_bytes",
            "Bytes compaction must still rewrite to bring every level within its target.",
            |s| &s.pending_compaction_bytes,
        ),
        (
            "tskv_last_save_timestamp_seconds",
            "Unix time since which every older write of the shard is in an SSTable.",
            |s| &s.last_save_unix_s,
        ),
    ];
    for (name, help, field) in gauges {
        family(&mut out, name, "gauge", help, &per_shard(m, field));
    }
    let level = |field: fn(&ShardMetrics) -> &[AtomicU64; crate::manifest::LEVELS_MAX]| {
        m.iter()
            .enumerate()
            .flat_map(|(i, s)| {
                field(s).iter().enumerate().map(move |(l, v)| {
                    (
                        format!("{{shard=\"{i}\",level=\"{l}\"}}"),
                        v.load(Ordering::Relaxed) as f64,
                    )
                })
            })
            .collect::<Vec<_>>()
    };
    family(
        &mut out,
        "tskv_level_sstables",
        "gauge",
        "Live SSTables per level.",
        &level(|s| &s.level_sstables),
    );
    family(
        &mut out,
        "tskv_level_bytes",
        "gauge",
        "Bytes of live SSTables per level.",
        &level(|s| &s.level_bytes),
    );
    let refusing: Vec<(String, f64)> = m
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let poisoned = s
                .poisoned
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some();
            (format!("{{shard=\"{i}\"}}"), f64::from(u8::from(poisoned)))
        })
        .collect();
    family(
        &mut out,
        "tskv_shard_writes_refused",
        "gauge",
        "1 once a failed WAL or SSTable write made the shard refuse writes.",
        &refusing,
    );

    let mut calls = Vec::new();
    let mut rejected = Vec::new();
    let mut latency = Vec::new();
    for kind in CommandKind::ALL {
        let i = kind as usize;
        let label = format!("{{command=\"{}\"}}", kind.name());
        let n = crate::shard::metrics::sum(m, |s| &s.command_calls[i]);
        let r = crate::shard::metrics::sum(m, |s| &s.command_rejected[i]);
        if n > 0 {
            calls.push((label.clone(), n as f64));
        }
        if r > 0 {
            rejected.push((label, r as f64));
        }
        if let Some(h) = merged_command_latency(m, kind) {
            latency.push((format!("command=\"{}\",", kind.name()), h));
        }
    }
    family(
        &mut out,
        "tskv_command_calls_total",
        "counter",
        "Commands run, per command.",
        &calls,
    );
    family(
        &mut out,
        "tskv_command_rejected_total",
        "counter",
        "Commands refused before running (arity, syntax, NOAUTH), per command.",
        &rejected,
    );
    summary(
        &mut out,
        "tskv_command_duration_seconds",
        "Time a command ran on its shard's loop (waits for blocks, peers and fdatasync excluded).",
        &latency,
        1e-6,
    );
    let shard_histograms = |pick: fn(&crate::shard::metrics::Latencies) -> &Histogram<u64>| {
        m.iter()
            .enumerate()
            .map(|(i, s)| (format!("shard=\"{i}\","), pick(&s.latencies()).clone()))
            .collect::<Vec<_>>()
    };
    summary(
        &mut out,
        "tskv_wal_sync_duration_seconds",
        "From a WAL batch's submission to the completion of the fdatasync covering it.",
        &shard_histograms(|l| &l.wal_sync_us),
        1e-6,
    );
    summary(
        &mut out,
        "tskv_wal_batch_bytes",
        "Bytes per group-commit batch.",
        &shard_histograms(|l| &l.wal_batch_bytes),
        1.0,
    );
    out
}
