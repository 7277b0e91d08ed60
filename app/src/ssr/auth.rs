//! Authentication: password hashing, sessions and tokens, and who is asking.
//!
//! A browser session and an API token are the same thing: a random 256-bit token whose
//! SHA-256 is stored in `sessions`. Browsers carry it in an HttpOnly, SameSite=Strict
//! cookie; scripts send it as `Authorization: Bearer …`.

use std::net::SocketAddr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::ConnectInfo;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::audit::Audit;
use super::db::sessions::{self, SessionKind};
use super::db::users::{self, UserRow};
use super::{AppState, internal};
use crate::error::AppError;
use crate::model::{Role, validate_new_password};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "capstan_session";

/// Who is making a request, and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The user row, as of this request.
    pub user: UserRow,
    /// Client address.
    pub source_ip: Option<String>,
    /// Hash of the token this request authenticated with.
    pub token_hash: Vec<u8>,
}

impl Actor {
    /// Refuses unless the user has at least `role` and has replaced a generated password.
    ///
    /// # Errors
    /// [`AppError::PasswordChangeRequired`] or [`AppError::Forbidden`].
    pub fn require(&self, role: Role) -> Result<(), AppError> {
        if self.user.must_change_password {
            return Err(AppError::PasswordChangeRequired);
        }
        if !self.user.role().allows(role) {
            return Err(AppError::Forbidden(format!(
                "this needs the {} role; you are {}",
                role.as_str(),
                self.user.role().as_str()
            )));
        }
        Ok(())
    }
}

/// The credentials and address a request carries.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// Bearer token or session cookie value.
    pub token: Option<String>,
    /// Client address.
    pub source_ip: Option<String>,
}

impl RequestMeta {
    /// Reads the bearer token (preferred) or the session cookie, and the peer address.
    pub fn from_parts(parts: &Parts) -> Self {
        let bearer = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| t.trim().to_owned());
        let cookie = || {
            parts
                .headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| *k == SESSION_COOKIE)
                .map(|(_, v)| v.to_owned())
        };
        let source_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ci| ci.0.ip().to_string());
        RequestMeta {
            token: bearer.or_else(cookie),
            source_ip,
        }
    }
}

/// SHA-256 of a token: what `sessions` stores.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A password for the first admin: 20 characters from an alphabet without look-alikes.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Hashes a password with argon2id, off the async threads (it is deliberately slow).
pub async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(internal)?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(internal)
    })
    .await
    .map_err(internal)?
}

/// Checks a password against a stored hash, off the async threads. A malformed hash
/// never matches.
async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of a random password, verified against when the username does not exist, so
/// that "no such user" and "wrong password" take the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(&[7u8; 16]).expect("16 bytes is a valid salt");
        Argon2::default()
            .hash_password(generate_password().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// The `Set-Cookie` value that starts a browser session.
pub fn session_cookie(state: &AppState, token: &str) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        state.settings.session_ttl.as_secs(),
        if state.settings.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

/// The `Set-Cookie` value that ends a browser session.
pub fn clear_session_cookie(state: &AppState) -> String {
    format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if state.settings.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    )
}

/// Resolves the request's token to a user.
///
/// # Errors
/// [`AppError::Unauthenticated`] without a valid, unexpired token.
pub async fn authenticate(state: &AppState, meta: &RequestMeta) -> Result<Actor, AppError> {
    let token = meta.token.as_deref().ok_or(AppError::Unauthenticated)?;
    let token_hash = hash_token(token);
    let user = sessions::user_for(&state.db, &token_hash)
        .await
        .map_err(internal)?
        .ok_or(AppError::Unauthenticated)?;
    Ok(Actor {
        user,
        source_ip: meta.source_ip.clone(),
        token_hash,
    })
}

/// The request metadata of the current server fn or render.
pub fn request_meta() -> RequestMeta {
    leptos::prelude::use_context::<Parts>()
        .map(|p| RequestMeta::from_parts(&p))
        .unwrap_or_default()
}

