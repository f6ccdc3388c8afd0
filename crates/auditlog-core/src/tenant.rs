//! The tenant name: the one validator used everywhere a tenant is named (tokens, the data
//! directory's key files, checkpoint origins). An invalid name is an error, never a fallback
//! to a default tenant.

use std::fmt;

/// A tenant name: 1–64 characters of `[a-z0-9_-]`, starting with a letter or digit. The
/// restriction keeps it safe as a file name, a note origin (`auditlog/<tenant>`) and a URL part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid tenant name {0:?}: use 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit"
)]
pub struct InvalidTenant(pub String);

impl TenantId {
    pub fn parse(name: &str) -> Result<TenantId, InvalidTenant> {
        let bytes = name.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= 64
            && bytes[0].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
        if valid {
            Ok(TenantId(name.to_owned()))
        } else {
            Err(InvalidTenant(name.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The default tenant of a fresh data directory and of CLI commands without `--tenant`.
    pub fn default_tenant() -> TenantId {
        TenantId("default".to_owned())
    }
}

/// What a tenant's trail log adds to its name. A tenant name cannot hold a `.`, so no name a
/// client gives spells a trail log.
const TRAIL_SUFFIX: &str = ".trail";

impl TenantId {
    /// The tenant's trail log: where auditlog records its own use (sign-ins, searches, exports,
    /// administration) beside the tenant's events, in a tree of its own.
    pub fn trail(&self) -> TenantId {
        if self.is_trail() {
            self.clone()
        } else {
            TenantId(format!("{}{TRAIL_SUFFIX}", self.0))
        }
    }

    pub fn is_trail(&self) -> bool {
        self.0.ends_with(TRAIL_SUFFIX)
    }

    /// A name as storage keeps it: a tenant name, or a tenant's trail log.
    pub fn parse_stored(name: &str) -> Result<TenantId, InvalidTenant> {
        match name.strip_suffix(TRAIL_SUFFIX) {
            Some(tenant) => Ok(TenantId::parse(tenant)
                .map_err(|_| InvalidTenant(name.chars().take(80).collect()))?
                .trail()),
            None => TenantId::parse(name),
        }
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_are_checked_by_one_rule() {
        for ok in ["default", "acme", "a", "t-1_x", "0tenant"] {
            assert!(TenantId::parse(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            "Acme",
            "-a",
            "_a",
            "a/b",
            "a b",
            "../x",
            "a.b",
            long.as_str(),
            "é",
        ] {
            assert!(TenantId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_trail_log_is_named_only_from_its_tenant() {
        let acme = TenantId::parse("acme").expect("valid");
        assert_eq!(acme.trail().as_str(), "acme.trail");
        assert_eq!(acme.trail().trail(), acme.trail());
        assert!(
            TenantId::parse("acme.trail").is_err(),
            "clients cannot name it"
        );
        assert_eq!(TenantId::parse_stored("acme.trail"), Ok(acme.trail()));
        assert_eq!(TenantId::parse_stored("acme"), Ok(acme));
        for bad in ["x.trail.trail", ".trail", "A.trail", "acme.other"] {
            assert!(TenantId::parse_stored(bad).is_err(), "{bad}");
        }
    }
}
