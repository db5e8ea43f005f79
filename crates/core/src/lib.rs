//! taskito's engine: job storage, claim with a lease, fenced settle, backoff, reaper, heartbeat,
//! wake-ups. No N-API here: `crates/node` converts types and maps errors, nothing else.
//!
//! A backend implements [`Store`]; [`open`] picks one from the options.

mod ahead;
pub mod backoff;
mod ended;
pub mod error;
mod json;
pub mod model;
pub mod policy;
pub mod postgres;
mod readonly;
pub mod routing;
pub mod sqlite;
pub mod store;

use std::sync::Arc;

pub use error::{Error, Result};
pub use model::*;
pub use store::{Store, Unregistered};

/// Opens a store: an SQLite file for `db_path`, PostgreSQL for `url` (exactly one of the two).
pub async fn open(opts: OpenOptions) -> Result<Arc<dyn Store>> {
    validate_namespace(&opts.namespace)?;
    match (&opts.db_path, &opts.url) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "both dbPath and url were given: pass dbPath for SQLite or url for PostgreSQL, not both",
        )),
        (None, None) => Err(Error::invalid(
            "neither dbPath nor url was given: pass dbPath (an SQLite file) or url (postgres://...)",
        )),
        (Some(_), None) => {
            let read_only = opts.read_only;
            let store = sqlite::open(opts).await?;
            Ok(if read_only {
                readonly::ReadOnlyStore::wrap(store)
            } else {
                store
            })
        }
        (None, Some(url)) if opts.read_only => Ok(readonly::ReadOnlyStore::wrap(Arc::new(
            postgres::open_read_only(url, opts.schema.as_deref(), &opts.namespace).await?,
        ))),
        (None, Some(url)) => Ok(Arc::new(
            postgres::open(url, opts.schema.as_deref(), &opts.namespace).await?,
        )),
    }
}

fn validate_namespace(ns: &str) -> Result<()> {
    if ns.is_empty() {
        return Err(Error::invalid(
            "namespace is empty: pass a non-empty namespace (the default is \"default\")",
        ));
    }
    Ok(())
}

/// Milliseconds since the epoch on this machine's clock: the SQLite core's clock.
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
