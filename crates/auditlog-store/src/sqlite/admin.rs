//! SQL of the administrative tables (people, sessions, the trail outbox) for `SqliteStore`.
//! Every change here writes its trail record into `outbox` in the same transaction.

use auditlog_core::json::Value;
use auditlog_core::tenant::TenantId;
use rusqlite::{Connection, OptionalExtension, params};

use crate::StoreError;
use crate::keys::unix_secs;
use crate::people::{self, Credential, NewSession, PersonInfo, Role, SessionInfo, SessionLimits};
use crate::tokens;
use crate::trail::{self, TrailEvent};

/// Queue a record for the tenant's trail log (inside the caller's transaction when it has
/// one); nothing for an actor who is not recorded.
pub(crate) fn insert_outbox(
    conn: &Connection,
    tenant: &TenantId,
    event: &TrailEvent,
) -> Result<(), StoreError> {
    if !event.actor.recorded {
        return Ok(());
    }
    let body = event.to_value(crate::now()).to_canonical();
    conn.execute(
        "INSERT INTO outbox (tenant, event) VALUES (?1, ?2)",
        params![tenant.trail().as_str(), body],
    )?;
    Ok(())
}

/// The oldest queued trail records: (row id, trail log name, event JSON).
pub(crate) fn pending_outbox(
    conn: &Connection,
    limit: usize,
) -> Result<Vec<(i64, String, Vec<u8>)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, tenant, event FROM outbox ORDER BY id LIMIT ?1")?;
    let rows = stmt
        .query_map(params![limit as i64], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn outbox_is_empty(conn: &Connection) -> Result<bool, StoreError> {
    let any: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM outbox)", [], |row| row.get(0))?;
    Ok(!any)
}

fn person_json(info: &PersonInfo) -> Value {
    trail::object(&[
        ("name", trail::string(&info.name)),
        ("role", trail::string(info.role.as_str())),
        ("disabled", Value::Bool(info.disabled_at.is_some())),
    ])
}

fn read_person(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, PersonInfo, String)> {
    let role: String = row.get(2)?;
    Ok((
        row.get(0)?,
        PersonInfo {
            name: row.get(1)?,
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            created_at: row.get(3)?,
            disabled_at: row.get(4)?,
            last_sign_in_at: row.get(5)?,
        },
        row.get(6)?,
    ))
}

const PERSON_COLUMNS: &str = "id, name, role, created_at, disabled_at, last_sign_in_at, password";

fn find_person(
    conn: &Connection,
    tenant_id: i64,
    name: &str,
) -> Result<Option<(i64, PersonInfo, String)>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {PERSON_COLUMNS} FROM people WHERE tenant = ?1 AND name = ?2"),
            params![tenant_id, name],
            read_person,
        )
        .optional()?)
}

pub(crate) fn create_person(
    conn: &Connection,
    tenant: &TenantId,
    tenant_id: i64,
    name: &str,
    role: Role,
    password_hash: &str,
    by: &trail::Actor,
) -> Result<(), StoreError> {
    people::check_person_name(name)?;
    let tx = immediate(conn)?;
    if find_person(&tx, tenant_id, name)?.is_some() {
        return Err(StoreError::BadRequest(format!(
            "tenant {tenant} already has a person named {name:?}"
        )));
    }
    let now = unix_secs();
    tx.execute(
        "INSERT INTO people (tenant, name, role, password, created_at, password_changed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![tenant_id, name, role.as_str(), password_hash, now],
    )?;
    let info = PersonInfo {
        name: name.to_owned(),
        role,
        created_at: now,
        disabled_at: None,
        last_sign_in_at: None,
    };
    insert_outbox(
        &tx,
        tenant,
        &TrailEvent::new(by, "CREATE", "auditlog.user")
            .key(name)
            .message(format!("{} created person {name} ({role})", by.name))
            .after(person_json(&info)),
    )?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn list_people(
    conn: &Connection,
    tenant_id: i64,
) -> Result<Vec<PersonInfo>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {PERSON_COLUMNS} FROM people WHERE tenant = ?1 ORDER BY name"
    ))?;
    let rows = stmt
        .query_map(params![tenant_id], read_person)?
        .map(|row| row.map(|(_, info, _)| info))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn credential(
    conn: &Connection,
    tenant_id: i64,
    name: &str,
) -> Result<Option<Credential>, StoreError> {
    Ok(
        find_person(conn, tenant_id, name)?.map(|(_, person, password_hash)| Credential {
            person,
            password_hash,
        }),
    )
}

