//! Sign-in and sign-out (`/api/v1/session`), the administration of people and tokens
//! (`/api/v1/users`, `/api/v1/tokens`) and on-demand verification (`/api/v1/verify`).
//!
//! Every one of them leaves its record in the tenant's own trail: sign-in (success and
//! failure), sign-out and verification here, token and people changes in the store's own
//! transaction. Nothing secret (passwords, tokens, session secrets) is ever put in a record, a
//! response other than the one that creates it, or the server's log.

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use auditlog_core::tenant::TenantId;
use auditlog_store::people::{self, valid_person_name};
use auditlog_store::trail::{integer, object, string};
use auditlog_store::{Actor, Role, Scopes, Store, StoreError, TrailEvent};

use crate::AppState;
use crate::auth::{Caller, Permission, SESSION_COOKIE, Via};
use crate::error::ApiError;
use crate::handlers::blocking;
use crate::trail::record;

/// Largest body of an administrative request.
const MAX_ADMIN_BODY: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/session",
            post(sign_in).get(whoami).delete(sign_out),
        )
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{name}", axum::routing::delete(revoke_token))
        .route("/api/v1/users", get(list_people).post(create_person))
        .route("/api/v1/users/{name}/disable", post(disable_person))
        .route("/api/v1/users/{name}/password", put(set_password))
        .route("/api/v1/verify", post(verify))
}

/// A JSON body: `application/json`, at most 64 KiB, no unknown or repeated fields.
fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ));
    }
    if body.len() > MAX_ADMIN_BODY {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body is larger than {MAX_ADMIN_BODY} bytes"),
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("the request body is not accepted: {e}"),
        )
    })
}

fn rfc3339(unix_secs: i64) -> String {
    auditlog_core::event::Timestamp::from_unix_nanos(unix_secs.saturating_mul(1_000_000_000))
        .to_rfc3339()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    tenant: String,
    user: String,
    password: String,
}

/// Why a sign-in failed, for the trail (the client only ever hears "invalid credentials").
enum Refusal {
    UnknownPerson,
    WrongPassword,
    Disabled,
}

async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let ip = crate::auth::client_ip(&parts, &state);
    let body = axum::body::to_bytes(body, MAX_ADMIN_BODY + 1)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is larger than {MAX_ADMIN_BODY} bytes"),
            )
        })?;
    let form: SignIn = json_body(&headers, &body)?;
    // Invalid names are errors, never a fallback to another tenant.
    let tenant = TenantId::parse(&form.tenant)
        .map_err(|e| ApiError::bad_request("invalid_parameter", e.to_string()))?;
    if !valid_person_name(&form.user) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "invalid user name: use 1-64 characters of letters, digits, '-', '_', '.', ':' or '@'",
        ));
    }
    let account = format!("{tenant}/{}", form.user);
    // Counted before the password is checked: parallel guesses cannot all pass the check.
    let attempt = match state.throttle.reserve(&account, ip, Instant::now()) {
        Ok(attempt) => attempt,
        Err(wait) => {
            let secs = wait.as_secs().max(1);
            tracing::warn!(%ip, "sign-in refused: too many failures");
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("too many failed sign-ins; try again in {secs} s"),
            )
            .with("retry_after_secs", secs)
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return Ok(response);
        }
    };
    let store = state.store.clone();
    let limits = state.config.session_limits;
    let (lookup_tenant, user, password) = (tenant.clone(), form.user.clone(), form.password);
    let outcome = blocking(move || {
        if !store.tenant_exists(&lookup_tenant)? {
            // As slow as a real check, so names cannot be probed by timing.
            people::verify_password(people::dummy_hash(), &password);
            return Ok((false, Err(Refusal::UnknownPerson)));
        }
        let credential = store.credential(&lookup_tenant, &user)?;
        let refusal = match &credential {
            None => {
                people::verify_password(people::dummy_hash(), &password);
                Some(Refusal::UnknownPerson)
            }
            Some(c) if !people::verify_password(&c.password_hash, &password) => {
                Some(Refusal::WrongPassword)
            }
            Some(c) if c.person.disabled_at.is_some() => Some(Refusal::Disabled),
            Some(_) => None,
        };
        if let Some(refusal) = refusal {
            return Ok((true, Err(refusal)));
        }
        match store.create_session(&lookup_tenant, &user, limits)? {
            Some(session) => Ok((true, Ok(session))),
            None => Ok((true, Err(Refusal::Disabled))),
        }
    })
    .await?;
    let actor = Actor::new(form.user.clone(), ip, "panel");
    match outcome {
        (tenant_exists, Err(refusal)) => {
            // The reservation stays: it was a failure.
            drop(attempt);
            if tenant_exists {
                let why = match refusal {
                    Refusal::UnknownPerson => "no such person",
                    Refusal::WrongPassword => "wrong password",
                    Refusal::Disabled => "the person is disabled",
                };
                record(
                    &state,
                    &tenant,
                    TrailEvent::new(&actor, "LOGIN_FAILED", "auditlog.session")
                        .key(form.user.clone())
                        .message(format!("sign-in of {} failed: {why}", form.user))
                        .context("reason", string(why)),
                )
                .await?;
            }
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "the tenant, name or password is not right",
            ))
        }
        (_, Ok(session)) => {
            attempt.succeeded();
            record(
                &state,
                &tenant,
                TrailEvent::new(&actor, "LOGIN", "auditlog.session")
                    .key(form.user.clone())
                    .message(format!("{} signed in", form.user))
                    .context("role", string(session.info.role.as_str())),
            )
            .await?;
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
                session.secret,
                limits.absolute_secs,
                if state.config.secure_cookies {
                    "; Secure"
                } else {
                    ""
                }
            );
            let body = json!({
                "tenant": session.info.tenant.as_str(),
                "user": session.info.person,
                "role": session.info.role.as_str(),
                "csrf_token": session.info.csrf,
                "expires_at": rfc3339(session.info.expires_at),
            });
            let mut response = (StatusCode::OK, axum::Json(body)).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
            );
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
    }
}

