//! The fleet view: one row per configured server, filled in as each answers, trouble first. Owns
//! its rows, its selection and the keys that move it; opening a server's console is the app's.

use super::{App, Command, View, move_in_list};
use crate::fleet::{ServerRow, sort_rows};
use crate::keymap::Intent;

/// What the fleet view may read while it handles a key.
pub struct FleetCtx {
    /// Rows a page holds.
    pub page: usize,
}

#[derive(Debug, Clone, Default)]
pub struct FleetView {
    /// Trouble first (`fleet::sort_rows`); a server that has not answered yet is a pending row.
    pub rows: Vec<ServerRow>,
    pub selected: usize,
    /// The watch whose rows count: news of an older one is dropped. 0: never opened.
    pub round: u64,
    /// What `/` looks for on every server; while set the view lists the matches.
    pub query: Option<String>,
}

impl FleetView {
    /// A new watch: every server in `servers` gets a row (pending unless an earlier round filled
    /// it, so coming back shows the last known state while it refreshes).
    pub fn start(&mut self, servers: Vec<ServerRow>) -> u64 {
        for pending in servers {
            if !self.rows.iter().any(|r| r.server == pending.server) {
                self.rows.push(pending);
            }
        }
        self.round += 1;
        self.resort();
        self.round
    }

    /// Servers that answered (reachable or not) out of all.
    pub fn answered(&self) -> usize {
        self.rows.iter().filter(|r| r.reachable.is_some()).count()
    }

    pub fn selected_row(&self) -> Option<&ServerRow> {
        self.rows.get(self.selected)
    }

    /// A server's news: its row replaced, the rows resorted, the selection kept on its server.
    pub fn put(&mut self, row: ServerRow) {
        match self.rows.iter_mut().find(|r| r.server == row.server) {
            Some(old) => *old = row,
            None => self.rows.push(row),
        }
        self.resort();
    }

    fn resort(&mut self) {
        let chosen = self.selected_row().map(|r| r.server.clone());
        sort_rows(&mut self.rows);
        self.selected = chosen
            .and_then(|name| self.rows.iter().position(|r| r.server == name))
            .unwrap_or(0);
    }

    pub fn handle(&mut self, intent: Intent, ctx: &FleetCtx) -> Vec<Command> {
        let len = self.rows.len();
        let page = ctx.page.max(1);
        match intent {
            Intent::PageDown => self.selected = (self.selected + page).min(len.saturating_sub(1)),
            Intent::PageUp => self.selected = self.selected.saturating_sub(page),
            Intent::Refresh => {
                self.round += 1;
                return vec![Command::WatchFleet { round: self.round }];
            }
            other => {
                move_in_list(&mut self.selected, len, other);
            }
        }
        vec![]
    }
}

// The app's side: opening the view, its news, and leaving it for a server's console.
impl App {
    /// Shows the fleet and starts watching every configured server.
    pub fn open_fleet(&mut self) -> Vec<Command> {
        let mut commands = vec![];
        if self.view == View::Logs {
            self.logs = None;
            commands.push(Command::CloseLogs);
        }
        if self.config.servers.is_empty() {
            self.notify(
                crate::action::Level::Error,
                "no servers in the config: add [servers.NAME] target = \"user@host\" entries to watch a fleet",
            );
            return commands;
        }
        let pending = self
            .config
            .servers
            .iter()
            .map(|(name, server)| ServerRow {
                server: name.clone(),
                environment: server.environment.clone(),
                ..Default::default()
            })
            .collect();
        let round = self.fleet.start(pending);
        self.view = View::Fleet;
        commands.push(Command::WatchFleet { round });
        commands
    }

    pub(super) fn on_fleet_row(&mut self, round: u64, row: ServerRow) -> Vec<Command> {
        if round == self.fleet.round && self.view == View::Fleet {
            self.fleet.put(row);
        }
        vec![]
    }

    /// Keys in the fleet view: leaving it, opening a server, the rest moves the selection.
    pub(super) fn on_fleet_intent(&mut self, intent: Intent) -> Vec<Command> {
        match intent {
            Intent::Back if self.fleet.query.is_some() => self.fleet.query = None,
            Intent::FleetFind => self.open_palette("find "),
            Intent::Back | Intent::FleetView => {
                // Back to the console the fleet was opened from; with none, the fleet stays.
                if self.target.is_some() {
                    self.view = View::Containers;
                    return vec![Command::StopFleet];
                }
            }
            Intent::FleetOpen => return self.open_from_fleet(),
            Intent::Quit => self.quit(),
            Intent::Help => self.overlay = super::Overlay::Help { scroll: 0 },
            Intent::Palette => self.open_palette(""),
            Intent::ServerPicker => return self.open_picker(),
            other => {
                let ctx = FleetCtx {
                    page: self.areas().list_rows.max(1),
                };
                return self.fleet.handle(other, &ctx);
            }
        }
        vec![]
    }

    /// The selected server's console, through the usual connect path; the one already open is
    /// shown as it is.
    fn open_from_fleet(&mut self) -> Vec<Command> {
        let Some(name) = self.fleet.selected_row().map(|r| r.server.clone()) else {
            return vec![];
        };
        self.view = View::Containers;
        let mut commands = vec![Command::StopFleet];
        let same = self.target.as_ref().is_some_and(|t| t.name == name);
        if !same || matches!(self.connection, super::Connection::Failed(_)) {
            commands.extend(self.switch_server(&name));
        }
        commands
    }

