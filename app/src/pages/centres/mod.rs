pub mod centre_form_page;
pub mod centres_page;
