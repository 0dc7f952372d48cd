//! What to send: the operation mix (SET/GET, or a YCSB or TSBS preset), the keys (through
//! [`crate::keydist`]) and the values, encoded as RESP. Pure apart from the caller's
//! buffer: a seeded workload produces the same requests every time.
//!
//! Operations and the commands they send:
//!
//! | operation | sent as | expected reply |
//! | --- | --- | --- |
//! | SET (update) | `SET key value` of a key drawn from the key distribution | `+OK` |
//! | GET (read) | `GET key` | bulk string or null |
//! | INSERT | `SET key value` of the next key beyond `--keys` (thread i of n takes keys + i, keys + i + n, ...) | `+OK` |
//! | SCAN | `MGET` of L consecutive keys from a drawn key, L uniform in 1..=100 (no range command yet) | array |
//! | RMW | `GET key`, then on its reply `SET key value` on the same connection | bulk/null, then `+OK` |
//! | TS.CREATE / TS.MADD / TS.RANGE / TS.MRANGE | see [`crate::tsbs`] | `+OK` / array |

mod command;
mod mix;
mod template;
mod ts;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::cli::ValueSize;
use crate::keydist::{Access, KeyGenerator};
use crate::limits;
use crate::resp_client::{self, encode_array_header, encode_bulk};
use crate::tsbs::{CpuIngest, CpuQueries};

pub use self::command::{Command, Outcome};
pub use self::mix::{share, Mix, OpWeights, WorkloadConfig};
pub use self::template::{templates, TemplateSpec};

/// One request to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The operation.
    pub command: Command,
    /// Index of the key (key-value), of the series (TS.CREATE, TS.RANGE) or of the host
    /// (TS.MADD, TS.MRANGE).
    pub key_index: u64,
    /// Value bytes of a SET (SET, INSERT, RMW); 0 otherwise.
    pub value_len: usize,
    /// Keys a SCAN reads; 0 otherwise.
    pub scan_len: u32,
}

/// Where a thread's requests come from.
enum Source {
    KeyValue(OpWeights),
    Sequence { mix: Mix, next: u64, end: u64 },
    Ingest(CpuIngest),
    Query(CpuQueries),
    Templates(Vec<TemplateSpec>),
}

/// One thread's request stream.
pub struct Workload {
    config: WorkloadConfig,
    source: Source,
    keys: KeyGenerator,
    rng: SmallRng,
    value: Vec<u8>,
    key: Vec<u8>,
    text: String,
    /// A template word with its placeholders filled.
    word: Vec<u8>,
    next_insert: u64,
    insert_stride: u64,
}

impl Workload {
    /// The stream of thread `thread_index` of `threads`: seeded with `seed + thread_index`,
    /// and with sequential / latest keys starting at the thread's share of the keyspace
    /// (latest with inserts: at the last loaded key).
    pub fn new(config: &WorkloadConfig, seed: u64, thread_index: usize, threads: usize) -> Self {
        let thread_seed = seed.wrapping_add(thread_index as u64);
        let mut start = share(config.keys, thread_index, threads).start;
        let source = match &config.mix {
            Mix::KeyValue(weights) => {
                if weights.insert > 0 {
                    start = config.keys - 1;
                }
                Source::KeyValue(*weights)
            }
            mix @ (Mix::Load | Mix::TsCreate(_)) => {
                let range = share(config.setup_total().unwrap_or(0), thread_index, threads);
                Source::Sequence {
                    mix: mix.clone(),
                    next: range.start,
                    end: range.end,
                }
            }
            Mix::TsIngest(fleet) => {
                Source::Ingest(CpuIngest::new(fleet, thread_seed, thread_index, threads))
            }
            Mix::TsQuery(fleet) => Source::Query(CpuQueries::new(fleet, thread_seed)),
            Mix::Templates(specs) => Source::Templates(specs.clone()),
        };
        Self {
            source,
            keys: KeyGenerator::new(config.key_dist, config.keys, start),
            rng: SmallRng::seed_from_u64(thread_seed),
            value: vec![b'x'; config.value_size.max_bytes],
            key: Vec::with_capacity(config.key_prefix.len() + 20),
            text: String::new(),
            word: Vec::new(),
            next_insert: config.keys + thread_index as u64,
            insert_stride: threads.max(1) as u64,
            config: config.clone(),
        }
    }

