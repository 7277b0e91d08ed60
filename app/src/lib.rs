//! The Capstan console UI.
//!
//! Compiled twice: with `ssr` for the server (pages render there first, and every server
//! function runs there) and with `hydrate` for the browser. Pages render completely
//! without JavaScript (every route uses `SsrMode::Async`) and every form posts to a server
//! function, so the console works before, and without, hydration.

#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod error;
pub mod i18n;
pub mod model;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

use crate::components::shell::{Layout, Session};
use crate::pages::account::account_page::AccountPage;
use crate::pages::admin::audit_page::AuditPage;
use crate::pages::admin::users_page::UsersPage;
use crate::pages::centres::centre_form_page::CentreFormPage;
use crate::pages::centres::centres_page::CentresPage;
use crate::pages::home_page::HomePage;
use crate::pages::login_page::LoginPage;
use crate::pages::not_found_page::NotFoundPage;
use crate::pages::rc::centre_page::CentrePage;
use crate::pages::rc::history_page::HistoryPage;
use crate::pages::rc::job_page::JobPage;
use crate::pages::rc::jobs_page::JobsPage;
use crate::pages::rc::new_job_page::NewJobPage;
use crate::pages::rc::pipeline_page::PipelinePage;
use crate::pages::rc::pipelines_page::PipelinesPage;
use crate::pages::rc::servers_page::ServersPage;

/// The HTML document around the app; rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <link rel="stylesheet" href="/pkg/capstan.css" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// The routed application.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    Session::provide();
    view! {
        <Title text="Capstan" />
        <Router>
            <Routes fallback=NotFoundPage>
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=Layout ssr=SsrMode::Async>
                    <Route path=path!("") view=HomePage ssr=SsrMode::Async />
                    <Route path=path!("/rc/:rc") view=CentrePage ssr=SsrMode::Async />
                    <Route path=path!("/rc/:rc/jobs") view=JobsPage ssr=SsrMode::Async />
                    <Route path=path!("/rc/:rc/jobs/new") view=NewJobPage ssr=SsrMode::Async />
                    <Route path=path!("/rc/:rc/jobs/:job") view=JobPage ssr=SsrMode::Async />
                    <Route path=path!("/rc/:rc/servers") view=ServersPage ssr=SsrMode::Async />
                    <Route path=path!("/rc/:rc/history") view=HistoryPage ssr=SsrMode::Async />
                    <Route path=path!("/rc/:rc/pipelines") view=PipelinesPage ssr=SsrMode::Async />
                    <Route path=path!("/rc/:rc/pipelines/:name") view=PipelinePage ssr=SsrMode::Async />
                    <Route path=path!("/centres") view=CentresPage ssr=SsrMode::Async />
                    <Route path=path!("/centres/new") view=CentreFormPage ssr=SsrMode::Async />
                    <Route path=path!("/centres/:rc/edit") view=CentreFormPage ssr=SsrMode::Async />
                    <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/users") view=UsersPage ssr=SsrMode::Async />
                    <Route path=path!("/admin/audit") view=AuditPage ssr=SsrMode::Async />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