/// The signed-in user of the current server fn or render.
pub async fn current_actor(state: &AppState) -> Result<Actor, AppError> {
    authenticate(state, &request_meta()).await
}

/// Checks credentials and opens a session; returns the token and the user.
///
/// Throttled per username and client address (see [`super::limiter`]); every attempt is
/// audited.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    source_ip: Option<String>,
    kind: SessionKind,
) -> Result<(String, UserRow), AppError> {
    let audit =
        Audit::new("login", "session", username).from_addr(Some(username), source_ip.clone());
    let result = async {
        if let Err(wait) = state.limiter.check(username, source_ip.as_deref()) {
            return Err(AppError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        let user = users::by_name(&state.db, username)
            .await
            .map_err(internal)?;
        let hash = user
            .as_ref()
            .map_or_else(|| dummy_hash().to_owned(), |u| u.password_hash.clone());
        let matches = verify_password(password.to_owned(), hash).await;
        let Some(user) = user.filter(|_| matches) else {
            state.limiter.failure(username, source_ip.as_deref());
            metrics::counter!("capstan_login_failures_total").increment(1);
            return Err(AppError::BadCredentials);
        };
        state.limiter.success(username);
        let token = new_token();
        sessions::insert(
            &state.db,
            &hash_token(&token),
            user.id,
            kind,
            state.settings.session_ttl.as_millis() as i64,
        )
        .await
        .map_err(internal)?;
        Ok((token, user))
    }
    .await;
    audit.finish(state, &result).await;
    result
}

/// Ends the actor's session.
pub async fn logout(state: &AppState, actor: &Actor) -> Result<(), AppError> {
    let result = sessions::delete(&state.db, &actor.token_hash)
        .await
        .map_err(internal);
    Audit::new("logout", "session", &actor.user.username)
        .by(actor)
        .finish(state, &result)
        .await;
    result
}

/// Changes the actor's own password; other sessions of the user end.
pub async fn change_own_password(
    state: &AppState,
    actor: &Actor,
    current: &str,
    new: &str,
) -> Result<(), AppError> {
    let audit = Audit::new("user.password", "user", &actor.user.username).by(actor);
    let result = async {
        if !verify_password(current.to_owned(), actor.user.password_hash.clone()).await {
            return Err(AppError::field("current", "the current password is wrong"));
        }
        validate_new_password("new", new)?;
        if current == new {
            return Err(AppError::field(
                "new",
                "choose a password different from the current one",
            ));
        }
        let hash = hash_password(new.to_owned()).await?;
        users::set_password(&state.db, actor.user.id, &hash, false)
            .await
            .map_err(internal)?;
        sessions::delete_for_user(&state.db, actor.user.id, Some(&actor.token_hash))
            .await
            .map_err(internal)
    }
    .await;
    audit.finish(state, &result).await;
    result
}

/// What [`ensure_admin`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// Users already existed; nothing changed.
    Existing,
    /// Created `admin` with the password from the environment.
    FromEnvironment,
    /// Created `admin` with this generated password, to be changed at first login.
    Generated(String),
}

/// On first start (no users at all), creates `admin`.
///
/// # Errors
/// A password from the environment that breaks the password rules, or a database error.
pub async fn ensure_admin(
    pool: &sqlx::SqlitePool,
    from_env: Option<&str>,
) -> Result<Bootstrap, AppError> {
    if users::count(pool).await.map_err(internal)? > 0 {
        return Ok(Bootstrap::Existing);
    }
    let (password, outcome) = match from_env.filter(|p| !p.is_empty()) {
        Some(p) => {
            validate_new_password("CAPSTAN_ADMIN_PASSWORD", p)?;
            (p.to_owned(), Bootstrap::FromEnvironment)
        }
        None => {
            let p = generate_password();
            (p.clone(), Bootstrap::Generated(p))
        }
    };
    let hash = hash_password(password).await?;
    let must_change = matches!(outcome, Bootstrap::Generated(_));
    users::insert(pool, "admin", &hash, Role::Admin, must_change)
        .await
        .map_err(internal)?;
    Ok(outcome)
}
