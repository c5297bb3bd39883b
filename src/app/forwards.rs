//! Port forwards opened from the console (`f` on a container, `:forward NAME [PORT [LOCAL]]`): which
//! port (a picker when the container exposes several), the forwards running and their news, the
//! panel that lists and stops them. The runner runs each one as a task (`tui/forward.rs`, sharing
//! `crate::forward` with `berth forward`).

use std::net::SocketAddr;

use crossterm::event::{KeyCode, KeyEvent};

use super::{App, Command, Overlay, move_in_list};
use crate::action::Level;
use crate::engine::model::{Container, State};
use crate::format::printable;
use crate::forward::ForwardEvent;
use crate::keymap::{Intent, Scope};

/// One forward of the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardEntry {
    pub id: u64,
    pub container_id: String,
    pub container: String,
    pub port: u16,
    /// Where it listens, once it does (`None`: starting).
    pub local: Option<SocketAddr>,
    /// Where its connections go first, e.g. `172.18.0.4:8080 (network app_default)`.
    pub via: String,
    /// Connections that could not be carried, and the last one's reason.
    pub failures: u32,
    pub last_failure: Option<String>,
}

impl ForwardEntry {
    /// `8080→web:8080` (`…→web:8080` while starting).
    pub fn label(&self) -> String {
        let local = self
            .local
            .map_or_else(|| "…".to_string(), |l| l.port().to_string());
        format!("{local}→{}:{}", printable(&self.container), self.port)
    }

    pub fn url(&self) -> Option<String> {
        self.local.map(|l| format!("http://{l}"))
    }
}

/// The console's forwards, oldest first.
#[derive(Debug, Clone, Default)]
pub struct Forwards {
    pub entries: Vec<ForwardEntry>,
    /// The id of the next forward.
    pub next: u64,
}

/// Which of a container's ports to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPicker {
    pub container_id: String,
    pub container: String,
    pub ports: Vec<u16>,
    pub selected: usize,
}

