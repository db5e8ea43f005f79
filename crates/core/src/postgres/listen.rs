//! The wake-up path between processes: one dedicated connection per store LISTENs on the
//! schema's channel; a notification for this namespace (or for all, from a reaper) wakes every
//! waiting claim at once. The connection is re-established when it drops (server restart,
//! pg_terminate_backend, network), and waiting claims are woken after each (re)connect since
//! notifications sent meanwhile are gone. Waiting claims poll slowly besides, so a lost
//! notification costs at most that poll.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{AsyncMessage, Connection, Socket};

use super::tls::TlsStream;
use super::{sql, Inner};

const RECONNECT_MIN: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(2);

pub(super) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut pause = RECONNECT_MIN;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Ok((client, mut connection)) = inner.pg_config.connect().await {
            let statement = sql::with_identifier(sql::LISTEN, "{channel}", &inner.channel);
            let listen = client.batch_execute(&statement);
            let listening = tokio::select! {
                r = listen => r.is_ok(),
                _ = drive(&mut connection, &inner) => false,
                _ = shutdown.changed() => return,
            };
            if listening {
                pause = RECONNECT_MIN;
                inner.ready.notify_waiters();
                tokio::select! {
                    _ = drive(&mut connection, &inner) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.changed() => return,
        }
        pause = (pause * 2).min(RECONNECT_MAX);
    }
}

/// Polls the connection, waking claims on each notification for this namespace; returns when
/// the connection ends.
async fn drive(connection: &mut Connection<Socket, TlsStream>, inner: &Inner) {
    loop {
        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(n))) => {
                if n.payload().is_empty() || n.payload() == inner.ns {
                    inner.ready.notify_waiters();
                }
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return,
        }
    }
}
