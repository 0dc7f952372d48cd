//! Reading one SSTable without changing it: footer, index, Bloom filter and, when asked,
//! every data block with its checksum, its entries and their agreement with the footer,
//! the index and the filter.
//!
//! [`Table::open`] already checks footer, index and Bloom block; a failure there is the
//! table's only problem, as nothing else can be located without them.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::Serialize;
use tskv::base::codec::open_block;
use tskv::base::StoreError;
use tskv::sstable::block::BlockEntries;
use tskv::sstable::bloom::Bloom;
use tskv::sstable::format::Footer;
use tskv::sstable::reader::Table;
use tskv::sstable::TableId;

use crate::datadir::{Problem, Severity};
use crate::repr::repr;
use crate::ToolError;

/// How much of a table to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// Footer, index and Bloom filter only.
    Summary,
    /// Every data block too, optionally keeping every entry.
    Blocks {
        /// Keep every entry for output.
        entries: bool,
    },
}

/// The footer's fields.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct FooterInfo {
    /// Offset of the index block.
    pub index_offset: u64,
    /// Length of the index block, crc included.
    pub index_bytes: u32,
    /// Offset of the Bloom block.
    pub bloom_offset: u64,
    /// Length of the Bloom block, crc included.
    pub bloom_bytes: u32,
    /// Entries, tombstones included.
    pub entry_count: u64,
    /// Lowest sequence number.
    pub smallest_seq: u64,
    /// Highest sequence number.
    pub largest_seq: u64,
    /// Format version (the only one this build reads).
    pub format_version: u32,
    /// The earliest expiry deadline of a value in the table (Unix ms), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_deadline_ms: Option<u64>,
}

impl From<&Footer> for FooterInfo {
    fn from(f: &Footer) -> Self {
        Self {
            index_offset: f.index_offset,
            index_bytes: f.index_len_bytes,
            bloom_offset: f.bloom_offset,
            bloom_bytes: f.bloom_len_bytes,
            entry_count: f.entry_count,
            smallest_seq: f.smallest_seq.0,
            largest_seq: f.largest_seq.0,
            first_deadline_ms: f.first_deadline_ms,
            format_version: f.format_version,
        }
    }
}

/// One data block, as the index places it.
#[derive(Clone, Debug, Serialize)]
pub struct BlockInfo {
    /// Offset in the file.
    pub offset: u64,
    /// Length, crc included.
    pub bytes: u32,
    /// The last key, escaped.
    pub last_key: String,
    /// Entries found in it (`None` if not read or unreadable).
    pub entry_count: Option<u64>,
}

/// One entry, for `sst --entries`.
#[derive(Clone, Debug, Serialize)]
pub struct EntryInfo {
    /// Index of its block.
    pub block: usize,
    /// The key, escaped.
    pub key: String,
    /// Its sequence number.
    pub seq: u64,
    /// Value length, or `None` for a tombstone.
    pub value_bytes: Option<usize>,
}

/// What one table holds.
#[derive(Clone, Debug, Serialize)]
pub struct TableScan {
    /// The file.
    pub path: String,
    /// The table id, if the file name is a table name.
    pub id: Option<u64>,
    /// Length of the file in bytes.
    pub file_bytes: u64,
    /// The footer, if the table opened.
    pub footer: Option<FooterInfo>,
    /// Bloom filter probes per key, if the table opened.
    pub bloom_probes: Option<u32>,
    /// Bits in the Bloom filter, if the table opened.
    pub bloom_bits: Option<u64>,
    /// The data blocks, if the table opened.
    pub blocks: Vec<BlockInfo>,
    /// Whether every data block was read and checked.
    pub blocks_checked: bool,
    /// Every entry, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<EntryInfo>>,
    /// What is wrong with the table (all errors as found; a caller may downgrade them).
    pub problems: Vec<Problem>,
}

/// Scans the table at `path` to `depth`.
///
/// # Errors
/// [`ToolError::Io`] if the file cannot be read; corruption is reported in
/// [`TableScan::problems`], not as an error.
pub fn scan(path: &Path, depth: Depth) -> Result<TableScan, ToolError> {
    let shown = path.display().to_string();
    let file_bytes = std::fs::metadata(path)
        .map_err(ToolError::io(format!(
            "reading metadata of SSTable {shown}"
        )))?
        .len();
    let id = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(TableId::from_file_name);
    let mut scan = TableScan {
        path: shown,
        id: id.map(|id| id.0),
        file_bytes,
        footer: None,
        bloom_probes: None,
        bloom_bits: None,
        blocks: Vec::new(),
        blocks_checked: false,
        entries: None,
        problems: Vec::new(),
    };
    let table = match Table::open(path, id.unwrap_or_default()) {
        Ok(table) => table,
        Err(StoreError::Corruption { offset, reason, .. }) => {
            scan.problems.push(scan.problem(Some(offset), reason));
            return Ok(scan);
        }
        Err(e) => return Err(e.into()),
    };
    scan.footer = Some(FooterInfo::from(table.footer()));
    scan.blocks = table
        .index()
        .iter()
        .map(|e| BlockInfo {
            offset: e.offset,
            bytes: e.len_bytes,
            last_key: repr(&e.last_key),
            entry_count: None,
        })
        .collect();
    let bloom = read_bloom(path, table.footer())?;
    scan.bloom_probes = Some(bloom.probes);
    scan.bloom_bits = Some(bloom.bits);
    if let Depth::Blocks { entries } = depth {
        if entries {
            scan.entries = Some(Vec::new());
        }
        check_blocks(&table, &bloom.filter, &mut scan);
        scan.blocks_checked = true;
    }
    Ok(scan)
}

