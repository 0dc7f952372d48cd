//! What a transaction across shards runs, run after run, and what it replies.
//!
//! A run sends every participant its ops at once; the next run starts when all have
//! answered. Most commands need one run. `MSETNX` and `RENAME` whose keys live on several
//! shards need two: read (does any key exist; the value and deadline to move), then write
//! what the reads decided. Inside `MULTI`, the queued commands become a program of units:
//! consecutive ordinary commands share one run, and each such `MSETNX` or `RENAME` takes
//! its two in its place, so every command still sees the ones queued before it, as in
//! Redis. All the keys of every unit are locked before the first run.

use super::Key;
use crate::command::SetCondition;
use crate::shard::mesh::{Op, OpResult, OwnedOp};

/// What a coordinated transaction does with its runs' results.
#[derive(Debug)]
pub(in crate::shard) enum Plan {
    /// `EXEC`: its queued commands' ops, unit by unit ([`Unit`]).
    Exec(Program),
    /// `MSETNX`: whether any key exists, then, if none does, set them all.
    MSetNx(Vec<(Key, Key)>),
    /// `RENAME` / `RENAMENX` (`nx`): read both keys, then move the value and its deadline.
    Rename {
        /// The key renamed.
        from: Key,
        /// Its new name.
        to: Key,
        /// `RENAMENX`.
        nx: bool,
    },
}

/// One step of an `EXEC` program.
#[derive(Debug)]
pub(in crate::shard) enum Unit {
    /// Ordinary ops that run together, each with its position in the `EXEC` reply.
    Ops(Vec<(u32, OwnedOp)>),
    /// An `MSETNX` or `RENAME` across shards at position `index`, in two runs.
    TwoRuns {
        /// Its position in the `EXEC` reply.
        index: u32,
        /// What it does.
        plan: Plan,
    },
}

/// An `EXEC` across shards: its units, the one running, and the results so far.
#[derive(Debug)]
pub(in crate::shard) struct Program {
    units: Vec<Unit>,
    current: usize,
    /// Whether the current two-run unit is in its second run.
    second: bool,
    results: Vec<Option<OpResult>>,
}

impl Program {
    /// A program of `units` over `op_count` ops in all.
    pub(in crate::shard) fn new(units: Vec<Unit>, op_count: usize) -> Self {
        Self {
            units,
            current: 0,
            second: false,
            results: vec![None; op_count],
        }
    }

    /// The ops of its first run.
    pub(in crate::shard) fn first_run(&self) -> Vec<OwnedOp> {
        self.units.first().map_or_else(Vec::new, Unit::first_run)
    }

    /// Takes a run's results: the next run's ops, or the `EXEC` reply's results.
    fn after_run(&mut self, results: Vec<OpResult>) -> Result<Vec<OwnedOp>, OpResult> {
        let Some(unit) = self.units.get_mut(self.current) else {
            return Err(self.batch());
        };
        match unit {
            Unit::Ops(ops) => {
                for ((index, _), result) in ops.iter().zip(results) {
                    self.results[*index as usize] = Some(result);
                }
            }
            Unit::TwoRuns { index, plan } => {
                let index = *index as usize;
                let next = if self.second {
                    Err(plan.final_result())
                } else {
                    plan.after_first_run(&results)
                };
                match next {
                    Ok(ops) => {
                        self.second = true;
                        return Ok(ops);
                    }
                    Err(result) => self.results[index] = Some(result),
                }
            }
        }
        self.current += 1;
        self.second = false;
        match self.units.get(self.current) {
            Some(unit) => Ok(unit.first_run()),
            None => Err(self.batch()),
        }
    }

    fn batch(&mut self) -> OpResult {
        OpResult::Batch(
            std::mem::take(&mut self.results)
                .into_iter()
                .map(|r| r.unwrap_or_else(|| OpResult::Err("ERR internal error: no result".into())))
                .collect(),
        )
    }
}

impl Unit {
    fn first_run(&self) -> Vec<OwnedOp> {
        match self {
            Unit::Ops(ops) => ops
                .iter()
                .map(|(_, op)| op.as_borrowed().to_owned_op())
                .collect(),
            Unit::TwoRuns { plan, .. } => plan.first_run(),
        }
    }
}

