use serde::{Deserialize, Serialize};

use super::{Lang, Theme};
use crate::error::{AppError, FieldErrors};

/// What a user may do. Ordered: each role can do everything the roles below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything except users and the audit log.
    Viewer,
    /// Also operates jobs (trigger, pause, resume, enable, disable).
    Operator,
    /// Everything: configs, registry centres, users, removal.
    Admin,
}

impl Role {
    /// All roles, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do what `required` may.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

/// The signed-in user, as the UI sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// True until a generated password has been replaced.
    pub must_change_password: bool,
    /// Preferred language.
    pub lang: Lang,
    /// Preferred theme.
    pub theme: Theme,
}

/// A row of the users page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserSummary {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// True until a generated password has been replaced.
    pub must_change_password: bool,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
}

/// Usernames: 1 to 64 characters of `[a-zA-Z0-9._-]`.
pub fn validate_username(errors: &mut FieldErrors, username: &str) {
    let ok = (1..=64).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        errors.add("username", "use 1 to 64 letters, digits, '.', '_' or '-'");
    }
}

/// Passwords: 10 to 128 characters, not all the same character.
pub fn validate_new_password(field: &str, password: &str) -> Result<(), AppError> {
    let len = password.chars().count();
    if len < 10 {
        return Err(AppError::field(field, "use at least 10 characters"));
    }
    if len > 128 {
        return Err(AppError::field(field, "use at most 128 characters"));
    }
    let mut chars = password.chars();
    let first = chars.next();
    if chars.all(|c| Some(c) == first) {
        return Err(AppError::field(
            field,
            "use more than one distinct character",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Admin));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn password_rules() {
        assert!(validate_new_password("p", "short").is_err());
        assert!(validate_new_password("p", "aaaaaaaaaaaa").is_err());
        assert!(validate_new_password("p", &"x".repeat(129)).is_err());
        assert!(validate_new_password("p", "correct horse").is_ok());
    }
}