impl TableScan {
    fn problem(&self, offset: Option<u64>, message: String) -> Problem {
        Problem {
            severity: Severity::Error,
            file: self.path.clone(),
            offset,
            message,
        }
    }
}

/// A decoded Bloom block and its dimensions.
struct BloomBlock {
    filter: Bloom,
    probes: u32,
    bits: u64,
}

/// Reads the Bloom block again (the table keeps its filter private) for its dimensions.
/// [`Table::open`] checked it, so a failure here means the file changed under us.
fn read_bloom(path: &Path, footer: &Footer) -> Result<BloomBlock, ToolError> {
    let shown = path.display();
    let file = File::open(path).map_err(ToolError::io(format!("opening SSTable {shown}")))?;
    let mut block = vec![0; footer.bloom_len_bytes as usize];
    file.read_exact_at(&mut block, footer.bloom_offset)
        .map_err(ToolError::io(format!("reading the Bloom block of {shown}")))?;
    let changed = |e: tskv::base::codec::FormatError| ToolError::Corrupt(format!("{shown}: {e}"));
    let payload = open_block(&block).map_err(changed)?;
    let filter = Bloom::decode(payload).map_err(changed)?;
    let probes = u32::from_le_bytes(payload[..4].try_into().expect("decoded Bloom has k"));
    Ok(BloomBlock {
        filter,
        probes,
        bits: (payload.len() as u64 - 4) * 8,
    })
}

/// What the blocks add up to, compared with the footer at the end.
#[derive(Default)]
struct Totals {
    entry_count: u64,
    smallest_seq: Option<u64>,
    largest_seq: Option<u64>,
    last_key: Option<Vec<u8>>,
    /// Whether every block was read and decoded to its end.
    complete: bool,
}

/// Reads every data block: checksum, entries, key order across blocks, index last keys,
/// Bloom membership; then compares the totals with the footer.
fn check_blocks(table: &Table, bloom: &Bloom, scan: &mut TableScan) {
    let mut totals = Totals {
        complete: true,
        ..Totals::default()
    };
    for block_index in 0..table.block_count() {
        check_block(table, block_index, bloom, scan, &mut totals);
    }
    if totals.complete {
        check_footer(table.footer(), &totals, scan);
    }
}

/// Checks data block `block_index` and adds it to `totals`.
fn check_block(
    table: &Table,
    block_index: usize,
    bloom: &Bloom,
    scan: &mut TableScan,
    totals: &mut Totals,
) {
    let index_entry = &table.index()[block_index];
    let offset = index_entry.offset;
    let payload = match table.read_block(block_index) {
        Ok(payload) => payload,
        Err(e) => {
            let reason = match e {
                StoreError::Corruption { reason, .. } => reason,
                other => other.to_string(),
            };
            let message = format!("data block {block_index}: {reason}");
            scan.problems.push(scan.problem(Some(offset), message));
            totals.complete = false;
            return;
        }
    };
    let mut count = 0u64;
    let mut block_last_key: Option<&[u8]> = None;
    for entry in BlockEntries::new(&payload) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                let message = format!("data block {block_index}: {}", e.reason);
                let at = offset.saturating_add(e.offset as u64);
                scan.problems.push(scan.problem(Some(at), message));
                totals.complete = false;
                scan.blocks[block_index].entry_count = Some(count);
                return;
            }
        };
        count += 1;
        let seq = entry.seq.0;
        if block_last_key.is_none()
            && totals
                .last_key
                .as_deref()
                .is_some_and(|prev| prev >= entry.key)
        {
            let message = format!(
                "data block {block_index}: first key {} not above the previous block's last key",
                repr(entry.key)
            );
            scan.problems.push(scan.problem(Some(offset), message));
        }
        if !bloom.may_contain(entry.key) {
            let message = format!(
                "Bloom filter does not contain key {} of data block {block_index}",
                repr(entry.key)
            );
            let at = table.footer().bloom_offset;
            scan.problems.push(scan.problem(Some(at), message));
        }
        totals.smallest_seq = Some(totals.smallest_seq.map_or(seq, |s| s.min(seq)));
        totals.largest_seq = Some(totals.largest_seq.map_or(seq, |s| s.max(seq)));
        if let Some(entries) = scan.entries.as_mut() {
            entries.push(EntryInfo {
                block: block_index,
                key: repr(entry.key),
                seq,
                value_bytes: entry.value.map(<[u8]>::len),
            });
        }
        block_last_key = Some(entry.key);
    }
    totals.entry_count += count;
    scan.blocks[block_index].entry_count = Some(count);
    if block_last_key != Some(index_entry.last_key.as_slice()) {
        let message = format!(
            "data block {block_index}: last key {} differs from the index's {}",
            block_last_key.map_or_else(|| "(none)".to_string(), repr),
            repr(&index_entry.last_key)
        );
        scan.problems.push(scan.problem(Some(offset), message));
    }
    if let Some(key) = block_last_key {
        totals.last_key = Some(key.to_vec());
    }
}

/// Compares the footer's counts with what the blocks hold.
fn check_footer(footer: &Footer, totals: &Totals, scan: &mut TableScan) {
    let footer_offset = scan.file_bytes.saturating_sub(footer.encoded_len() as u64);
    let fields = [
        ("entry_count", footer.entry_count, totals.entry_count),
        (
            "smallest_seq",
            footer.smallest_seq.0,
            totals.smallest_seq.unwrap_or(0),
        ),
        (
            "largest_seq",
            footer.largest_seq.0,
            totals.largest_seq.unwrap_or(0),
        ),
    ];
    for (field, in_footer, found) in fields {
        if in_footer != found {
            let message = format!("footer {field} is {in_footer} but the data blocks hold {found}");
            scan.problems
                .push(scan.problem(Some(footer_offset), message));
        }
    }
}
