//! The memtable: a concurrent skiplist of the newest writes.
