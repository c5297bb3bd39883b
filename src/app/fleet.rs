//! The fleet view: one row per configured server, filled in as each answers, trouble first. Owns
//! its rows, its selection and the keys that move it; opening a server's console is the app's.

use super::{App, Command, View, move_in_list};
use crate::fleet::{ServerRow, sort_rows};
use crate::keymap::Intent;

/// What the fleet view may read while it handles a key.
pub struct FleetCtx {
    /// Rows a page holds.
    pub page: usize,
    /// Group rows above the servers (`[groups.NAME]`).
    pub groups: usize,
    /// Matches listed while `/` searches.
    pub found: usize,
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
    /// The group row selected instead of a server (index into the config's groups): Up from the
    /// first server reaches the groups above it.
    pub group: Option<usize>,
    /// The match selected while `/` searches.
    pub found: usize,
    /// What `query` finds on the rows: worked out when either changes, not on every frame.
    matches: Vec<crate::fleet::find::Found>,
    /// The watch runs (some of its sessions open), also while another view is shown.
    pub watching: bool,
    /// While another view is shown: when each server was last looked at (the fleet view shows
    /// them all; a server's console shows it). `[fleet] idle_close` after that, its session
    /// closes.
    pub seen: std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>>,
    /// Servers of the running watch whose sessions were closed for idleness: showing the fleet
    /// reopens them.
    pub closed: std::collections::BTreeSet<String>,
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
        self.refind();
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
    pub fn put(&mut self, mut row: ServerRow) {
        match self.rows.iter_mut().find(|r| r.server == row.server) {
            Some(old) => {
                row.keep_stale_from(old);
                *old = row
            }
            None => self.rows.push(row),
        }
        self.resort();
        self.refind();
    }

    /// Searches the servers' last listings for `query` (`None` or blank: no search).
    pub fn set_query(&mut self, query: Option<&str>) {
        self.query = query
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty());
        self.found = 0;
        self.refind();
    }

    /// What `/` found, as the view lists it.
    pub fn matches(&self) -> &[crate::fleet::find::Found] {
        &self.matches
    }

    fn refind(&mut self) {
        self.matches = match &self.query {
            Some(q) => crate::fleet::find::find(&self.rows, q),
            None => vec![],
        };
        self.found = self.found.min(self.matches.len().saturating_sub(1));
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
        if intent == Intent::Refresh {
            self.round += 1;
            return vec![Command::WatchFleet { round: self.round }];
        }
        if self.query.is_some() {
            move_in_list(&mut self.found, ctx.found, intent);
            return vec![];
        }
        match (intent, self.group) {
            (Intent::Up, Some(g)) => self.group = Some(g.saturating_sub(1)),
            (Intent::Down, Some(g)) if g + 1 < ctx.groups => self.group = Some(g + 1),
            (Intent::Down, Some(_)) => {
                self.group = None;
                self.selected = 0;
            }
            (Intent::Up, None) if self.selected == 0 && ctx.groups > 0 => {
                self.group = Some(ctx.groups - 1);
            }
            (Intent::Top, _) if ctx.groups > 0 => self.group = Some(0),
            (Intent::PageDown, _) => {
                self.group = None;
                self.selected = (self.selected + page).min(len.saturating_sub(1));
            }
            (Intent::PageUp, _) => {
                self.group = None;
                self.selected = self.selected.saturating_sub(page);
            }
            (other, _) => {
                if move_in_list(&mut self.selected, len, other) {
                    self.group = None;
                }
            }
        }
        vec![]
    }
}