async fn whoami(caller: Caller) -> Result<Response, ApiError> {
    let body = match &caller.via {
        Via::Session {
            role,
            csrf,
            expires_at,
            ..
        } => json!({
            "tenant": caller.tenant.as_str(),
            "user": caller.name,
            "role": role.as_str(),
            "csrf_token": csrf,
            "expires_at": rfc3339(*expires_at),
        }),
        Via::Token(scopes) => json!({
            "tenant": caller.tenant.as_str(),
            "user": caller.name,
            "scopes": scopes_json(*scopes),
        }),
    };
    let mut response = axum::Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn sign_out(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let Via::Session { secret, .. } = &caller.via else {
        return Err(ApiError::bad_request(
            "not_a_session",
            "sign-out ends a session; tokens are revoked instead",
        ));
    };
    let store = state.store.clone();
    let secret = secret.clone();
    blocking(move || Ok(store.end_session(&secret)?)).await?;
    state.credentials_changed();
    record(
        &state,
        &caller.tenant,
        TrailEvent::new(&caller.actor(), "LOGOUT", "auditlog.session")
            .key(caller.name.clone())
            .message(format!("{} signed out", caller.name)),
    )
    .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let expired = format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if state.config.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&expired).map_err(ApiError::internal)?,
    );
    Ok(response)
}

fn scopes_json(scopes: Scopes) -> Value {
    Value::from(
        scopes
            .to_string()
            .split(',')
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    )
}

async fn list_tokens(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Permission::Admin)?;
    let store = state.store.clone();
    let tenant = caller.tenant.clone();
    let tokens = blocking(move || Ok(store.list_tokens(&tenant)?)).await?;
    let tokens: Vec<Value> = tokens
        .into_iter()
        .map(|t| {
            json!({
                "name": t.name,
                "scopes": scopes_json(t.scopes),
                "created_at": rfc3339(t.created_at),
                "last_used_at": t.last_used_at.map(rfc3339),
                "revoked_at": t.revoked_at.map(rfc3339),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "tokens": tokens })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    scopes: Vec<String>,
}

async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Permission::Admin)?;
    let form: NewToken = json_body(&headers, &body)?;
    let scopes = Scopes::parse(&form.scopes.join(","))
        .map_err(|e| ApiError::bad_request("invalid_parameter", e))?;
    let store = state.store.clone();
    let (tenant, actor, name) = (caller.tenant.clone(), caller.actor(), form.name.clone());
    let token = blocking(move || Ok(store.create_token(&tenant, &name, scopes, &actor)?)).await?;
    let body = json!({ "name": form.name, "scopes": scopes_json(scopes), "token": token });
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin_change(
        &state,
        &caller,
        "no active token of that name",
        move |store, tenant, actor| store.revoke_token(tenant, &name, actor),
    )
    .await
}

