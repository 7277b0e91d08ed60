//! Live updates: one Server-Sent Events stream per view (`/rc/{rc}/events`). The page
//! gives a signal to bump; its resource depends on that signal and refetches. Without
//! JavaScript nothing happens here and a reload shows the current state.

use leptos::prelude::*;

/// Subscribes to the centre's change stream while the view is mounted, bumping `tick` on
/// each change and after every reconnect (changes may have been missed meanwhile).
#[component]
pub fn Live(#[prop(into)] rc: Signal<String>, tick: RwSignal<u64>) -> impl IntoView {
    let connected = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    {
        Effect::new(move |_| {
            let url = format!("/rc/{}/events", rc.get());
            browser::open(url, tick, connected);
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (rc, tick);
    view! {
        <span
            class="live"
            class:on=move || connected.get()
            data-testid="live"
            data-connected=move || connected.get().to_string()
            title="live updates"
        >
            "●"
        </span>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use leptos::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use web_sys::EventSource;

    thread_local! {
        // EventSources are not `Send`; the cleanup (which must be) names them by id.
        static SOURCES: RefCell<HashMap<u64, EventSource>> = RefCell::new(HashMap::new());
        static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    pub fn open(url: String, tick: RwSignal<u64>, connected: RwSignal<bool>) {
        let Ok(source) = EventSource::new(&url) else {
            return;
        };
        let on_change = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |_| {
            tick.update(|t| *t += 1);
        });
        let _ =
            source.add_event_listener_with_callback("change", on_change.as_ref().unchecked_ref());
        on_change.forget();
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            // A reconnect may have missed changes: refresh once.
            if connected.get_untracked() {
                return;
            }
            connected.set(true);
            tick.update(|t| *t += 1);
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        on_open.forget();
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| connected.set(false));
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        let id = NEXT.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        });
        SOURCES.with(|s| s.borrow_mut().insert(id, source));
        on_cleanup(move || {
            if let Some(s) = SOURCES.with(|s| s.borrow_mut().remove(&id)) {
                s.close();
            }
        });
    }
}
