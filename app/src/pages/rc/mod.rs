pub mod centre_page;
pub mod dashboard;
pub mod history_page;
pub mod job_page;
pub mod jobs_page;
pub mod new_job_page;
pub mod servers_page;
