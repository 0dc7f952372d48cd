//! `tskv-tool`: offline inspection of a tskv data directory, resharding and compaction.
//!
//! The inspecting commands never modify anything: every file is opened read-only, and the
//! store is not opened through [`tskv::store::ShardStore::open`] (which truncates torn WAL
//! tails and deletes leftover files). They decode the on-disk formats with the library's
//! own decoders, so they see exactly what recovery would see. `reshard` and `compact` write
//! through the engine: the first builds a new data directory and swaps it in, the second
//! compacts each shard fully in place (and `wal-repair --yes` rewrites WAL segments).
//!
//! Modules, in the order a data directory is read:
//!
//! * [`datadir`]: the `TSKV` file, the `LOCK` state and the shard directories, and the
//!   problems found in them (`info`, `verify`).
//! * [`segment`]: one WAL segment: records, valid prefix and tail state (`wal`).
//! * [`table`]: one SSTable: footer, blocks, Bloom filter, checksums (`sst`).
//! * [`lookup`]: an offline point read with the engine's rules (`get`).
//! * [`reshard`]: rewriting a data directory for another shard count (`reshard`).
//! * [`compact`]: a manual full compaction of every shard (`compact`).
//! * [`render`]: text output; `--json` output is the serde form of the same reports.
//! * [`repr`]: key and value escaping, as Redis's `sdscatrepr`.
//!
//! Exit codes: 0 success, 1 corruption found, 2 usage or I/O error.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

mod compact;
mod datadir;
mod lookup;
mod render;
mod repair;
mod repr;
mod reshard;
mod segment;
mod table;

/// Offline inspection of a tskv data directory, and resharding.
#[derive(Debug, Parser)]
#[command(
    name = "tskv-tool",
    version,
    about = "Offline inspection of a tskv data directory, and resharding",
    long_about = None
)]
struct Args {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Summarize a data directory: shards, manifests, SSTables, WAL segments, orphan files
    /// and whether a server holds the LOCK.
    Info {
        /// The data directory (holding TSKV and shard-NNN/).
        data_dir: PathBuf,
    },
    /// Show one WAL segment: record count, sequence range, valid bytes and tail state.
    Wal {
        /// A segment file, wal-NNNNNNNNNN.log.
        segment: PathBuf,
        /// Also list every record (offset, sequence number, kind, key, value length).
        #[arg(long)]
        records: bool,
    },
    /// Show one SSTable: footer fields, blocks and Bloom filter; verifies every block
    /// checksum (exit 1 if one fails).
    Sst {
        /// An SSTable file, sst-NNNNNNNNNN.sst.
        sst: PathBuf,
        /// Also list every entry (key, sequence number, value length or tombstone).
        #[arg(long)]
        entries: bool,
    },
    /// Check every manifest, SSTable block and WAL record of a data directory. Prints each
    /// problem with file and offset; exit 0 when clean (warnings allowed), 1 on corruption.
    Verify {
        /// The data directory (holding TSKV and shard-NNN/).
        data_dir: PathBuf,
    },
    /// Read one key offline with the engine's rules: newest WAL record in the valid
    /// prefix of the live segments, then SSTables newest first.
    Get {
        /// The data directory (holding TSKV and shard-NNN/).
        data_dir: PathBuf,
        /// The key, as raw bytes.
        key: OsString,
    },
    /// Repair the WAL segments that recovery refuses (bad bytes a crash cannot explain):
    /// keep the valid prefix and every intact batch after the bad bytes, lose only the
    /// bad bytes. Shows the plan and exits 1 if a repair is needed; --yes does it, keeping
    /// each old segment as `wal-N.log.corrupt-<unix seconds>`.
    WalRepair {
        /// The data directory (holding TSKV and shard-NNN/); no server may be running on it.
        data_dir: PathBuf,
        /// Do the repair (without it nothing is changed).
        #[arg(long)]
        yes: bool,
    },
    /// Compact a stopped server's data directory fully: flush each shard's WAL and rewrite
    /// every table down to the last level (overwritten values and tombstones go). Prints
    /// each shard's live SSTables and bytes before and after.
    Compact {
        /// The data directory (holding TSKV and shard-NNN/); no server may be running on it.
        data_dir: PathBuf,
    },
    /// Rewrite a stopped server's data directory for another shard count. Without --out,
    /// the result replaces DIR and the old directory is kept as DIR.pre-reshard-YYYYMMDDTHHMMSSZ.
    Reshard {
        /// The data directory (holding TSKV and shard-NNN/); no server may be running on it.
        data_dir: PathBuf,
        /// The new shard count.
        #[arg(long, value_parser = clap::value_parser!(u64).range(tskv::config::SHARDS_RANGE))]
        shards: u64,
        /// Write the resharded directory here (it must not exist) and leave DIR as it is.
        #[arg(long, value_name = "NEW_DIR")]
        out: Option<PathBuf>,
    },
}

