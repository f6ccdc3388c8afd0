//! People who sign in to the web UI: names, roles, argon2id password hashes, and sessions.
//!
//! Passwords are stored only as argon2id PHC strings (RFC 9106 parameters of the `argon2`
//! crate's defaults: 19 MiB, 2 passes). Session and CSRF secrets are random; sessions are
//! stored by the SHA-256 of their secret, like tokens.

use std::fmt;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use auditlog_core::tenant::TenantId;
use base64::Engine as _;

use crate::StoreError;

/// What a person may do. Admins administer people, tokens and settings (and read, export and
/// verify); auditors read, export and verify; viewers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Auditor,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Result<Role, String> {
        match text {
            "admin" => Ok(Role::Admin),
            "auditor" => Ok(Role::Auditor),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "unknown role {:?}: use admin, auditor or viewer",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person as listed (never with the password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonInfo {
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub last_sign_in_at: Option<i64>,
}

/// A person's stored credential, for sign-in.
#[derive(Debug, Clone)]
pub struct Credential {
    pub person: PersonInfo,
    /// The argon2id PHC string.
    pub password_hash: String,
}

/// A signed-in session as the server sees it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub tenant: TenantId,
    pub person: String,
    pub role: Role,
    /// The value a cookie-authenticated change must carry in `X-CSRF-Token`.
    /// Derived from the session's secret ([`csrf_token`]), never stored.
    pub csrf: String,
    pub created_at: i64,
    /// Unix seconds after which the session is over whatever happens (absolute expiry).
    pub expires_at: i64,
}

/// A new session: the cookie secret (shown once) and what it grants.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub secret: String,
    pub info: SessionInfo,
}

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// A session unused this long is over.
    pub idle_secs: i64,
    /// A session this old is over.
    pub absolute_secs: i64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle_secs: 30 * 60,
            absolute_secs: 12 * 3600,
        }
    }
}

/// Person names: what the trail records as `user` for their actions.
pub fn valid_person_name(name: &str) -> bool {
    crate::tokens::valid_token_name(name)
}

pub(crate) fn check_person_name(name: &str) -> Result<(), StoreError> {
    if valid_person_name(name) {
        Ok(())
    } else {
        Err(StoreError::BadRequest(format!(
            "invalid name {:?}: use 1-64 characters of letters, digits, '-', '_', '.', ':' or '@'",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// Shortest and longest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Check a new password against the policy: 12 characters at least, 1024 bytes at most, no
/// control characters.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    if password.chars().any(char::is_control) {
        return Err("the password must not contain control characters".into());
    }
    Ok(())
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hash a password (argon2id, random salt) into a PHC string. Checks the policy first.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    check_password(password).map_err(StoreError::BadRequest)?;
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| StoreError::Unavailable(format!("hashing the password failed: {e}")))
}

/// Whether `password` matches the PHC string (constant-time comparison inside argon2).
pub fn verify_password(phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of nothing anyone knows, verified against when the person does not exist, so a
/// failed sign-in takes as long for an unknown name as for a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(b"no such person, no such password", &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

pub(crate) const SESSION_PREFIX: &str = "alsess_";

/// A random secret of 32 bytes, base64url.
/// The CSRF token of a session: `base64url(SHA-256("auditlog csrf v1" ‖ secret))`. Derived
/// from the secret whenever the session is looked up, so the store keeps nothing a thief of
/// its files could use (the secret itself is kept only as its SHA-256).
pub fn csrf_token(secret: &str) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"auditlog csrf v1");
    hasher.update(secret.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hasher.finalize())
}

pub(crate) fn random_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Unavailable(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let phc = hash_password("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$"));
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse battery "));
        assert!(!verify_password(
            "not a phc string",
            "correct horse battery"
        ));
        assert!(!verify_password(dummy_hash(), "correct horse battery"));
    }

    #[test]
    fn password_policy() {
        assert!(check_password("short").is_err());
        assert!(check_password("twelve chars").is_ok());
        assert!(check_password("twelve\u{0}chars!").is_err());
        assert!(check_password(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn roles_parse() {
        for role in [Role::Admin, Role::Auditor, Role::Viewer] {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(Role::parse("root").is_err());
    }
}
