//! Showing errors: a summary for the form and a message under each field.

use leptos::prelude::*;

use crate::error::AppError;
use crate::i18n::{t, use_lang};

/// The error of the last submission of a form, if any.
pub type LastError = Signal<Option<AppError>>;

/// The error banner at the top of a form or page.
#[component]
pub fn ErrorBox(#[prop(into)] error: LastError) -> impl IntoView {
    let lang = use_lang();
    move || {
        error.get().map(|e| {
            let title = match &e {
                AppError::Validation { .. } => t(lang, "error.validation"),
                AppError::NotFound(_) => t(lang, "error.not_found"),
                AppError::Forbidden(_) => t(lang, "error.forbidden"),
                AppError::Unreachable(_) => t(lang, "error.unreachable"),
                _ => t(lang, "error.generic"),
            };
            view! {
                <div class="alert alert-error" role="alert" data-code=e.code()>
                    <strong>{title}</strong>
                    " "
                    <span>{e.to_string()}</span>
                </div>
            }
        })
    }
}

/// The message for one field of a form, under the input.
#[component]
pub fn FieldError(#[prop(into)] error: LastError, field: &'static str) -> impl IntoView {
    move || {
        error.get().and_then(|e| {
            e.fields().and_then(|f| f.get(field).cloned()).map(|msg| {
                view! { <div class="field-error" data-field=field>{msg}</div> }
            })
        })
    }
}

/// The error of a server action's latest result, as a signal.
pub fn action_error<I, O>(action: ServerAction<I>) -> LastError
where
    I: leptos::server_fn::ServerFn<Output = O, Error = AppError> + Clone + Send + Sync + 'static,
    O: Clone + Send + Sync + 'static,
{
    Signal::derive(move || action.value().get().and_then(Result::err))
}