// The app's side: opening the view, its news, and leaving it for a server's console.
impl App {
    /// Shows the fleet, watching every configured server: the watch still running since the view
    /// was left goes on (its rows are current), else a new one starts.
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
        self.view = View::Fleet;
        self.fleet.seen.clear();
        if self.fleet.watching {
            // Servers closed while nobody looked at them open again; the rest run on.
            if !self.fleet.closed.is_empty() {
                let servers = std::mem::take(&mut self.fleet.closed).into_iter().collect();
                commands.push(Command::ReopenFleetServers {
                    round: self.fleet.round,
                    servers,
                });
            }
            return commands;
        }
        let round = self.fleet.start(pending);
        self.fleet.watching = true;
        self.fleet.closed.clear();
        commands.push(Command::WatchFleet { round });
        commands
    }

    /// Another view takes the screen: every server was looked at until now; each one's session
    /// stays open until `[fleet] idle_close` passes without a look at it.
    pub(super) fn leave_fleet(&mut self) {
        if self.fleet.watching {
            let now = self.now;
            self.fleet.seen = self
                .fleet
                .rows
                .iter()
                .map(|r| (r.server.clone(), now))
                .collect();
        }
    }

    /// On the clock, while the fleet view is hidden: the server whose console is open is being
    /// looked at; the sessions of servers not looked at for `[fleet] idle_close` close. When all
    /// have closed the watch has stopped, and showing the fleet starts a new one.
    pub(super) fn close_idle_fleet(&mut self) -> Vec<Command> {
        if !self.fleet.watching || self.view == View::Fleet {
            return vec![];
        }
        let now = self.now;
        if let Some(seen) = self
            .target
            .as_ref()
            .and_then(|t| self.fleet.seen.get_mut(&t.name))
        {
            *seen = now;
        }
        let idle = self
            .config
            .fleet
            .idle_close()
            .unwrap_or(crate::config::DEFAULT_IDLE_CLOSE);
        let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
        let idle: Vec<String> = self
            .fleet
            .seen
            .iter()
            .filter(|(_, at)| now - **at >= idle)
            .map(|(server, _)| server.clone())
            .collect();
        if idle.is_empty() {
            return vec![];
        }
        for server in &idle {
            self.fleet.seen.remove(server);
            self.fleet.closed.insert(server.clone());
        }
        if self.fleet.seen.is_empty() {
            self.fleet.watching = false;
            self.fleet.closed.clear();
        }
        vec![Command::CloseFleetServers(idle)]
    }

    /// A row of the running watch, also while the view is hidden, so coming back shows it current.
    pub(super) fn on_fleet_row(&mut self, round: u64, row: ServerRow) -> Vec<Command> {
        if round == self.fleet.round && self.fleet.watching {
            self.fleet.put(row);
        }
        vec![]
    }

    /// Keys in the fleet view: leaving it, opening a server, the rest moves the selection.
    pub(super) fn on_fleet_intent(&mut self, intent: Intent) -> Vec<Command> {
        match intent {
            Intent::Back if self.fleet.query.is_some() => self.fleet.set_query(None),
            Intent::GroupRestart | Intent::GroupRollback => return self.group_key(intent),
            Intent::FleetOpen if self.fleet.group.is_some() || self.fleet.query.is_some() => {
                self.notify(
                    crate::action::Level::Info,
                    "Enter opens a server's console: select a server row; R / B restart or roll back a service across the group",
                );
            }
            Intent::FleetFind => self.open_palette("find "),
            Intent::Back | Intent::FleetView => {
                // Back to the console the fleet was opened from; with none, the fleet stays.
                if self.target.is_some() {
                    self.view = View::Containers;
                    self.leave_fleet();
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
                    groups: self.config.groups.len(),
                    found: self.fleet_found().len(),
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
        self.leave_fleet();
        let same = self.target.as_ref().is_some_and(|t| t.name == name);
        if !same || matches!(self.connection, super::Connection::Failed(_)) {
            return self.switch_server(&name);
        }
        vec![]
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
        self.fleet.set_query(Some(text));
        commands
    }

    /// What `/` found on the servers' last listings, as the view lists it.
    pub fn fleet_found(&self) -> &[crate::fleet::find::Found] {
        self.fleet.matches()
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
        let config =
            crate::config::file::parse(config, std::path::Path::new("berth.toml")).unwrap();
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

    /// Enter opens the selected server's console through the usual resolve-and-connect path while
    /// the fleet's watch goes on; Esc (once the console has nothing of its own to close) comes back
    /// to the fleet with its selection as it was and its rows current, without a new watch.
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
        assert_eq!(commands, vec![Command::ResolveServer("db".into())]);
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
        // The watch goes on behind the console: its rows keep the fleet current; a row of an
        // older watch changes nothing.
        app.update(Action::Fleet {
            round: 1,
            row: up("app-2", 0),
        });
        app.update(Action::Fleet {
            round: 0,
            row: up("db", 5),
        });

        // The details pane is the console's own: the first Esc closes it, the second leaves.
        key(&mut app, KeyCode::Down);
        key(&mut app, KeyCode::Enter);
        assert!(app.list.details_open);
        assert!(key(&mut app, KeyCode::Esc).is_empty());
        assert_eq!(app.view, View::Containers);
        let commands = key(&mut app, KeyCode::Esc);
        assert!(commands.is_empty(), "the watch still runs: {commands:?}");
        assert_eq!(app.view, View::Fleet);
        let names: Vec<&str> = app.fleet.rows.iter().map(|r| r.server.as_str()).collect();
        assert_eq!(names, ["app-1", "app-2", "db"], "the rows current");
        assert_eq!(app.fleet.selected_row().unwrap().server, "db");
        assert_eq!(app.fleet.rows[2].containers.unhealthy, 0);

        // The server already open is shown again as it is, not reconnected.
        assert!(key(&mut app, KeyCode::Enter).is_empty());
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
        assert!(key(&mut app, KeyCode::Esc).is_empty());
        assert_eq!(app.view, View::Containers);
    }

    /// A fleet not looked at for `[fleet] idle_close` (no server's console open either) closes
    /// its sessions; showing it again reopens them with a new watch, the last rows shown meanwhile.
    #[test]
    fn a_fleet_left_alone_closes_its_sessions_and_reopens_on_demand() {
        let mut app = app_with(
            "[fleet]
idle_close = \"2m\"
[servers.a]
target = \"a@127.0.0.1:2201\"
[servers.b]
target = \"a@127.0.0.1:2202\"
",
        );
        assert_eq!(app.start(None), vec![Command::WatchFleet { round: 1 }]);
        app.update(Action::Fleet {
            round: 1,
            row: up("a", 0),
        });
        assert_eq!(
            key(&mut app, KeyCode::Enter),
            vec![Command::ResolveServer("a".into())]
        );
        let t0 = app.now;
        let tick = |app: &mut App, secs: i64| {
            app.update(Action::Tick(t0 + chrono::Duration::seconds(secs)))
        };
        assert!(tick(&mut app, 60).is_empty(), "one minute: still watching");
        assert_eq!(
            tick(&mut app, 121),
            vec![Command::CloseFleetServers(vec!["a".into(), "b".into()])]
        );
        assert!(!app.fleet.watching);
        assert!(tick(&mut app, 300).is_empty(), "closed once");
        // A row of the stopped watch still in flight changes nothing.
        app.update(Action::Fleet {
            round: 1,
            row: up("a", 3),
        });
        let commands = app.update(Action::Key(KeyEvent::new(
            KeyCode::Char('F'),
            KeyModifiers::SHIFT,
        )));
        assert_eq!(commands, vec![Command::WatchFleet { round: 2 }]);
        assert_eq!(
            app.fleet
                .rows
                .iter()
                .find(|r| r.server == "a")
                .unwrap()
                .containers
                .unhealthy,
            0
        );
        // Looked at: no idle close however long it stays open.
        assert!(tick(&mut app, 3600).is_empty());
    }

    /// Idle close is per server: while a server's console is open its fleet session stays, the
    /// others close after `[fleet] idle_close`; a console opened later keeps its server from then
    /// on, and the one left closes its idle time after it was left. Showing the fleet reopens only
    /// the closed servers, within the same watch.
    #[test]
    fn idle_close_keeps_the_server_whose_console_is_open() {
        let mut app = app_with(
            "[fleet]\nidle_close = \"2m\"\n\
             [servers.a]\ntarget = \"a@127.0.0.1:2201\"\n\
             [servers.b]\ntarget = \"a@127.0.0.1:2202\"\n\
             [servers.c]\ntarget = \"a@127.0.0.1:2203\"\n",
        );
        assert_eq!(app.start(None), vec![Command::WatchFleet { round: 1 }]);
        for name in ["a", "b", "c"] {
            app.update(Action::Fleet {
                round: 1,
                row: up(name, 0),
            });
        }
        let t0 = app.now;
        let tick = |app: &mut App, secs: i64| {
            app.update(Action::Tick(t0 + chrono::Duration::seconds(secs)))
        };
        let open = |app: &mut App, name: &str| {
            let mut target = crate::target::Target::local();
            target.name = name.into();
            app.update(Action::ServerResolved(Ok(target)))
        };
        // a's console: opened from the fleet (a is the first row).
        assert_eq!(
            key(&mut app, KeyCode::Enter),
            vec![Command::ResolveServer("a".into())]
        );
        open(&mut app, "a");
        assert!(tick(&mut app, 60).is_empty());
        assert_eq!(
            tick(&mut app, 120),
            vec![Command::CloseFleetServers(vec!["b".into(), "c".into()])],
            "the servers nobody looked at close, a's stays"
        );
        assert!(app.fleet.watching);
        assert!(
            tick(&mut app, 600).is_empty(),
            "a stays while its console is open"
        );
        // The picker switches the console to b (closed already): a was looked at until now.
        open(&mut app, "b");
        assert!(tick(&mut app, 660).is_empty());
        assert_eq!(
            tick(&mut app, 720),
            vec![Command::CloseFleetServers(vec!["a".into()])],
            "a closes its idle time after its console was left"
        );
        assert!(
            !app.fleet.watching,
            "every session closed: the watch stopped"
        );

        // Showing the fleet starts a new watch; leaving it again with c's console open, then
        // showing it after a and b closed, reopens just those two in the same round.
        assert_eq!(
            app.update(Action::Key(KeyEvent::new(
                KeyCode::Char('F'),
                KeyModifiers::SHIFT,
            ))),
            vec![Command::WatchFleet { round: 2 }]
        );
        app.fleet.selected = app.fleet.rows.iter().position(|r| r.server == "c").unwrap();
        assert_eq!(
            key(&mut app, KeyCode::Enter),
            vec![Command::ResolveServer("c".into())]
        );
        open(&mut app, "c");
        let left = 720;
        assert_eq!(
            tick(&mut app, left + 130),
            vec![Command::CloseFleetServers(vec!["a".into(), "b".into()])]
        );
        assert_eq!(
            app.update(Action::Key(KeyEvent::new(
                KeyCode::Char('F'),
                KeyModifiers::SHIFT,
            ))),
            vec![Command::ReopenFleetServers {
                round: 2,
                servers: vec!["a".into(), "b".into()]
            }]
        );
        assert!(app.fleet.closed.is_empty());
        assert!(
            tick(&mut app, left + 3600).is_empty(),
            "looked at: nothing closes"
        );
    }
}
