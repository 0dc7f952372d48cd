//! The shape of the load, shared by all threads: the operation mix and its weights, the
//! keyspace and the value sizes, and how setup work is shared out between threads.

use std::ops::Range;

use super::{Command, TemplateSpec};
use crate::cli::{KeyDistKind, ValueSize};
use crate::tsbs::TsbsConfig;

/// Weights of the key-value operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpWeights {
    /// GET.
    pub read: u32,
    /// SET of an existing key.
    pub update: u32,
    /// SET of a new key.
    pub insert: u32,
    /// MGET of consecutive keys.
    pub scan: u32,
    /// GET then SET.
    pub rmw: u32,
}

impl OpWeights {
    pub(super) fn total(&self) -> u64 {
        [self.update, self.read, self.insert, self.scan, self.rmw]
            .iter()
            .map(|&w| u64::from(w))
            .sum()
    }

    /// Picks an operation for `draw` in `0..total()`.
    pub(super) fn pick(&self, draw: u64) -> Command {
        let mut left = draw;
        for (weight, command) in [
            (self.update, Command::Set),
            (self.read, Command::Get),
            (self.insert, Command::Insert),
            (self.scan, Command::Scan),
            (self.rmw, Command::Rmw),
        ] {
            if left < u64::from(weight) {
                return command;
            }
            left -= u64::from(weight);
        }
        unreachable!("draw beyond the total weight")
    }
}

/// What a workload sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Mix {
    /// Key-value operations in these proportions.
    KeyValue(OpWeights),
    /// Setup: SET every key of the keyspace once, in order (thread i its share).
    Load,
    /// Setup: TS.CREATE every series once (thread i its share).
    TsCreate(TsbsConfig),
    /// TSBS cpu-only ingest.
    TsIngest(TsbsConfig),
    /// TSBS cpu-only queries.
    TsQuery(TsbsConfig),
    /// `--command` templates, drawn by weight.
    Templates(Vec<TemplateSpec>),
}

/// The shape of the load, shared by all threads.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// What to send.
    pub mix: Mix,
    /// Keyspace size.
    pub keys: u64,
    /// Key distribution.
    pub key_dist: KeyDistKind,
    /// Bytes before the zero-padded key index.
    pub key_prefix: Vec<u8>,
    /// SET value sizes.
    pub value_size: ValueSize,
    /// Most keys one SCAN reads.
    pub scan_len_max: u32,
}

impl WorkloadConfig {
    /// The commands this workload can send, in report order.
    pub fn commands(&self) -> Vec<Command> {
        match &self.mix {
            Mix::KeyValue(w) => Command::ALL
                .into_iter()
                .filter(|c| match c {
                    Command::Set => w.update > 0,
                    Command::Get => w.read > 0,
                    Command::Insert => w.insert > 0,
                    Command::Scan => w.scan > 0,
                    Command::Rmw => w.rmw > 0,
                    _ => false,
                })
                .collect(),
            Mix::Load => vec![Command::Insert],
            Mix::TsCreate(_) => vec![Command::TsCreate],
            Mix::TsIngest(_) => vec![Command::TsMadd],
            Mix::TsQuery(_) => vec![Command::TsRange, Command::TsMrange],
            Mix::Templates(specs) => (0..specs.len())
                .filter(|&i| specs[i].weight > 0)
                .map(|i| Command::Template(i as u8))
                .collect(),
        }
    }

    /// [`WorkloadConfig::commands`] with their report names.
    pub fn named_commands(&self) -> Vec<(Command, String)> {
        self.commands()
            .into_iter()
            .map(|c| (c, self.command_name(c)))
            .collect()
    }

    /// A command's report name: a template's own, else [`Command::name`].
    pub fn command_name(&self, command: Command) -> String {
        match (&self.mix, command) {
            (Mix::Templates(specs), Command::Template(i)) => specs
                .get(usize::from(i))
                .map_or_else(|| command.name().to_string(), |s| s.name.clone()),
            _ => command.name().to_string(),
        }
    }

    /// For a setup mix, the number of requests that does the whole setup.
    pub fn setup_total(&self) -> Option<u64> {
        match &self.mix {
            Mix::Load => Some(self.keys),
            Mix::TsCreate(fleet) => Some(fleet.series_count()),
            _ => None,
        }
    }
}

/// Thread `thread_index`'s contiguous share of `0..total` when `threads` split it.
pub fn share(total: u64, thread_index: usize, threads: usize) -> Range<u64> {
    let at = |i: usize| (u128::from(total) * i as u128 / threads.max(1) as u128) as u64;
    at(thread_index)..at(thread_index + 1)
}
