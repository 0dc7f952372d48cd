//! Write-ahead log: segments of CRC-checked records.