impl Plan {
    /// The ops of the first run of an `MSETNX` or `RENAME` (its reads).
    ///
    /// # Panics
    /// For [`Plan::Exec`], whose first run is [`Program::first_run`].
    pub(in crate::shard) fn first_run(&self) -> Vec<OwnedOp> {
        match self {
            Plan::MSetNx(pairs) => pairs.iter().map(|(k, _)| Op::Exists(k.clone())).collect(),
            Plan::Rename { from, to, .. } => {
                vec![Op::ReadVersion(from.clone()), Op::ReadVersion(to.clone())]
            }
            Plan::Exec(_) => unreachable!("an EXEC's first run comes from its program"),
        }
    }

    /// After a run: the ops of the next run, or the client's result.
    pub(in crate::shard) fn after_run(
        &mut self,
        results: Vec<OpResult>,
        second: &mut bool,
    ) -> Result<Vec<OwnedOp>, OpResult> {
        if let Plan::Exec(program) = self {
            return program.after_run(results);
        }
        if *second {
            return Err(self.final_result());
        }
        let next = self.after_first_run(&results);
        *second = next.is_ok();
        next
    }

    /// After the reads of an `MSETNX` or `RENAME`: its writes, or its reply.
    fn after_first_run(&self, results: &[OpResult]) -> Result<Vec<OwnedOp>, OpResult> {
        match self {
            Plan::MSetNx(pairs) => msetnx_next(pairs, results),
            Plan::Rename { from, to, nx } => rename_next(from, to, *nx, results),
            Plan::Exec(_) => unreachable!("an EXEC is run by its program"),
        }
    }

    /// The reply of an `MSETNX` or `RENAME` whose writes ran.
    fn final_result(&self) -> OpResult {
        match self {
            Plan::MSetNx(_) | Plan::Rename { nx: true, .. } => OpResult::Int(1),
            Plan::Rename { nx: false, .. } | Plan::Exec(_) => OpResult::Ok,
        }
    }
}

/// `MSETNX` after its reads: the sets if no key exists, else its reply (0) or an error.
fn msetnx_next(pairs: &[(Key, Key)], results: &[OpResult]) -> Result<Vec<OwnedOp>, OpResult> {
    for result in results {
        match result {
            OpResult::Int(0) => {}
            OpResult::Int(_) => return Err(OpResult::Int(0)),
            OpResult::Err(message) => return Err(OpResult::Err(message.clone())),
            other => return Err(OpResult::Err(format!("ERR internal error: {other:?}"))),
        }
    }
    Ok(pairs
        .iter()
        .map(|(key, value)| Op::Set {
            key: key.clone(),
            value: value.clone(),
            condition: SetCondition::Always,
        })
        .collect())
}

/// `RENAME` after reading both keys: the delete and the write, or its reply.
fn rename_next(
    from: &[u8],
    to: &[u8],
    nx: bool,
    results: &[OpResult],
) -> Result<Vec<OwnedOp>, OpResult> {
    let series = || OpResult::Err(crate::shard::strings::RENAME_SERIES.into());
    let (value, expire_at_ms) = match &results[0] {
        OpResult::Version(Some(version)) => version.clone(),
        OpResult::Version(None) => return Err(OpResult::Err("ERR no such key".into())),
        OpResult::WrongType => return Err(series()),
        OpResult::Err(message) => return Err(OpResult::Err(message.clone())),
        other => return Err(OpResult::Err(format!("ERR internal error: {other:?}"))),
    };
    match &results[1] {
        OpResult::WrongType => return Err(series()),
        OpResult::Version(Some(_)) if nx => return Err(OpResult::Int(0)),
        OpResult::Version(_) => {}
        OpResult::Err(message) => return Err(OpResult::Err(message.clone())),
        other => return Err(OpResult::Err(format!("ERR internal error: {other:?}"))),
    }
    Ok(vec![
        Op::Del(from.into()),
        Op::PutVersion {
            key: to.into(),
            value: value.into(),
            expire_at_ms,
        },
    ])
}
