#![recursion_limit = "256"]
//! The browser entry point: hydrates the server-rendered console.

/// Called by the generated JS once the wasm module has loaded.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(capstan_app::App);
}
