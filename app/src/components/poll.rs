//! Periodic refresh for views with no change stream (pipeline metrics): bumps `tick`
//! every `every_ms` while mounted. Without JavaScript a reload shows the current state.

use leptos::prelude::*;

/// Bumps `tick` on an interval in the browser; renders nothing.
#[component]
pub fn Poll(tick: RwSignal<u64>, every_ms: u64) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        if let Ok(handle) = set_interval_with_handle(
            move || tick.update(|t| *t += 1),
            std::time::Duration::from_millis(every_ms),
        ) {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (tick, every_ms);
}
