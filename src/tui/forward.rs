//! The runner's port forwards: each one a task of the current server's session that owns a
//! `forward::Forward` (the code `berth forward` runs) until it is stopped or the session ends.

use std::net::{IpAddr, Ipv4Addr};

use tokio::sync::mpsc;

use super::runner::Runner;
use crate::action::Action;
use crate::forward::{self, Dialer, ForwardEvent};

/// Failed connections a forward reports before the loop takes them; more are dropped (the
/// screen shows the latest, and the forward stays up either way).
const FAILURES_QUEUE: usize = 16;

impl Runner {
    /// `Command::StartForward`.
    pub(super) fn start_forward(
        &mut self,
        session: u64,
        id: u64,
        container_id: String,
        container: String,
        port: u16,
        local: Option<u16>,
    ) {
        let tx = self.tx.clone();
        let send = move |event: ForwardEvent| {
            let tx = tx.clone();
            async move {
                tx.send(Action::Forward { session, id, event })
                    .await
                    .is_ok()
            }
        };
        let Some(engine) = self.engine() else {
            tokio::spawn(send(ForwardEvent::Failed("not connected".into())));
            return;
        };
        // A child of the session: switching server or quitting closes the listener too.
        let stop = self.session.child_token();
        self.forwards.insert(id, stop.clone());
        tokio::spawn(async move {
            let started = async {
                let dialer = Dialer::for_engine(&engine)?;
                let route =
                    forward::route_to(&engine, &container_id, &container, Some(port)).await?;
                let (failed_tx, failed) = mpsc::channel(FAILURES_QUEUE);
                let fwd = forward::start(
                    dialer,
                    route,
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    local,
                    failed_tx,
                )
                .await?;
                Ok::<_, String>((fwd, failed))
            };
            let (fwd, mut failed) = tokio::select! {
                _ = stop.cancelled() => return,
                r = started => match r {
                    Ok(started) => started,
                    Err(e) => {
                        send(ForwardEvent::Failed(e)).await;
                        return;
                    }
                },
            };
            let (host, port, what) = &fwd.route.addresses[0];
            let listening = ForwardEvent::Listening {
                local: fwd.local,
                via: format!("{host}:{port} ({what})"),
            };
            if !send(listening).await {
                return;
            }
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    Some(f) = failed.recv() => {
                        if !send(ForwardEvent::Connection(f)).await {
                            break;
                        }
                    }
                }
            }
            // Dropping the forward cancels its listener and the connections it carries.
            drop(fwd);
        });
    }

    /// `Command::StopForward`.
    pub(super) fn stop_forward(&mut self, id: u64) {
        if let Some(stop) = self.forwards.remove(&id) {
            stop.cancel();
        }
    }
}
