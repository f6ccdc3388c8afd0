//! Who is calling: a bearer token or a signed-in person's session cookie. The tenant of a
//! request is the tenant of its credential, and nothing else: no header, path or parameter can
//! name another. Also the client's address (trusted proxies) and what each credential may do.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};

use auditlog_core::tenant::TenantId;
use auditlog_store::{Actor, Role, Scopes};

use crate::AppState;
use crate::error::ApiError;

/// The cookie that carries a session secret.
pub const SESSION_COOKIE: &str = "auditlog_session";
/// The header a cookie-authenticated change must carry (the session's CSRF token).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Append events (tokens with the `ingest` scope).
    Ingest,
    /// Search and read events, proofs, checkpoints.
    Read,
    /// Export events (tokens with `read`; auditors and admins; not viewers).
    Export,
    /// Run a verification (as export).
    Verify,
    /// Administer people and tokens (tokens with `admin`; admins).
    Admin,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Ingest => "ingest",
            Permission::Read => "read",
            Permission::Export => "export",
            Permission::Verify => "verify",
            Permission::Admin => "admin",
        }
    }
}

/// What a token's scopes grant.
pub fn token_allows(scopes: Scopes, permission: Permission) -> bool {
    match permission {
        Permission::Ingest => scopes.ingest,
        Permission::Read | Permission::Export | Permission::Verify => scopes.read,
        Permission::Admin => scopes.admin,
    }
}

/// What a person's role grants. Nobody signed in appends events: that is for tokens.
pub fn role_allows(role: Role, permission: Permission) -> bool {
    match permission {
        Permission::Ingest => false,
        Permission::Read => true,
        Permission::Export | Permission::Verify => matches!(role, Role::Admin | Role::Auditor),
        Permission::Admin => role == Role::Admin,
    }
}

/// How the caller authenticated.
#[derive(Debug, Clone)]
pub enum Via {
    Token(Scopes),
    Session {
        role: Role,
        /// The cookie secret (to end the session at sign-out).
        secret: String,
        csrf: String,
        expires_at: i64,
    },
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    /// The token or person name: the `user` of what the trail records about this caller.
    pub name: String,
    pub via: Via,
    /// The client's address (the peer, or what a trusted proxy forwarded).
    pub ip: IpAddr,
    /// What the caller presented, so a long request (a live stream) can check it again.
    pub(crate) credential: Credential,
}

/// The secret a caller presented: a bearer token or a session cookie's secret.
#[derive(Clone)]
pub(crate) enum Credential {
    Token(String),
    Session(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Token(_) => "Token(..)",
            Credential::Session(_) => "Session(..)",
        })
    }
}

