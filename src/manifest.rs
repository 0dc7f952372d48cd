//! The manifest: which SSTables are live, installed by durable rename.
