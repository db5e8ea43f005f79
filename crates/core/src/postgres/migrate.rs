//! Forward migrations of a taskito schema. Many processes often start at once against a new
//! database, so the work happens inside one transaction under a transaction-scoped advisory lock
//! keyed by the schema: the first process migrates, the others wait and then find it done.

use deadpool_postgres::{GenericClient, Object};

use super::rows::Cell;
use super::sql;
use crate::error::{Error, Result};

/// The newest schema version this build knows.
pub(crate) fn latest() -> i64 {
    sql::MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

pub(crate) async fn migrate(client: &mut Object, schema: &str) -> Result<()> {
    // Fast path, no lock: an up-to-date schema (every open after the first).
    match recorded_version(&*client, schema).await? {
        Some(v) if v == latest() => return Ok(()),
        Some(v) if v > latest() => return Err(too_new(schema, v)),
        _ => {}
    }
    let tx = client.transaction().await?;
    tx.execute(sql::META_LOCK, &[&schema]).await?;
    let exists = tx
        .query_opt(sql::META_SCHEMA_EXISTS, &[&schema])
        .await?
        .is_some();
    if !exists {
        tx.batch_execute(&sql::with_identifier(
            sql::META_CREATE_SCHEMA,
            "{schema}",
            schema,
        ))
        .await?;
    }
    tx.execute(sql::META_SET_SEARCH_PATH, &[&schema]).await?;
    let version = recorded_version(&tx, schema).await?.unwrap_or(0);
    if version > latest() {
        return Err(too_new(schema, version));
    }
    for (v, migration) in sql::MIGRATIONS.iter().filter(|m| m.0 > version) {
        tx.batch_execute(migration).await.map_err(|e| {
            Error::Queue(format!(
                "migration {v} of schema {schema} failed: {}",
                super::conn::from_pg(e)
            ))
        })?;
        tx.execute(sql::META_SET_VERSION, &[&v.to_string()]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// For a read-only open: the schema must hold taskito's tables at a version this build knows.
/// Reads only; nothing is created or migrated.
pub(crate) async fn check_readable(client: &Object, schema: &str) -> Result<()> {
    match recorded_version(client, schema).await? {
        None => Err(Error::NotTaskito(format!(
            "schema {schema} holds no taskito tables (it is missing or empty); opened read-only, \
             nothing was created: pass the schema of an existing taskito queue (the schema \
             option, default \"taskito\")"
        ))),
        Some(v) if v > latest() => Err(too_new(schema, v)),
        Some(_) => Ok(()),
    }
}

/// The recorded version; None for a schema without taskito tables (absent or empty). Read
/// unqualified: every connection's search_path names the schema, and PostgreSQL finds a schema
/// created after the connection was opened.
async fn recorded_version(c: &impl GenericClient, schema: &str) -> Result<Option<i64>> {
    let tables: Vec<String> = c
        .query(sql::META_LIST_TABLES, &[&schema])
        .await?
        .iter()
        .map(|r| r.cell(0))
        .collect::<Result<_>>()?;
    if tables.is_empty() {
        return Ok(None);
    }
    if !tables.iter().any(|t| t == "taskito_meta") {
        return Err(not_taskito(schema, &tables));
    }
    let row = c.query_opt(sql::META_READ_VERSION, &[]).await?;
    let version = row.map(|r| r.cell::<String>(0)).transpose()?;
    Ok(Some(parse_version(schema, version)?))
}

fn parse_version(schema: &str, v: Option<String>) -> Result<i64> {
    let v = v.unwrap_or_else(|| "0".into());
    v.parse().map_err(|_| {
        Error::NotTaskito(format!(
            "schema {schema} records schema_version {v:?}, which taskito never writes: \
             use another schema (the schema option) or drop this one"
        ))
    })
}

fn not_taskito(schema: &str, tables: &[String]) -> Error {
    Error::NotTaskito(format!(
        "schema {schema} holds tables that are not taskito's ({}); nothing was written: \
         pass another schema (the schema option, default \"taskito\")",
        tables.join(", ")
    ))
}

fn too_new(schema: &str, v: i64) -> Error {
    Error::SchemaTooNew(format!(
        "schema {schema} was written by a newer taskito (schema version {v}, this one knows up \
         to {}): upgrade the taskito package",
        latest()
    ))
}
