pub mod account_page;