/// Disable a person and end their sessions. `Ok(false)` when there is no such active person.
pub(crate) fn disable_person(
    conn: &Connection,
    tenant: &TenantId,
    tenant_id: i64,
    name: &str,
    by: &trail::Actor,
) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    let Some((id, before, _)) = find_person(&tx, tenant_id, name)? else {
        return Ok(false);
    };
    if before.disabled_at.is_some() {
        return Ok(false);
    }
    let now = unix_secs();
    tx.execute(
        "UPDATE people SET disabled_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    tx.execute(
        "UPDATE sessions SET ended_at = ?2 WHERE person = ?1 AND ended_at IS NULL",
        params![id, now],
    )?;
    let after = PersonInfo {
        disabled_at: Some(now),
        ..before.clone()
    };
    insert_outbox(
        &tx,
        tenant,
        &TrailEvent::new(by, "UPDATE", "auditlog.user")
            .key(name)
            .message(format!("{} disabled person {name}", by.name))
            .before(person_json(&before))
            .after(person_json(&after)),
    )?;
    revoke_tokens_created_by(&tx, tenant, tenant_id, name, now, by)?;
    tx.commit()?;
    Ok(true)
}

/// Revoke every active token the person created, each with its trail record (inside the
/// caller's transaction): a disabled person's tokens stop with them. Tokens the operator
/// created (no creator) stay.
fn revoke_tokens_created_by(
    conn: &Connection,
    tenant: &TenantId,
    tenant_id: i64,
    person: &str,
    now: i64,
    by: &trail::Actor,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, name, scopes, created_at FROM tokens
         WHERE tenant = ?1 AND created_by = ?2 AND revoked_at IS NULL ORDER BY id",
    )?;
    let rows = stmt
        .query_map(params![tenant_id, person], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (id, name, scopes, created_at) in rows {
        let scopes = tokens::Scopes::parse(&scopes).map_err(StoreError::Corrupted)?;
        conn.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        insert_outbox(
            conn,
            tenant,
            &TrailEvent::new(by, "DELETE", "auditlog.token")
                .key(&name)
                .message(format!(
                    "{} revoked token {name}: its creator {person} was disabled",
                    by.name
                ))
                .before(tokens::token_json(&name, scopes, created_at, None))
                .after(tokens::token_json(&name, scopes, created_at, Some(now))),
        )?;
    }
    Ok(())
}

/// Set a new password and end the person's sessions. `Ok(false)` when there is no such person.
pub(crate) fn set_password(
    conn: &Connection,
    tenant: &TenantId,
    tenant_id: i64,
    name: &str,
    password_hash: &str,
    by: &trail::Actor,
) -> Result<bool, StoreError> {
    let tx = immediate(conn)?;
    let Some((id, _, _)) = find_person(&tx, tenant_id, name)? else {
        return Ok(false);
    };
    let now = unix_secs();
    tx.execute(
        "UPDATE people SET password = ?2, password_changed_at = ?3 WHERE id = ?1",
        params![id, password_hash, now],
    )?;
    tx.execute(
        "UPDATE sessions SET ended_at = ?2 WHERE person = ?1 AND ended_at IS NULL",
        params![id, now],
    )?;
    insert_outbox(
        &tx,
        tenant,
        &TrailEvent::new(by, "UPDATE", "auditlog.user")
            .key(name)
            .message(format!("{} set a new password for {name}", by.name))
            .context("changed", trail::string("password")),
    )?;
    tx.commit()?;
    Ok(true)
}