    /// Draws the next request and appends its RESP encoding to `out` (for RMW: its GET).
    pub fn next(&mut self, out: &mut Vec<u8>) -> Request {
        let request = match &mut self.source {
            Source::KeyValue(_) | Source::Sequence { .. } => self.next_request(),
            Source::Ingest(ingest) => {
                let batch = ingest.next_batch();
                ts::encode_madd(&batch, &mut self.text, out);
                return Request {
                    command: Command::TsMadd,
                    key_index: batch.host,
                    value_len: 0,
                    scan_len: 0,
                };
            }
            Source::Query(queries) => {
                let query = queries.next_query();
                return ts::encode_query(query, out);
            }
            Source::Templates(_) => return self.next_template(out),
        };
        self.encode(&request, out);
        request
    }

    /// Draws the next key-value or setup request without encoding it. Setup streams end:
    /// past their share they repeat its last request (the engine's quota stops first).
    ///
    /// # Panics
    /// For time-series ingest and query streams, which draw and encode in one step.
    pub fn next_request(&mut self) -> Request {
        let weights = match &mut self.source {
            Source::KeyValue(weights) => *weights,
            Source::Sequence { mix, next, end } => {
                let index = *next;
                if *next + 1 < *end {
                    *next += 1;
                }
                let command = if *mix == Mix::Load {
                    Command::Insert
                } else {
                    Command::TsCreate
                };
                let value_len = self.value_len();
                return Request {
                    command,
                    key_index: index,
                    value_len,
                    scan_len: 0,
                };
            }
            Source::Ingest(_) | Source::Query(_) | Source::Templates(_) => {
                panic!("time-series and template requests are drawn with Workload::next")
            }
        };
        let command = weights.pick(self.rng.gen_range(0..weights.total()));
        let mut request = Request {
            command,
            key_index: 0,
            value_len: 0,
            scan_len: 0,
        };
        match command {
            Command::Set => {
                request.value_len = self.value_len();
                request.key_index = self.keys.next_key(&mut self.rng, Access::Write);
            }
            Command::Insert => {
                request.value_len = self.value_len();
                request.key_index = self.next_insert;
                self.keys.inserted(self.next_insert);
                self.next_insert += self.insert_stride;
            }
            Command::Scan => {
                request.key_index = self.keys.next_key(&mut self.rng, Access::Read);
                request.scan_len = self.rng.gen_range(1..=self.config.scan_len_max.max(1));
            }
            Command::Rmw => {
                request.key_index = self.keys.next_key(&mut self.rng, Access::Read);
                request.value_len = self.value_len();
            }
            _ => request.key_index = self.keys.next_key(&mut self.rng, Access::Read),
        }
        request
    }

    /// Draws a template by weight, a key and a value size, and encodes it.
    fn next_template(&mut self, out: &mut Vec<u8>) -> Request {
        let Source::Templates(specs) = &self.source else {
            unreachable!("only called for templates");
        };
        let index = template::pick(specs, self.rng.gen_range(0..template::total_weight(specs)));
        let request = Request {
            command: Command::Template(index as u8),
            key_index: self.keys.next_key(&mut self.rng, Access::Read),
            value_len: self.value_len(),
            scan_len: 0,
        };
        let Workload {
            source,
            key,
            word,
            value,
            ..
        } = self;
        let Source::Templates(specs) = source else {
            unreachable!("only called for templates");
        };
        let value = &value[..request.value_len];
        template::encode(
            &specs[index].words,
            request.key_index,
            value,
            key,
            word,
            out,
        );
        request
    }

    fn value_len(&mut self) -> usize {
        let ValueSize {
            min_bytes,
            max_bytes,
        } = self.config.value_size;
        self.rng.gen_range(min_bytes..=max_bytes)
    }

    /// The key text of `key_index`: the prefix and the index zero-padded to 12 digits.
    pub fn key_text(&mut self, key_index: u64) -> &[u8] {
        self.key.clear();
        self.key.extend_from_slice(&self.config.key_prefix);
        push_key_digits(&mut self.key, key_index);
        &self.key
    }

    /// Appends a key-value or setup `request` as RESP to `out` (for RMW: its GET).
    pub fn encode(&mut self, request: &Request, out: &mut Vec<u8>) {
        match request.command {
            Command::Set | Command::Insert => self.encode_set(request, out),
            Command::Get | Command::Rmw => {
                self.key_text(request.key_index);
                resp_client::encode_command(out, &[b"GET", &self.key]);
            }
            Command::Scan => {
                encode_array_header(out, request.scan_len as usize + 1);
                encode_bulk(out, b"MGET");
                for i in 0..u64::from(request.scan_len) {
                    let key = self.key_text(request.key_index + i);
                    encode_bulk(out, key);
                }
            }
            Command::TsCreate => ts::encode_create(request.key_index, out),
            Command::TsMadd | Command::TsRange | Command::TsMrange | Command::Template(_) => {
                unreachable!("drawn and encoded by Workload::next")
            }
        }
    }

