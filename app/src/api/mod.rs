//! Every server function: the UI ↔ server contract. Each one authenticates and checks the
//! role on the server (in `crate::ssr`), whatever the browser shows.

pub mod audit;
pub mod auth;
pub mod centres;
pub mod jobs;
pub mod pipelines;
pub mod users;

/// The URL prefix of every server function (`#[server(prefix = "/fn")]`).
pub const SERVER_FN_PREFIX: &str = "/fn/";
