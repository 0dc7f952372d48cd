//! What to send: the SET/GET mix, the keys (through [`crate::keydist`]) and the values.
//! Pure apart from the caller's buffer: a seeded workload produces the same requests
//! every time.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::cli::{KeyDistKind, Ratio, ValueSize};
use crate::keydist::{Access, KeyGenerator};
use crate::limits;
use crate::resp_client::{self, Reply};

/// The commands the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `SET key value`; expects `+OK`.
    Set,
    /// `GET key`; expects a bulk string or null.
    Get,
}

impl Command {
    /// Every command, in report order; `ALL[c.index()] == c`.
    pub const ALL: [Command; 2] = [Command::Set, Command::Get];

    /// Position in [`Command::ALL`], for per-command arrays.
    pub fn index(self) -> usize {
        match self {
            Command::Set => 0,
            Command::Get => 1,
        }
    }

    /// Upper-case name, as sent.
    pub fn name(self) -> &'static str {
        match self {
            Command::Set => "SET",
            Command::Get => "GET",
        }
    }

    /// Whether `reply` is what this command should get: SET expects `+OK`, GET a bulk
    /// string or null; `-...` is an error whatever the command.
    pub fn judge(self, reply: &Reply<'_>) -> Outcome {
        match (self, reply) {
            (_, Reply::Error(_)) => Outcome::Error,
            (Command::Set, Reply::Simple(b"OK")) => Outcome::Ok,
            (Command::Get, Reply::Bulk(_) | Reply::Null) => Outcome::Ok,
            _ => Outcome::Unexpected,
        }
    }
}

/// How a reply compares with what its command expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The expected kind of reply.
    Ok,
    /// An error reply.
    Error,
    /// Any other reply.
    Unexpected,
}

/// The shape of the load, shared by all threads.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// SET:GET weights.
    pub ratio: Ratio,
    /// Keyspace size.
    pub keys: u64,
    /// Key distribution.
    pub key_dist: KeyDistKind,
    /// Bytes before the zero-padded key index.
    pub key_prefix: Vec<u8>,
    /// SET value sizes.
    pub value_size: ValueSize,
}

/// One request to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// SET or GET.
    pub command: Command,
    /// Index of the key in the keyspace.
    pub key_index: u64,
    /// Value bytes (SET only; 0 for GET).
    pub value_len: usize,
}

/// One thread's request stream.
pub struct Workload {
    config: WorkloadConfig,
    keys: KeyGenerator,
    rng: SmallRng,
    value: Vec<u8>,
    key: Vec<u8>,
}

impl Workload {
    /// The stream of thread `thread_index` of `threads`: seeded with `seed + thread_index`,
    /// and with sequential / latest keys starting at the thread's share of the keyspace.
    pub fn new(config: &WorkloadConfig, seed: u64, thread_index: usize, threads: usize) -> Self {
        let start =
            (u128::from(config.keys) * thread_index as u128 / threads.max(1) as u128) as u64;
        Self {
            keys: KeyGenerator::new(config.key_dist, config.keys, start),
            rng: SmallRng::seed_from_u64(seed.wrapping_add(thread_index as u64)),
            value: vec![b'x'; config.value_size.max_bytes],
            key: Vec::with_capacity(config.key_prefix.len() + 20),
            config: config.clone(),
        }
    }

    /// Draws the next request.
    pub fn next_request(&mut self) -> Request {
        let Ratio { set, get } = self.config.ratio;
        let total = u64::from(set) + u64::from(get);
        let command = if self.rng.gen_range(0..total) < u64::from(set) {
            Command::Set
        } else {
            Command::Get
        };
        let (access, value_len) = match command {
            Command::Set => {
                let ValueSize {
                    min_bytes,
                    max_bytes,
                } = self.config.value_size;
                (Access::Write, self.rng.gen_range(min_bytes..=max_bytes))
            }
            Command::Get => (Access::Read, 0),
        };
        let key_index = self.keys.next_key(&mut self.rng, access);
        Request {
            command,
            key_index,
            value_len,
        }
    }

    /// The key text of `key_index`: the prefix and the index zero-padded to 12 digits.
    pub fn key_text(&mut self, key_index: u64) -> &[u8] {
        self.key.clear();
        self.key.extend_from_slice(&self.config.key_prefix);
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(key_index).as_bytes();
        let padding = limits::KEY_DIGITS.saturating_sub(digits.len());
        self.key.resize(self.key.len() + padding, b'0');
        self.key.extend_from_slice(digits);
        &self.key
    }

    /// Appends `request` as RESP to `out`.
    pub fn encode(&mut self, request: &Request, out: &mut Vec<u8>) {
        self.key_text(request.key_index);
        match request.command {
            Command::Set => resp_client::encode_command(
                out,
                &[b"SET", &self.key, &self.value[..request.value_len]],
            ),
            Command::Get => resp_client::encode_command(out, &[b"GET", &self.key]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ratio: Ratio, value_size: ValueSize) -> WorkloadConfig {
        WorkloadConfig {
            ratio,
            keys: 1000,
            key_dist: KeyDistKind::Uniform,
            key_prefix: b"key:".to_vec(),
            value_size,
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
    fn judges_replies_per_command() {
        assert_eq!(Command::Set.judge(&Reply::Simple(b"OK")), Outcome::Ok);
        assert_eq!(
            Command::Set.judge(&Reply::Simple(b"QUEUED")),
            Outcome::Unexpected
        );
        assert_eq!(Command::Set.judge(&Reply::Null), Outcome::Unexpected);
        assert_eq!(Command::Get.judge(&Reply::Bulk(b"v")), Outcome::Ok);
        assert_eq!(Command::Get.judge(&Reply::Null), Outcome::Ok);
        assert_eq!(Command::Get.judge(&Reply::Integer(1)), Outcome::Unexpected);
        assert_eq!(Command::Get.judge(&Reply::Error(b"ERR")), Outcome::Error);
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
        };
        workload.encode(&get, &mut out);
        assert_eq!(out, b"*2\r\n$3\r\nGET\r\n$16\r\nkey:000000000007\r\n");
    }
}