    /// Appends `SET key value` of `request` (an RMW's write, once its GET was answered).
    pub fn encode_set(&mut self, request: &Request, out: &mut Vec<u8>) {
        self.key_text(request.key_index);
        resp_client::encode_command(out, &[b"SET", &self.key, &self.value[..request.value_len]]);
    }
}

/// Appends `key_index` zero-padded to [`limits::KEY_DIGITS`] digits, as every key is named.
fn push_key_digits(out: &mut Vec<u8>, key_index: u64) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(key_index).as_bytes();
    let padding = limits::KEY_DIGITS.saturating_sub(digits.len());
    out.resize(out.len() + padding, b'0');
    out.extend_from_slice(digits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{KeyDistKind, Ratio};
    use crate::tsbs::TsbsConfig;

    pub(super) fn config(ratio: Ratio, value_size: ValueSize) -> WorkloadConfig {
        WorkloadConfig {
            mix: Mix::KeyValue(OpWeights {
                read: ratio.get,
                update: ratio.set,
                ..OpWeights::default()
            }),
            keys: 1000,
            key_dist: KeyDistKind::Uniform,
            key_prefix: b"key:".to_vec(),
            value_size,
            scan_len_max: 100,
        }
    }

    fn requests(config: &WorkloadConfig, seed: u64, thread: usize, n: usize) -> Vec<Request> {
        let mut workload = Workload::new(config, seed, thread, 2);
        (0..n).map(|_| workload.next_request()).collect()
    }

    #[test]
    fn same_seed_same_requests_other_thread_other_requests() {
        let cfg = config(
            Ratio { set: 1, get: 3 },
            ValueSize {
                min_bytes: 1,
                max_bytes: 100,
            },
        );
        assert_eq!(requests(&cfg, 9, 0, 1000), requests(&cfg, 9, 0, 1000));
        assert_ne!(requests(&cfg, 9, 0, 1000), requests(&cfg, 9, 1, 1000));
        // Thread 1 with seed 9 is thread 0 with seed 10.
        assert_eq!(requests(&cfg, 9, 1, 100), requests(&cfg, 10, 0, 100));
    }

    #[test]
    fn mix_and_value_sizes_follow_the_flags() {
        let cfg = config(
            Ratio { set: 1, get: 3 },
            ValueSize {
                min_bytes: 5,
                max_bytes: 9,
            },
        );
        let reqs = requests(&cfg, 1, 0, 40_000);
        let sets = reqs.iter().filter(|r| r.command == Command::Set).count();
        assert!((9_500..10_500).contains(&sets), "{sets} SETs of 40000");
        assert!(reqs
            .iter()
            .filter(|r| r.command == Command::Set)
            .all(|r| (5..=9).contains(&r.value_len)));
        let only_gets = config(
            Ratio { set: 0, get: 1 },
            ValueSize {
                min_bytes: 1,
                max_bytes: 1,
            },
        );
        assert!(requests(&only_gets, 1, 0, 1000)
            .iter()
            .all(|r| r.command == Command::Get));
    }

    #[test]
    fn templates_are_drawn_by_weight_with_their_placeholders_filled() {
        let texts = [
            "SET key:__key__ __value__".to_string(),
            "GET key:__key__".to_string(),
            "get other".to_string(),
        ];
        let specs = templates(&texts, &[3, 1, 0]);
        let mut cfg = config(
            Ratio { set: 1, get: 0 },
            ValueSize {
                min_bytes: 4,
                max_bytes: 4,
            },
        );
        cfg.mix = Mix::Templates(specs);
        assert_eq!(
            cfg.commands(),
            vec![Command::Template(0), Command::Template(1)]
        );
        assert_eq!(cfg.command_name(Command::Template(1)), "GET");
        let mut workload = Workload::new(&cfg, 5, 0, 1);
        let mut counts = [0usize; 3];
        for _ in 0..4000 {
            let mut out = Vec::new();
            let request = workload.next(&mut out);
            let Command::Template(i) = request.command else {
                panic!("not a template: {request:?}");
            };
            counts[usize::from(i)] += 1;
            let args = &args_of(&out)[0];
            let key = format!("key:{:012}", request.key_index);
            match i {
                0 => assert_eq!(args, &["SET", &key, "xxxx"]),
                1 => assert_eq!(args, &["GET", &key]),
                _ => panic!("template of weight 0 drawn"),
            }
        }
        assert!((2_800..3_200).contains(&counts[0]), "{counts:?}");
    }

    #[test]
    fn encodes_padded_keys() {
        let cfg = config(
            Ratio { set: 1, get: 0 },
            ValueSize {
                min_bytes: 3,
                max_bytes: 3,
            },
        );
        let mut workload = Workload::new(&cfg, 0, 0, 1);
        let mut out = Vec::new();
        let set = Request {
            command: Command::Set,
            key_index: 42,
            value_len: 3,
            scan_len: 0,
        };
        workload.encode(&set, &mut out);
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000042\r\n$3\r\nxxx\r\n"
        );
        out.clear();
        let get = Request {
            command: Command::Get,
            key_index: 7,
            value_len: 0,
            scan_len: 0,
        };
        workload.encode(&get, &mut out);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000007\r\n");
    }

    pub(super) fn args_of(out: &[u8]) -> Vec<Vec<String>> {
        let mut commands = Vec::new();
        let mut pos = 0;
        while let Some((args, used)) = resp_client::decode_command(&out[pos..]) {
            commands.push(
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            );
            pos += used;
        }
        assert_eq!(pos, out.len(), "trailing bytes");
        commands
    }

    #[test]
    fn scans_read_consecutive_keys_and_inserts_extend_the_keyspace() {
        let mut cfg = config(
            Ratio { set: 0, get: 1 },
            ValueSize {
                min_bytes: 4,
                max_bytes: 4,
            },
        );
        cfg.mix = Mix::KeyValue(OpWeights {
            scan: 1,
            insert: 1,
            ..OpWeights::default()
        });
        let mut workload = Workload::new(&cfg, 3, 1, 2);
        let mut inserts = Vec::new();
        for _ in 0..2_000 {
            let mut out = Vec::new();
            let request = workload.next(&mut out);
            let args = &args_of(&out)[0];
            match request.command {
                Command::Scan => {
                    assert!((1..=100).contains(&request.scan_len));
                    assert_eq!(args[0], "MGET");
                    assert_eq!(args.len(), request.scan_len as usize + 1);
                    for (i, key) in args[1..].iter().enumerate() {
                        let index: u64 = key["key:".len()..].parse().unwrap();
                        assert_eq!(index, request.key_index + i as u64);
                    }
                }
                Command::Insert => {
                    assert_eq!(args[0], "SET");
                    inserts.push(request.key_index);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // Thread 1 of 2 inserts keys 1001, 1003, ...
        assert!(inserts.len() > 900);
        for (i, &key) in inserts.iter().enumerate() {
            assert_eq!(key, 1001 + 2 * i as u64);
        }
    }

    #[test]
    fn rmw_reads_then_writes_the_same_key() {
        let mut cfg = config(
            Ratio { set: 0, get: 1 },
            ValueSize {
                min_bytes: 2,
                max_bytes: 2,
            },
        );
        cfg.mix = Mix::KeyValue(OpWeights {
            rmw: 1,
            ..OpWeights::default()
        });
        let mut workload = Workload::new(&cfg, 0, 0, 1);
        let mut out = Vec::new();
        let request = workload.next(&mut out);
        assert_eq!(request.command, Command::Rmw);
        workload.encode_set(&request, &mut out);
        let commands = args_of(&out);
        assert_eq!(commands[0][0], "GET");
        assert_eq!(commands[1][0], "SET");
        assert_eq!(commands[0][1], commands[1][1]);
        assert_eq!(commands[1][2], "xx");
    }

    #[test]
    fn setup_streams_cover_each_index_once() {
        let fleet = TsbsConfig {
            hosts: 3,
            span_hours: 1,
        };
        let mut cfg = config(
            Ratio { set: 1, get: 0 },
            ValueSize {
                min_bytes: 1,
                max_bytes: 1,
            },
        );
        cfg.keys = 10;
        for (mix, total) in [(Mix::Load, 10), (Mix::TsCreate(fleet), 30)] {
            cfg.mix = mix;
            let mut seen = Vec::new();
            for thread in 0..3 {
                let mut workload = Workload::new(&cfg, 0, thread, 3);
                for _ in share(total, thread, 3) {
                    let mut out = Vec::new();
                    seen.push(workload.next(&mut out).key_index);
                }
            }
            assert_eq!(seen, (0..total).collect::<Vec<_>>());
        }
        cfg.mix = Mix::TsCreate(fleet);
        let mut out = Vec::new();
        Workload::new(&cfg, 0, 0, 1).next(&mut out);
        let args = &args_of(&out)[0];
        assert_eq!(
            args[..4],
            ["TS.CREATE", "cpu:host_0:usage_user", "LABELS", "hostname"]
        );
    }
}
