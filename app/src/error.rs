//! `AppError`: the one error type that crosses the wire, for server functions and the REST API.

use std::collections::BTreeMap;

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An error a user can act on. Internal failures carry only a correlation id: SQL text and
/// stack traces stay in the server log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// Input failed validation; `fields` maps a field name to what is wrong with it.
    #[error("{message}")]
    Validation {
        /// A summary for the top of the form.
        message: String,
        /// Per-field messages.
        fields: BTreeMap<String, String>,
    },
    /// No valid session or token.
    #[error("sign in first")]
    Unauthenticated,
    /// Wrong username or password.
    #[error("wrong username or password")]
    BadCredentials,
    /// Signed in, but the role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The user must change the generated password before doing anything else.
    #[error("change your password first")]
    PasswordChangeRequired,
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with existing state (a duplicate name, say).
    #[error("{0}")]
    Conflict(String),
    /// Too many failed attempts.
    #[error("too many failed sign-ins; try again in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the next attempt is accepted.
        retry_after_secs: u64,
    },
    /// A registry or other dependency could not be reached or refused us.
    #[error("{0}")]
    Unreachable(String),
    /// Something failed on the server; the id finds it in the log.
    #[error("internal error (reference {0}); the server log has the details")]
    Internal(String),
    /// The request body is larger than the server accepts.
    #[error("the request is too large")]
    TooLarge,
    /// The request never reached the server function (network, decoding).
    #[error("request failed: {0}")]
    Request(String),
}

impl AppError {
    /// A validation error on one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AppError::Validation {
            message: message.clone(),
            fields: BTreeMap::from([(field.to_owned(), message)]),
        }
    }

    /// The stable machine-readable code used in API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation { .. } => "validation",
            AppError::Unauthenticated => "unauthenticated",
            AppError::BadCredentials => "bad_credentials",
            AppError::Forbidden(_) => "forbidden",
            AppError::PasswordChangeRequired => "password_change_required",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unreachable(_) => "unreachable",
            AppError::Internal(_) => "internal",
            AppError::TooLarge => "too_large",
            AppError::Request(_) => "bad_request",
        }
    }

    /// The HTTP status that fits.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Validation { .. } => 422,
            AppError::Unauthenticated | AppError::BadCredentials => 401,
            AppError::Forbidden(_) | AppError::PasswordChangeRequired => 403,
            AppError::NotFound(_) => 404,
            AppError::Conflict(_) => 409,
            AppError::RateLimited { .. } => 429,
            // The centre's address is input the user gave us; it cannot be used as it is.
            AppError::Unreachable(_) => 422,
            AppError::Internal(_) => 500,
            AppError::TooLarge => 413,
            AppError::Request(_) => 400,
        }
    }

    /// Per-field messages, if this is a validation error.
    pub fn fields(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            AppError::Validation { fields, .. } => Some(fields),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        AppError::Request(value.to_string())
    }
}

/// Collects per-field validation messages.
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    /// Records a problem with `field` (the first one recorded wins).
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    /// `Ok(())` when nothing was recorded, otherwise a [`AppError::Validation`].
    pub fn finish(self) -> Result<(), AppError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let message = if self.0.len() == 1 {
            self.0.values().next().cloned().unwrap_or_default()
        } else {
            format!("{} fields need attention", self.0.len())
        };
        Err(AppError::Validation {
            message,
            fields: self.0,
        })
    }
}
