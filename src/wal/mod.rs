//! The write-ahead log: segmented, checksummed, LZ4-compressed records with group-commit
//! fsync and crash recovery. It is the Raft log of the replication layer.
//!
//! (Lands with the WAL engine issue.)
