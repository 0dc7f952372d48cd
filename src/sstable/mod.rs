//! SSTables: immutable sorted files of blocks, index, Bloom filter and footer.
