//! Shared widgets.

pub mod errors;
pub mod frame;
pub mod shell;