    /// `:find TEXT`: the fleet, listing where matches run (from the servers' last listings).
    pub(super) fn fleet_find(&mut self, text: &str) -> Vec<Command> {
        let mut commands = vec![];
        if self.view != View::Fleet {
            commands = self.open_fleet();
            if self.view != View::Fleet {
                return commands;
            }
        }
        self.fleet.query = Some(text.trim().to_string()).filter(|t| !t.is_empty());
        commands
    }

    /// Esc in a console opened from the fleet (or once the fleet was seen) goes back to it.
    pub(super) fn back_to_fleet(&self) -> bool {
        self.fleet.round > 0 && !self.config.servers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use super::*;
    use crate::action::{Action, EngineEvent};
    use crate::engine::EngineVersion;
    use crate::fixtures;

    fn key(app: &mut App, code: KeyCode) -> Vec<Command> {
        app.update(Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    /// The console started with this config file's text, at the fixtures' clock.
    fn app_with(config: &str) -> App {
        let config = crate::config::parse(config, std::path::Path::new("berth.toml")).unwrap();
        App::new(
            config,
            crate::theme::Theme::default(),
            crate::keymap::Keymap::default(),
            fixtures::now(),
        )
    }

    fn up(server: &str, unhealthy: usize) -> ServerRow {
        ServerRow {
            server: server.into(),
            reachable: Some(true),
            containers: crate::fleet::ContainerSummary {
                unhealthy,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Enter opens the selected server's console through the usual resolve-and-connect path;
    /// Esc (once the console has nothing of its own to close) comes back to the fleet with its
    /// rows and selection as they were, and watches again.
    #[test]
    fn enter_opens_a_server_and_esc_comes_back_with_the_fleet_kept() {
        let mut app = app_with(
            "[servers.app-1]\ntarget = \"a@127.0.0.1:2201\"\n[servers.app-2]\ntarget = \"a@127.0.0.1:2202\"\n[servers.db]\ntarget = \"a@127.0.0.1:2203\"\n",
        );
        assert_eq!(app.start(None), vec![Command::WatchFleet { round: 1 }]);
        assert_eq!(app.view, View::Fleet);
        assert_eq!(app.scope(), crate::keymap::Scope::Fleet);
        for row in [up("db", 0), up("app-2", 2), up("app-1", 0)] {
            app.update(Action::Fleet { round: 1, row });
        }
        let names: Vec<&str> = app.fleet.rows.iter().map(|r| r.server.as_str()).collect();
        assert_eq!(names, ["app-2", "app-1", "db"], "trouble first");
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Down);
        assert_eq!(app.fleet.selected_row().unwrap().server, "db");

        let commands = key(&mut app, KeyCode::Enter);
        assert_eq!(
            commands,
            vec![Command::StopFleet, Command::ResolveServer("db".into())]
        );
        assert_eq!(app.view, View::Containers);
        let mut target = crate::target::Target::local();
        target.name = "db".into();
        let commands = app.update(Action::ServerResolved(Ok(target)));
        assert!(matches!(commands.as_slice(), [Command::Connect(t)] if t.name == "db"));
        let session = app.session;
        app.update(Action::Engine {
            session,
            event: EngineEvent::Connected {
                transport: "ssh".into(),
                version: EngineVersion::default(),
            },
        });
        app.update(Action::Engine {
            session,
            event: EngineEvent::Snapshot(fixtures::shop()),
        });
        // A row of the old watch arriving late changes nothing.
        app.update(Action::Fleet {
            round: 1,
            row: up("db", 5),
        });

        // The details pane is the console's own: the first Esc closes it, the second leaves.
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Enter);
        assert!(app.list.details_open);
        assert!(key(&mut app, KeyCode::Esc).is_empty());
        assert_eq!(app.view, View::Containers);
        let commands = key(&mut app, KeyCode::Esc);
        assert_eq!(commands, vec![Command::WatchFleet { round: 2 }]);
        assert_eq!(app.view, View::Fleet);
        let names: Vec<&str> = app.fleet.rows.iter().map(|r| r.server.as_str()).collect();
        assert_eq!(names, ["app-2", "app-1", "db"], "the rows as they were");
        assert_eq!(app.fleet.selected_row().unwrap().server, "db");
        assert_eq!(app.fleet.rows[2].containers.unhealthy, 0);

        // The server already open is shown again as it is, not reconnected.
        assert_eq!(key(&mut app, KeyCode::Enter), vec![Command::StopFleet]);
        assert_eq!(app.view, View::Containers);
        assert_eq!(app.session, session);
    }

    /// One server configured: the picker, as before; the fleet key still opens the fleet, and Esc
    /// from it returns to the console it came from.
    #[test]
    fn fleet_key_opens_and_esc_returns_to_the_console() {
        let mut app = app_with("[servers.only]\ntarget = \"a@127.0.0.1:2201\"\n");
        assert_eq!(app.start(None), vec![Command::LoadServers]);
        assert!(matches!(app.overlay, super::super::Overlay::Picker(_)));
        app.overlay = super::super::Overlay::None;
        let _ = app.connect(crate::target::Target::local());
        let commands = app.update(Action::Key(KeyEvent::new(
            KeyCode::Char('F'),
            KeyModifiers::SHIFT,
        )));
        assert_eq!(commands, vec![Command::WatchFleet { round: 1 }]);
        assert_eq!(app.view, View::Fleet);
        assert_eq!(key(&mut app, KeyCode::Esc), vec![Command::StopFleet]);
        assert_eq!(app.view, View::Containers);
    }
}