/// An administrative change that names its subject: 204 when done, 404 when there was none.
async fn admin_change(
    state: &AppState,
    caller: &Caller,
    none: &'static str,
    change: impl FnOnce(&dyn Store, &TenantId, &Actor) -> Result<bool, StoreError> + Send + 'static,
) -> Result<Response, ApiError> {
    caller.require(Permission::Admin)?;
    let store = state.store.clone();
    let (tenant, actor) = (caller.tenant.clone(), caller.actor());
    let done = blocking(move || Ok(change(store.as_ref(), &tenant, &actor)?)).await?;
    // Every change made this way can end a credential (revoke, disable, new password).
    state.credentials_changed();
    if done {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(none))
    }
}

async fn list_people(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Permission::Admin)?;
    let store = state.store.clone();
    let tenant = caller.tenant.clone();
    let list = blocking(move || Ok(store.list_people(&tenant)?)).await?;
    let users: Vec<Value> = list
        .into_iter()
        .map(|p| {
            json!({
                "name": p.name,
                "role": p.role.as_str(),
                "created_at": rfc3339(p.created_at),
                "disabled_at": p.disabled_at.map(rfc3339),
                "last_sign_in_at": p.last_sign_in_at.map(rfc3339),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "users": users })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPerson {
    name: String,
    role: String,
    password: String,
}

async fn create_person(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Permission::Admin)?;
    let form: NewPerson = json_body(&headers, &body)?;
    let role =
        Role::parse(&form.role).map_err(|e| ApiError::bad_request("invalid_parameter", e))?;
    if !valid_person_name(&form.name) {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "invalid name: use 1-64 characters of letters, digits, '-', '_', '.', ':' or '@'",
        ));
    }
    let store = state.store.clone();
    let (tenant, actor, name) = (caller.tenant.clone(), caller.actor(), form.name.clone());
    blocking(move || {
        let hash = people::hash_password(&form.password)?;
        Ok(store.create_person(&tenant, &name, role, &hash, &actor)?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ "name": form.name, "role": role.as_str() })),
    )
        .into_response())
}

async fn disable_person(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    admin_change(
        &state,
        &caller,
        "no enabled person of that name",
        move |store, tenant, actor| store.disable_person(tenant, &name, actor),
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

async fn set_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(Permission::Admin)?;
    let form: NewPassword = json_body(&headers, &body)?;
    admin_change(
        &state,
        &caller,
        "no person of that name",
        move |store, tenant, actor| {
            let hash = people::hash_password(&form.password)?;
            store.set_password(tenant, &name, &hash, actor)
        },
    )
    .await
}

async fn verify(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Permission::Verify)?;
    let store = state.store.clone();
    let tenant = caller.tenant.clone();
    // The tenant's events and its trail log, each checked in full.
    let (report, trail) = blocking(move || {
        let report = store.verify(&tenant, &|_, _| {})?;
        let trail = store.verify(&tenant.trail(), &|_, _| {})?;
        Ok((report, trail))
    })
    .await?;
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| json!({ "kind": f.kind.as_str(), "seq": f.seq, "detail": f.detail }))
        .collect();
    let trail_findings: Vec<Value> = trail
        .findings
        .iter()
        .map(|f| json!({ "kind": f.kind.as_str(), "seq": f.seq, "detail": f.detail }))
        .collect();
    let ok = report.findings.is_empty()
        && report.more_findings == 0
        && trail.findings.is_empty()
        && trail.more_findings == 0;
    record(
        &state,
        &caller.tenant,
        TrailEvent::new(&caller.actor(), "VERIFY", "auditlog.verify")
            .key(report.tree_size.to_string())
            .message(if ok {
                format!(
                    "{} verified the log: {} events, no problem",
                    caller.name, report.tree_size
                )
            } else {
                format!(
                    "{} verified the log: {} problems found",
                    caller.name,
                    report.findings.len() as u64 + report.more_findings
                )
            })
            .after(object(&[
                ("tree_size", integer(report.tree_size as i64)),
                (
                    "problems",
                    integer((report.findings.len() as u64 + report.more_findings) as i64),
                ),
            ])),
    )
    .await?;
    Ok(axum::Json(json!({
        "ok": ok,
        "tree_size": report.tree_size,
        "events_checked": report.events_checked,
        "checkpoints_checked": report.checkpoints_checked,
        "findings": findings,
        "more_findings": report.more_findings,
        "trail": {
            "tree_size": trail.tree_size,
            "findings": trail_findings,
            "more_findings": trail.more_findings,
        },
    }))
    .into_response())
}
