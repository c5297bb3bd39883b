//! The engine's news about the server: connection, staleness, the containers and their events.

use super::{App, Command, Connection, View};
use crate::action::EngineEvent;

impl App {
    /// Whether the list, figures and header show data that may no longer be true: the engine's
    /// stream broke, or the SSH link is not answering or is being re-established.
    pub fn is_stale(&self) -> bool {
        match &self.connection {
            Connection::Stale { .. } => true,
            Connection::Connected { .. } => self.link.as_ref().is_some_and(|l| !l.is_fresh()),
            _ => false,
        }
    }

    /// Starts or ends the stale period the header counts from.
    pub(super) fn track_staleness(&mut self) {
        match (self.is_stale(), self.stale_since) {
            (true, None) => self.stale_since = Some(self.now),
            (false, Some(_)) => self.stale_since = None,
            _ => {}
        }
    }

    pub(super) fn on_engine(&mut self, event: EngineEvent) -> Vec<Command> {
        match event {
            EngineEvent::Connected { transport, version } => {
                self.connection = Connection::Connected { transport, version };
            }
            EngineEvent::ConnectFailed(e) => {
                self.connection = Connection::Failed(e);
            }
            EngineEvent::Snapshot(list) => {
                self.listed = true;
                self.containers = list.into_iter().map(|c| (c.id.clone(), c)).collect();
                self.stats.retain(|id, _| self.containers.contains_key(id));
                self.compose.refresh(self.containers.values());
                self.rebuild_rows();
                let mut commands = self.stop_forwards_of_gone();
                commands.extend(self.load_compose_files());
                return commands;
            }
            EngineEvent::Changed(c) => {
                let new = !self.containers.contains_key(&c.id);
                let cmds = self.compose_container_changed(&c, new);
                self.containers.insert(c.id.clone(), *c);
                self.compose.refresh(self.containers.values());
                self.rebuild_rows();
                return cmds;
            }
            EngineEvent::ComposeFiles(views) => self.on_compose_files(views),
            EngineEvent::Gone(id) => {
                self.containers.remove(&id);
                self.compose.forget_container(&id);
                self.stats.remove(&id);
                if self.list.revealed.as_deref() == Some(id.as_str()) {
                    self.list.revealed = None;
                }
                self.rebuild_rows();
                return self.stop_forwards_of_gone();
            }
            EngineEvent::Stale(reason) => {
                self.stale_tries += 1;
                self.connection = match std::mem::replace(&mut self.connection, Connection::Idle) {
                    Connection::Connected { transport, version }
                    | Connection::Stale {
                        transport, version, ..
                    } => Connection::Stale {
                        reason,
                        transport,
                        version,
                    },
                    _ => Connection::Failed(reason),
                };
            }
            EngineEvent::Live => {
                self.stale_tries = 0;
                if let Connection::Stale {
                    transport, version, ..
                } = &self.connection
                {
                    self.connection = Connection::Connected {
                        transport: transport.clone(),
                        version: version.clone(),
                    };
                }
            }
            EngineEvent::Link(status) => self.link = Some(status),
            EngineEvent::Stats(batch) => return self.on_stats(batch),
            EngineEvent::NodeStats { server, reading } => {
                return self.on_node_stats(server, reading);
            }
            EngineEvent::NodeHealth { server, health } => {
                return self.on_node_health(server, health);
            }
            EngineEvent::Host(report) => return self.on_host(report),
            EngineEvent::DiskUsage(usage) => return self.on_disk_usage(usage),
            EngineEvent::Event(record) => {
                self.events.push(record, self.view == View::Events);
            }
        }
        vec![]
    }
}
