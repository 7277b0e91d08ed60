pub mod audit_page;
pub mod users_page;
