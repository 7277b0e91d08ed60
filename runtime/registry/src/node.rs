//! Node-level types shared by both registry implementations.

/// How a node is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreateMode {
    /// Lives until deleted.
    Persistent,
    /// Deleted when the creating session ends.
    Ephemeral,
    /// Persistent, with a 10-digit counter appended to the name.
    PersistentSequential,
    /// Ephemeral, with a 10-digit counter appended to the name.
    EphemeralSequential,
}

impl CreateMode {
    /// Whether the node dies with its session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// Whether a counter is appended to the name.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential | CreateMode::EphemeralSequential
        )
    }
}

/// Options for [`crate::Registry::create_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// The node's mode.
    pub mode: CreateMode,
    /// Create missing ancestors as persistent nodes with empty data (as Curator's
    /// `creatingParentsIfNeeded`).
    pub create_parents: bool,
}

impl From<CreateMode> for CreateOptions {
    fn from(mode: CreateMode) -> Self {
        CreateOptions {
            mode,
            create_parents: false,
        }
    }
}

/// A node's metadata, as ZooKeeper reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    /// Transaction that created the node.
    pub czxid: i64,
    /// Transaction that last changed the node's data.
    pub mzxid: i64,
    /// Transaction that last changed the node's children.
    pub pzxid: i64,
    /// Creation time, ms since the epoch.
    pub ctime: i64,
    /// Last data change, ms since the epoch.
    pub mtime: i64,
    /// Number of data changes.
    pub version: i32,
    /// Number of child changes.
    pub cversion: i32,
    /// Owning session for an ephemeral node, else 0.
    pub ephemeral_owner: i64,
    /// Number of children.
    pub num_children: i32,
    /// Length of the data.
    pub data_length: i32,
}

/// One operation of an all-or-nothing [`crate::Registry::multi`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Fails the transaction unless `path` exists with data version `version` (-1: any).
    Check {
        /// Node.
        path: String,
        /// Expected data version.
        version: i32,
    },
    /// Creates a node (parents must exist, or be created earlier in the same transaction).
    Create {
        /// Node (for sequential modes, the prefix).
        path: String,
        /// Data.
        data: Vec<u8>,
        /// Mode.
        mode: CreateMode,
    },
    /// Sets data, optionally only at an expected version.
    Set {
        /// Node.
        path: String,
        /// Data.
        data: Vec<u8>,
        /// Expected data version.
        version: Option<i32>,
    },
    /// Deletes a childless node, optionally only at an expected version.
    Delete {
        /// Node.
        path: String,
        /// Expected data version.
        version: Option<i32>,
    },
}

/// The result of one [`Op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// The check passed.
    Check,
    /// Created; the actual path (with the counter for sequential modes).
    Create(String),
    /// Data set; the new stat.
    Set(Stat),
    /// Deleted.
    Delete,
}

/// What a watch reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The node was created.
    NodeCreated,
    /// The node was deleted.
    NodeDeleted,
    /// The node's data changed.
    NodeDataChanged,
    /// The node's children changed (one-shot child watches only).
    NodeChildrenChanged,
    /// The session ended (expired or closed) before the watch fired; it never will.
    SessionEnded,
}

/// A watch notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub kind: EventKind,
    /// The node it happened to (relative to the namespace); empty for `SessionEnded`.
    pub path: String,
}

/// A change of the session's connection state (Curator's connection states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionEvent {
    /// The first connection of this registry handle is established.
    Connected,
    /// The connection is lost; the session may still be alive. Stop starting work that
    /// relies on ephemeral nodes until `Reconnected` (or treat it as lost on `Expired`).
    Suspended,
    /// Connected again: the same session, or a new one after `Expired`.
    Reconnected,
    /// The session expired: its ephemeral nodes are gone and its watches will never fire.
    Expired,
    /// The handle was closed.
    Closed,
}

/// One node as [`crate::Registry::read_nodes`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeData {
    /// Data.
    pub data: Vec<u8>,
    /// Stat.
    pub stat: Stat,
    /// Child names.
    pub children: Vec<String>,
}