/// Why the tool could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not name what the command needs.
    #[error("{0}")]
    Usage(String),
    /// An I/O error, with what was being done and to which file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the file.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Data the command needs is corrupt.
    #[error("{0}")]
    Corrupt(String),
}

impl ToolError {
    /// Builds the error mapper for an I/O failure while doing `context`.
    pub fn io(context: String) -> impl FnOnce(io::Error) -> ToolError {
        move |source| ToolError::Io { context, source }
    }

    fn exit_code(&self) -> u8 {
        match self {
            ToolError::Corrupt(_) => 1,
            ToolError::Usage(_) | ToolError::Io { .. } => 2,
        }
    }
}

impl From<tskv::datadir::DataDirError> for ToolError {
    fn from(e: tskv::datadir::DataDirError) -> Self {
        match e {
            tskv::datadir::DataDirError::Io { context, source } => {
                ToolError::Io { context, source }
            }
            locked @ tskv::datadir::DataDirError::Locked(_) => ToolError::Usage(locked.to_string()),
            other => ToolError::Corrupt(other.to_string()),
        }
    }
}

impl From<tskv::base::StoreError> for ToolError {
    fn from(e: tskv::base::StoreError) -> Self {
        match e {
            tskv::base::StoreError::Io { context, source } => ToolError::Io { context, source },
            other => ToolError::Corrupt(other.to_string()),
        }
    }
}

fn main() -> ExitCode {
    tskv::runtime::sys::restore_default_sigpipe();
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tskv-tool: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints `report` as JSON, or as text with `text`.
fn emit<T: Serialize>(json: bool, report: &T, text: impl FnOnce(&T) -> String) {
    if json {
        let out = serde_json::to_string_pretty(report).expect("reports serialize");
        println!("{out}");
    } else {
        print!("{}", text(report));
    }
}

fn run(args: &Args) -> Result<ExitCode, ToolError> {
    let json = args.json;
    match &args.command {
        Command::Info { data_dir } => {
            let scan = datadir::scan(data_dir, datadir::Depth::Summary)?;
            emit(json, &scan, render::info);
            Ok(ExitCode::SUCCESS)
        }
        Command::Wal { segment, records } => {
            let scan = segment::scan(segment, 0, *records)?;
            emit(json, &scan, render::wal);
            Ok(ExitCode::SUCCESS)
        }
        Command::Sst { sst, entries } => {
            let scan = table::scan(sst, table::Depth::Blocks { entries: *entries })?;
            emit(json, &scan, render::sst);
            Ok(exit_for(scan.problems.is_empty()))
        }
        Command::Verify { data_dir } => {
            let scan = datadir::scan(data_dir, datadir::Depth::Verify)?;
            let report = datadir::VerifyReport::from_scan(&scan);
            emit(json, &report, render::verify);
            Ok(exit_for(report.error_count == 0))
        }
        Command::Get { data_dir, key } => {
            let found = lookup::get(data_dir, key.as_bytes())?;
            for warning in &found.warnings {
                eprintln!("tskv-tool: warning: {warning}");
            }
            emit(json, &found, render::get);
            Ok(ExitCode::SUCCESS)
        }
        Command::WalRepair { data_dir, yes } => {
            let report = repair::wal_repair(data_dir, *yes)?;
            emit(json, &report, render::wal_repair);
            Ok(exit_for(report.segments.is_empty() || report.applied))
        }
        Command::Compact { data_dir } => {
            let report = compact::compact(data_dir)?;
            emit(json, &report, render::compact);
            Ok(ExitCode::SUCCESS)
        }
        Command::Reshard {
            data_dir,
            shards,
            out,
        } => {
            let shards = usize::try_from(*shards).expect("--shards is at most 1024");
            let report = reshard::reshard(data_dir, shards, out.as_deref())?;
            emit(json, &report, render::reshard);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn exit_for(clean: bool) -> ExitCode {
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
