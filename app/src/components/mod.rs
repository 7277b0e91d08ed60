//! Shared widgets.

pub mod centre_tabs;
pub mod errors;
pub mod frame;
pub mod job_actions;
pub mod live;
pub mod poll;
pub mod shell;
pub mod url;
