//! Live updates: one Server-Sent Events stream per view (console.md lesson 9).
//!
//! `GET /rc/{rc}/events` sends a `change` event whenever the centre's tree cache changes
//! (a job, item, instance or server changed) or this console's runtime committed run
//! history for the centre. Pages refetch their one resource on it; nothing polls per row.
//! Bursts are coalesced: a fire touches dozens of nodes, the browser hears one event.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use capstan_app::model::Role;
use capstan_app::ssr::AppState;
use capstan_app::ssr::auth::{RequestMeta, authenticate};
use futures::Stream;
use tokio::sync::watch;

use crate::rest::{ApiActor, ApiError, ClientMeta};

/// Events closer together than this are sent as one.
const COALESCE: Duration = Duration::from_millis(300);
/// How often a long-lived stream re-checks that its session is still valid.
const RECHECK: Duration = Duration::from_secs(60);

struct Feed {
    state: AppState,
    meta: RequestMeta,
    tree: watch::Receiver<u64>,
    runs: Option<watch::Receiver<u64>>,
    checked: Instant,
    // Keeps the centre's connection open while someone watches it.
    _conn: std::sync::Arc<capstan_app::ssr::registries::Connection>,
}

async fn changed(rx: &mut Option<watch::Receiver<u64>>) -> bool {
    match rx {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

impl Feed {
    /// The next change, or `None` when the stream should end (session gone, centre
    /// connection dropped).
    async fn next(&mut self) -> Option<u64> {
        loop {
            let alive = tokio::select! {
                r = self.tree.changed() => r.is_ok(),
                r = changed(&mut self.runs) => r,
                () = tokio::time::sleep(RECHECK) => {
                    if !self.session_ok().await {
                        return None;
                    }
                    continue;
                }
            };
            if !alive {
                return None;
            }
            tokio::time::sleep(COALESCE).await;
            let generation = *self.tree.borrow_and_update();
            if let Some(r) = &mut self.runs {
                r.borrow_and_update();
            }
            if self.checked.elapsed() > RECHECK && !self.session_ok().await {
                return None;
            }
            return Some(generation);
        }
    }

    async fn session_ok(&mut self) -> bool {
        self.checked = Instant::now();
        authenticate(&self.state, &self.meta)
            .await
            .and_then(|a| a.require(Role::Viewer))
            .is_ok()
    }
}

/// `GET /rc/{rc}/events`.
pub async fn events(
    State(state): State<AppState>,
    ApiActor(actor): ApiActor,
    Path(rc): Path<String>,
    ClientMeta(meta): ClientMeta,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let (row, conn) = capstan_app::ssr::jobs::open(&state, &actor, &rc, Role::Viewer).await?;
    let feed = Feed {
        meta,
        runs: state.runtimes.history(&row).map(|h| h.commits()),
        tree: conn.cache.generation(),
        checked: Instant::now(),
        _conn: conn,
        state,
    };
    let stream = futures::stream::unfold(feed, |mut feed| async move {
        let generation = feed.next().await?;
        let event = Event::default()
            .event("change")
            .data(generation.to_string());
        Some((Ok(event), feed))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(20))))
}
