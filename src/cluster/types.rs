//! The openraft type configuration and node ids.
//!
//! A Raft node id is a `u64`. Operators name nodes with strings (`[node] id = "node-1"`,
//! WolfScale's layout); [`node_id_from_name`] maps a name to its id by its trailing decimal
//! number, so "the lowest id" (the preferred leader) is the natural order of the names:
//!
//! | name | id | note |
//! |---|---|---|
//! | `node-1` | 1 | |
//! | `node-2` | 2 | |
//! | `node-10` | 10 | after `node-9`, natural order (not string order) |
//! | `db7` | 7 | any prefix of letters, digits, `-`, `_` |
//! | `3` | 3 | a bare number |
//! | `node-0` | error | 0 is not a node id (openraft's "none") |
//! | `node` | error | no trailing number |
//! | `node 1` | error | only ASCII letters, digits, `-`, `_` |
//!
//! Two names with the same number (`a-1`, `b-1`) map to the same id: configuration
//! validation must refuse such a cluster (a later step, with the `[cluster]` wiring).

use std::fmt;

use openraft::{BasicNode, TokioRuntime};
use serde::{Deserialize, Serialize};

/// A Raft node id (see the module doc for the mapping from names).
pub type NodeId = u64;

/// Longest accepted node name, bytes.
pub const NODE_NAME_BYTES_MAX: usize = 64;

/// One replicated command: opaque bytes to the consensus layer (a captured transaction or
/// a DDL statement, encoded by `capture/` in a later issue).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({} bytes)", self.0.len())
    }
}

/// What applying a [`Command`] answered (opaque bytes, for the proposer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied(pub Vec<u8>);

/// Snapshot contents. Snapshots are off (`SnapshotPolicy::Never`); a real one will be a
/// MariaDB dump streamed by its own transport (later issue), so the data is a byte buffer
/// the [`crate::cluster::state_machine::Applier`] produces and consumes.
pub type SnapshotData = Vec<u8>;

openraft::declare_raft_types!(
    /// shoal's Raft types: u64 ids, [`BasicNode`] (the peer address), opaque commands.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = NodeId,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotData,
        AsyncRuntime = TokioRuntime,
);

/// A log entry of shoal's Raft log.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id: (term, index) with `single-term-leader`.
pub type LogId = openraft::LogId<NodeId>;
/// The Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;
/// A storage error.
pub type StorageError = openraft::StorageError<NodeId>;

/// Why a node name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeNameError {
    /// Empty, too long, or a character outside `[A-Za-z0-9_-]`.
    #[error("node name {name:?} is not valid: use 1..={NODE_NAME_BYTES_MAX} ASCII letters, digits, '-' or '_', ending in the node's number (node-1)")]
    Invalid {
        /// The name as given.
        name: String,
    },
    /// No trailing number, or 0, or larger than u64.
    #[error("node name {name:?} must end in a number from 1 up (node-1, node-2, ...): that number is the node's id and orders the preferred leader")]
    NoNumber {
        /// The name as given.
        name: String,
    },
}

/// The node id of a node name (table in the module doc). Pure.
pub fn node_id_from_name(name: &str) -> Result<NodeId, NodeNameError> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.is_empty() || name.len() > NODE_NAME_BYTES_MAX || !ok_chars {
        return Err(NodeNameError::Invalid { name: name.to_string() });
    }
    let digits = name.bytes().rev().take_while(|b| b.is_ascii_digit()).count();
    let number = &name[name.len() - digits..];
    match number.parse::<NodeId>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(NodeNameError::NoNumber { name: name.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the module doc's table.
    #[test]
    fn node_names_map_by_trailing_number() {
        assert_eq!(node_id_from_name("node-1"), Ok(1));
        assert_eq!(node_id_from_name("node-2"), Ok(2));
        assert_eq!(node_id_from_name("node-10"), Ok(10));
        assert_eq!(node_id_from_name("db7"), Ok(7));
        assert_eq!(node_id_from_name("3"), Ok(3));
        assert!(matches!(node_id_from_name("node-0"), Err(NodeNameError::NoNumber { .. })));
        assert!(matches!(node_id_from_name("node"), Err(NodeNameError::NoNumber { .. })));
        assert!(matches!(node_id_from_name("node 1"), Err(NodeNameError::Invalid { .. })));
        assert!(matches!(node_id_from_name(""), Err(NodeNameError::Invalid { .. })));
        assert!(matches!(node_id_from_name("node-99999999999999999999999"), Err(NodeNameError::NoNumber { .. })));
        assert!(node_id_from_name("node-9").unwrap() < node_id_from_name("node-10").unwrap());
    }
}
