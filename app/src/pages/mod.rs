//! One routed page per file, grouped by area.

pub mod account;
pub mod admin;
pub mod centres;
pub mod home_page;
pub mod login_page;
pub mod not_found_page;
pub mod rc;