impl Caller {
    pub fn allows(&self, permission: Permission) -> bool {
        match &self.via {
            Via::Token(scopes) => token_allows(*scopes, permission),
            Via::Session { role, .. } => role_allows(*role, permission),
        }
    }

    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.allows(permission) {
            return Ok(());
        }
        let message = match &self.via {
            Via::Token(_) => format!(
                "this token may not {}: it needs the {} scope",
                permission.as_str(),
                match permission {
                    Permission::Ingest => "ingest",
                    Permission::Admin => "admin",
                    _ => "read",
                }
            ),
            Via::Session { role, .. } => {
                format!("the {role} role may not {}", permission.as_str())
            }
        };
        Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", message))
    }

    /// Whether the credential still holds for this tenant and name: the token is not revoked,
    /// the session is live and its person enabled (a disable or password change ends the
    /// person's sessions). A live stream asks this every few seconds and on every change made
    /// through this server; asking restarts a session's idle time, as any request does.
    pub(crate) async fn still_valid(&self, state: &AppState) -> Result<bool, ApiError> {
        let store = state.store.clone();
        let limits = state.config.session_limits;
        let credential = self.credential.clone();
        let (tenant, name) = (self.tenant.clone(), self.name.clone());
        tokio::task::spawn_blocking(move || -> Result<bool, ApiError> {
            Ok(match credential {
                Credential::Token(token) => store
                    .authenticate(&token)?
                    .is_some_and(|p| p.tenant == tenant && p.name == name),
                Credential::Session(secret) => store
                    .session(&secret, limits)?
                    .is_some_and(|s| s.tenant == tenant && s.person == name),
            })
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// The caller as the trail names it.
    pub fn actor(&self) -> Actor {
        let source = match self.via {
            Via::Token(_) => "api",
            Via::Session { .. } => "panel",
        };
        Actor::new(self.name.clone(), self.ip, source)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = client_ip(parts, state);
        let store = state.store.clone();
        if let Some(header) = parts.headers.get(header::AUTHORIZATION) {
            let token = header
                .to_str()
                .ok()
                // The scheme is case-insensitive (RFC 9110 §11.1).
                .and_then(|v| {
                    v.split_once(' ')
                        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                        .map(|(_, token)| token)
                })
                .map(str::trim)
                .ok_or_else(ApiError::unauthorized)?
                .to_owned();
            let lookup = token.clone();
            let principal = tokio::task::spawn_blocking(move || store.authenticate(&lookup))
                .await
                .map_err(ApiError::internal)??
                .ok_or_else(ApiError::unauthorized)?;
            return Ok(Caller {
                tenant: principal.tenant,
                name: principal.name,
                via: Via::Token(principal.scopes),
                ip,
                credential: Credential::Token(token),
            });
        }
        let secret = session_cookie(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let limits = state.config.session_limits;
        let lookup = secret.clone();
        let session = tokio::task::spawn_blocking(move || store.session(&lookup, limits))
            .await
            .map_err(ApiError::internal)??
            .ok_or_else(ApiError::unauthorized)?;
        // SameSite=Strict keeps other sites' requests from carrying the cookie; the CSRF token
        // is the second lock on every change made with it.
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !ct_eq(sent.as_bytes(), session.csrf.as_bytes()) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "csrf_failed",
                    "a change made with a session cookie needs the session's X-CSRF-Token header",
                ));
            }
        }
        Ok(Caller {
            tenant: session.tenant,
            name: session.person,
            via: Via::Session {
                role: session.role,
                secret: secret.clone(),
                csrf: session.csrf,
                expires_at: session.expires_at,
            },
            ip,
            credential: Credential::Session(secret),
        })
    }
}

/// The session secret from the `Cookie` headers, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty() && value.len() <= 128)
}

/// Constant-time equality.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// `X-Forwarded-For` chain is walked from the right past trusted proxies to the first address
/// that is not one. An unparsable entry stops the walk at the last address we trust.
pub fn client_ip(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    forwarded_client(peer, &parts.headers, &state.config.trusted_proxies)
}

pub fn forwarded_client(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(&ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = canonical(ip);
                if !is_trusted(client) {
                    return client;
                }
            }
            Err(_) => return client,
        }
    }
    client
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's view of IPv4 peers) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", HeaderValue::from_str(v).expect("header"));
        }
        map
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let proxy: IpAddr = "10.1.2.3".parse().expect("ip");
        let stranger: IpAddr = "203.0.113.9".parse().expect("ip");
        let h = headers(&["198.51.100.7, 10.9.9.9"]);
        assert_eq!(forwarded_client(stranger, &h, &trusted), stranger);
        assert_eq!(
            forwarded_client(proxy, &h, &trusted),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        // A client cannot skip the proxy's own entry by prepending a fake one.
        let h = headers(&["1.1.1.1", "198.51.100.7"]);
        assert_eq!(
            forwarded_client(proxy, &h, &trusted),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        // Garbage stops the walk at the last trusted hop.
        let h = headers(&["<script>, 10.9.9.9"]);
        assert_eq!(
            forwarded_client(proxy, &h, &trusted),
            "10.9.9.9".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(forwarded_client(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(forwarded_client(proxy, &h, &[]), proxy);
    }

    #[test]
    fn roles_and_scopes() {
        assert!(!role_allows(Role::Viewer, Permission::Export));
        assert!(role_allows(Role::Auditor, Permission::Verify));
        assert!(!role_allows(Role::Auditor, Permission::Admin));
        assert!(!role_allows(Role::Admin, Permission::Ingest));
        let ingest = Scopes::parse("ingest").expect("scopes");
        assert!(!token_allows(ingest, Permission::Read));
        let read = Scopes::parse("read").expect("scopes");
        assert!(token_allows(read, Permission::Export));
        assert!(!token_allows(read, Permission::Ingest));
    }

    #[test]
    fn session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; auditlog_session=alsess_x; c=d"),
        );
        assert_eq!(session_cookie(&h).as_deref(), Some("alsess_x"));
        assert_eq!(session_cookie(&HeaderMap::new()), None);
    }
}