/// The TCP ports a container exposes or publishes (its own side), lowest first.
pub fn tcp_ports(c: &Container) -> Vec<u16> {
    let mut ports: Vec<u16> = c
        .ports
        .iter()
        .filter(|p| p.protocol == "tcp")
        .map(|p| p.container_port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

impl App {
    /// `f`: forward the selected container's port; a picker when it has several.
    pub(super) fn forward_selection(&mut self) -> Vec<Command> {
        let Some(c) = self.selected_container() else {
            self.notify(
                Level::Info,
                "select a container to forward one of its ports",
            );
            return vec![];
        };
        let (id, name) = (c.id.clone(), c.display_name());
        if c.state != State::Running {
            self.notify_about(
                Level::Error,
                format!("{name} is not running: start it first (U), then f"),
                &id,
            );
            return vec![];
        }
        match tcp_ports(c).as_slice() {
            [] => {
                // Nothing to pick from: the palette asks for the port.
                self.open_palette(&format!("forward {name} "));
                self.notify(
                    Level::Info,
                    format!("{name} exposes no TCP port: type the one to forward"),
                );
                vec![]
            }
            [port] => self.start_forward(id, name, *port, None),
            many => {
                self.overlay = Overlay::Ports(PortPicker {
                    container_id: id,
                    container: name,
                    ports: many.to_vec(),
                    selected: 0,
                });
                vec![]
            }
        }
    }

    /// `:forward NAME [PORT [LOCAL]]`.
    pub(super) fn forward_by_name(&mut self, arg: &str) -> Vec<Command> {
        let mut words = arg.split_whitespace();
        let name = words.next().unwrap_or_default();
        let numbers: Result<Vec<u16>, _> = words.map(str::parse::<u16>).collect();
        let Ok(numbers) = numbers else {
            self.notify(
                Level::Error,
                "usage: :forward NAME [PORT [LOCAL]] — ports are numbers 1–65535",
            );
            return vec![];
        };
        let Some(id) = self.find_container(name) else {
            self.notify(Level::Error, format!("no container named '{name}'"));
            return vec![];
        };
        self.select_container(&id);
        let name = self
            .containers
            .get(&id)
            .map_or_else(|| name.to_string(), Container::display_name);
        match numbers.as_slice() {
            [] => self.forward_selection(),
            [port] => self.start_forward(id, name, *port, None),
            [port, local] => self.start_forward(id, name, *port, Some(*local)),
            _ => {
                self.notify(Level::Error, "usage: :forward NAME [PORT [LOCAL]]");
                vec![]
            }
        }
    }

    fn start_forward(
        &mut self,
        container_id: String,
        container: String,
        port: u16,
        local: Option<u16>,
    ) -> Vec<Command> {
        if let Some(f) = self
            .forwards
            .entries
            .iter()
            .find(|f| f.container_id == container_id && f.port == port && local.is_none())
        {
            let at = f.url().unwrap_or_else(|| "a port being opened".into());
            self.notify(
                Level::Info,
                format!("{container}:{port} is forwarded already, at {at}"),
            );
            return vec![];
        }
        let id = self.forwards.next;
        self.forwards.next += 1;
        self.forwards.entries.push(ForwardEntry {
            id,
            container_id: container_id.clone(),
            container: container.clone(),
            port,
            local: None,
            via: String::new(),
            failures: 0,
            last_failure: None,
        });
        self.notify(
            Level::Info,
            format!("forwarding {}:{port}…", printable(&container)),
        );
        vec![Command::StartForward {
            id,
            container_id,
            container,
            port,
            local,
        }]
    }

    /// A forward's news from its task.
    pub(super) fn on_forward(
        &mut self,
        session: u64,
        id: u64,
        event: ForwardEvent,
    ) -> Vec<Command> {
        if session != self.session {
            return vec![];
        }
        let Some(i) = self.forwards.entries.iter().position(|f| f.id == id) else {
            // Stopped here before its news arrived: the runner has cancelled it.
            return vec![];
        };
        match event {
            ForwardEvent::Listening { local, via } => {
                let f = &mut self.forwards.entries[i];
                f.local = Some(local);
                f.via = via;
                let text = format!(
                    "forwarding http://{local} → {}:{} (T lists forwards)",
                    printable(&f.container),
                    f.port
                );
                self.notify(Level::Info, text);
            }
            ForwardEvent::Failed(why) => {
                let f = self.forwards.entries.remove(i);
                self.notify(
                    Level::Error,
                    format!(
                        "forward of {}:{}: {}",
                        printable(&f.container),
                        f.port,
                        printable(&why)
                    ),
                );
            }
            ForwardEvent::Connection(failed) => {
                let f = &mut self.forwards.entries[i];
                f.failures += 1;
                f.last_failure = Some(failed.reason.clone());
                let text = format!(
                    "forward {}: a connection from {} failed: {}; the forward stays up",
                    f.label(),
                    failed.peer,
                    printable(&failed.reason)
                );
                self.notify(Level::Warn, text);
            }
        }
        vec![]
    }

    /// Stops the forwards of containers that no longer exist (removed, or gone from a re-list).
    pub(super) fn stop_forwards_of_gone(&mut self) -> Vec<Command> {
        let (gone, kept): (Vec<ForwardEntry>, Vec<ForwardEntry>) =
            std::mem::take(&mut self.forwards.entries)
                .into_iter()
                .partition(|f| !self.containers.contains_key(&f.container_id));
        self.forwards.entries = kept;
        if let Some(f) = gone.first() {
            self.notify(
                Level::Warn,
                format!(
                    "forward {} stopped: {} is gone",
                    f.label(),
                    printable(&f.container)
                ),
            );
        }
        gone.into_iter()
            .map(|f| Command::StopForward(f.id))
            .collect()
    }

    /// `T`: the forwards panel.
    pub(super) fn open_forwards(&mut self) {
        self.overlay = Overlay::Forwards { selected: 0 };
    }

    fn stop_forward(&mut self, index: usize) -> Vec<Command> {
        if index >= self.forwards.entries.len() {
            return vec![];
        }
        let f = self.forwards.entries.remove(index);
        self.notify(Level::Info, format!("forward {} stopped", f.label()));
        vec![Command::StopForward(f.id)]
    }

    pub(super) fn on_ports_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let intent = self.keymap.lookup(Scope::Global, &key);
        let Overlay::Ports(p) = &mut self.overlay else {
            return vec![];
        };
        if key.code == KeyCode::Enter {
            let (id, name, port) = (
                p.container_id.clone(),
                p.container.clone(),
                p.ports[p.selected],
            );
            self.overlay = Overlay::None;
            return self.start_forward(id, name, port, None);
        }
        match intent {
            Some(i) if move_in_list(&mut p.selected, p.ports.len(), i) => {}
            Some(Intent::Back | Intent::Quit) => self.overlay = Overlay::None,
            _ => {}
        }
        vec![]
    }

    pub(super) fn on_forwards_key(&mut self, key: KeyEvent) -> Vec<Command> {
        // The list's scope: its key for this panel closes it again.
        let intent = self.keymap.lookup(Scope::List, &key);
        let Overlay::Forwards { selected } = &mut self.overlay else {
            return vec![];
        };
        if matches!(key.code, KeyCode::Char('d') | KeyCode::Delete) {
            let index = *selected;
            let commands = self.stop_forward(index);
            let len = self.forwards.entries.len();
            if let Overlay::Forwards { selected } = &mut self.overlay {
                *selected = (*selected).min(len.saturating_sub(1));
            }
            return commands;
        }
        match intent {
            Some(i) if move_in_list(selected, self.forwards.entries.len(), i) => {}
            Some(Intent::Back | Intent::Quit | Intent::ForwardsList) => {
                self.overlay = Overlay::None
            }
            _ => {}
        }
        vec![]
    }
}
