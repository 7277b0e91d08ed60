//! Capstan's registry: where jobs, instances and shard assignments live.
//!
//! This crate is what the scheduler, the stream runtime and the console stand on. It knows
//! nothing of the console and reads no environment variables: callers pass typed config.
//!
//! - [`Registry`]: one async handle (a session, rooted at a namespace) with the same
//!   behaviour over ZooKeeper ([`Registry::zookeeper`]) and over the embedded store
//!   ([`Registry::embedded`], an in-process tree persisted in SQLite): nodes in four
//!   modes, versions, `multi`, one-shot and persistent recursive watches, session states.
//! - [`ConnectString`]: a validated `host:port[,host:port…]` list, the only way an address
//!   reaches a ZooKeeper client (an unvalidated address is an SSRF hole, see
//!   `elasticjob#2541`).
//! - [`recipes`]: a mutex laid out exactly like Curator's `LeaderLatch`, and leader
//!   election on it.
//! - [`cache::TreeCache`]: a subtree mirrored in memory by a persistent recursive watch,
//!   with consistent snapshots and change notifications.
//! - [`probe`]: open a session, authenticate, look at a namespace, and report.
//!
//! Invariants both backends keep: a failed `multi` changes nothing; a write is visible to
//! nobody before it is durable (embedded) or committed (ZooKeeper); an ended session's
//! ephemeral nodes are deleted and its watches are told.
#![warn(missing_docs)]

pub mod cache;
mod connect;
mod embedded;
mod error;
mod node;
pub mod path;
pub mod recipes;
mod registry;
mod zookeeper;

pub use connect::{ConnectString, Endpoint, Host};
pub use embedded::{Durability, EmbeddedStore};
pub use error::{Error, Result};
pub use node::{
    CreateMode, CreateOptions, EventKind, NodeData, Op, OpResult, SessionEvent, Stat, WatchedEvent,
};
pub use registry::{EventStream, OpCounts, Registry, SessionEvents, Watch};
pub use zookeeper::{ProbeReport, ZkSettings, probe};
