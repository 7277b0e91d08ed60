//! Capstan's registry: where jobs, instances and shard assignments live.
//!
//! This crate is what the scheduler, the stream runtime and the console stand on. It knows
//! nothing of the console and reads no environment variables: callers pass typed config.
//!
//! What is here today:
//! - [`ConnectString`]: a validated `host:port[,host:port…]` list, the only way an address
//!   reaches a ZooKeeper client (an unvalidated address is an SSRF hole, see
//!   `elasticjob#2541`);
//! - [`ZkSettings`] and [`probe`]: open a real ZooKeeper session, authenticate, look at the
//!   namespace and report what was found, with distinct errors for every way it can fail.
#![warn(missing_docs)]

mod connect;
mod error;
mod zookeeper;

pub use connect::{ConnectString, Endpoint, Host};
pub use error::{Error, Result};
pub use zookeeper::{ProbeReport, ZkSettings, probe};
