pub mod centre_page;