pub(crate) fn create_session(
    conn: &Connection,
    tenant: &TenantId,
    tenant_id: i64,
    name: &str,
    limits: SessionLimits,
) -> Result<Option<NewSession>, StoreError> {
    let Some((id, person, _)) = find_person(conn, tenant_id, name)? else {
        return Ok(None);
    };
    if person.disabled_at.is_some() {
        return Ok(None);
    }
    let secret = format!("{}{}", people::SESSION_PREFIX, people::random_secret()?);
    let csrf = people::csrf_token(&secret);
    let now = unix_secs();
    let tx = immediate(conn)?;
    tx.execute(
        "INSERT INTO sessions (person, hash, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?3)",
        params![id, tokens::token_hash(&secret).to_vec(), now],
    )?;
    tx.execute(
        "UPDATE people SET last_sign_in_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    // Old, finished sessions of this person are of no use any more.
    tx.execute(
        "DELETE FROM sessions WHERE person = ?1 AND (ended_at IS NOT NULL OR created_at < ?2)",
        params![id, now - limits.absolute_secs],
    )?;
    tx.commit()?;
    Ok(Some(NewSession {
        secret,
        info: SessionInfo {
            tenant: tenant.clone(),
            person: person.name,
            role: person.role,
            csrf,
            created_at: now,
            expires_at: now + limits.absolute_secs,
        },
    }))
}

/// The live session with this secret, refreshed; `None` when unknown, ended, expired (idle or
/// absolute) or its person is disabled.
pub(crate) fn session(
    conn: &Connection,
    secret: &str,
    limits: SessionLimits,
) -> Result<Option<SessionInfo>, StoreError> {
    if !secret.starts_with(people::SESSION_PREFIX) || secret.len() > 128 {
        return Ok(None);
    }
    let hash = tokens::token_hash(secret);
    let row = conn
        .query_row(
            "SELECT sessions.id, sessions.hash, sessions.created_at,
                    sessions.last_seen_at, people.name, people.role, people.disabled_at, tenants.name
             FROM sessions
             JOIN people ON people.id = sessions.person
             JOIN tenants ON tenants.id = people.tenant
             WHERE sessions.hash = ?1 AND sessions.ended_at IS NULL",
            params![hash.to_vec()],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, Vec<u8>>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, Option<i64>>(6)?,
                    row.get::<_, String>(7)?,
                ))
            },
        )
        .optional()?;
    let Some((id, stored, created_at, last_seen, person, role, disabled, tenant)) = row else {
        return Ok(None);
    };
    if !tokens::ct_eq(&stored, &hash) || disabled.is_some() {
        return Ok(None);
    }
    let now = unix_secs();
    if now - last_seen >= limits.idle_secs || now - created_at >= limits.absolute_secs {
        conn.execute(
            "UPDATE sessions SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL",
            params![id, now],
        )?;
        return Ok(None);
    }
    // Last use to the few seconds, so reads do not each turn into a write.
    if now - last_seen >= 5 {
        conn.execute(
            "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
    }
    Ok(Some(SessionInfo {
        tenant: TenantId::parse(&tenant).map_err(|e| StoreError::Corrupted(e.to_string()))?,
        person,
        role: Role::parse(&role).map_err(StoreError::Corrupted)?,
        csrf: people::csrf_token(secret),
        created_at,
        expires_at: created_at + limits.absolute_secs,
    }))
}

/// End the session with this secret; `Ok(true)` when it was live.
pub(crate) fn end_session(conn: &Connection, secret: &str) -> Result<bool, StoreError> {
    let hash = tokens::token_hash(secret);
    let changed = conn.execute(
        "UPDATE sessions SET ended_at = ?2 WHERE hash = ?1 AND ended_at IS NULL",
        params![hash.to_vec(), unix_secs()],
    )?;
    Ok(changed > 0)
}

/// A write transaction that takes the write lock at once (waiting up to the busy timeout): a
/// deferred one that reads first fails with SQLITE_BUSY when the writer commits meanwhile.
pub(crate) fn immediate(conn: &Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    Ok(rusqlite::Transaction::new_unchecked(
        conn,
        rusqlite::TransactionBehavior::Immediate,
    )?)
}
