//! API tokens: random secrets shown once, stored only as SHA-256 hashes, with scopes.
//!
//! Tokens carry 192 random bits, so a fast hash is enough (no password stretching); the
//! lookup is by hash, and the final comparison is constant-time.

use std::fmt;

use auditlog_core::tenant::TenantId;
use base64::Engine as _;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Ingest,
    Read,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

/// A set of scopes, written as `ingest,read,admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    pub ingest: bool,
    pub read: bool,
    pub admin: bool,
}

impl Scopes {
    pub fn all() -> Scopes {
        Scopes {
            ingest: true,
            read: true,
            admin: true,
        }
    }

    pub fn parse(text: &str) -> Result<Scopes, String> {
        let mut scopes = Scopes::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "ingest" => scopes.ingest = true,
                "read" => scopes.read = true,
                "admin" => scopes.admin = true,
                other => {
                    return Err(format!(
                        "unknown scope {other:?}: use ingest, read or admin"
                    ));
                }
            }
        }
        if scopes == Scopes::default() {
            return Err("no scope given: use ingest, read or admin".into());
        }
        Ok(scopes)
    }

    pub fn has(self, scope: Scope) -> bool {
        match scope {
            Scope::Ingest => self.ingest,
            Scope::Read => self.read,
            Scope::Admin => self.admin,
        }
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [Scope::Ingest, Scope::Read, Scope::Admin]
            .into_iter()
            .filter(|s| self.has(*s))
            .map(Scope::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// Who a request acts as: the tenant comes from the credential only.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantId,
    pub name: String,
    pub scopes: Scopes,
}

#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub name: String,
    pub scopes: Scopes,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub(crate) const TOKEN_PREFIX: &str = "alog_";

pub(crate) fn new_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time equality of two hashes.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Token names: what the trail records as `user` for the token's actions.
pub(crate) fn valid_token_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@'))
}

/// A token as the trail shows it: never the secret or its hash.
pub(crate) fn token_json(
    name: &str,
    scopes: Scopes,
    created_at: i64,
    revoked_at: Option<i64>,
) -> auditlog_core::json::Value {
    use crate::trail::{object, string, time_value};
    let mut fields = vec![
        ("name", string(name)),
        ("scopes", string(scopes.to_string())),
        ("created_at", time_value(created_at)),
    ];
    if let Some(at) = revoked_at {
        fields.push(("revoked_at", time_value(at)));
    }
    object(&fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print_in_a_fixed_order() {
        let scopes = Scopes::parse("admin, ingest").expect("valid");
        assert_eq!(scopes.to_string(), "ingest,admin");
        assert!(Scopes::parse("write").is_err());
        assert!(Scopes::parse("").is_err());
    }

    #[test]
    fn tokens_are_random_and_prefixed() {
        let a = new_token().expect("random");
        let b = new_token().expect("random");
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 32);
    }
}
