//! The app's state and `update`, the only place it changes. `update` is a pure step: it returns the
//! side effects to run as `Command`s, so it is tested by feeding actions and checking state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent};
use ratatui::layout::Rect;
use ratatui_textarea::TextArea;

pub mod command;
pub mod confirm;
mod connection;
pub mod details;
pub mod drift;
pub mod fleet;
pub mod forwards;
pub mod group_run;
pub mod layout;
pub mod list;
pub mod logs;
pub mod palette;
pub mod panels;
pub mod picker;
pub mod prompt;
pub mod runbook;
mod selection;
pub mod stats;
pub mod swarm;
pub mod timeline;

use crate::action::{Action, Level};
use crate::commands::Arg;
use crate::config::Config;
use crate::engine::EngineVersion;
use crate::engine::model::Container;
use crate::grouping::{Filter, SortKey};
use crate::keymap::{Intent, Keymap, Scope};
use crate::runbook::{
    ActionKind, BackupRequest, Guard, MigrateRequest, PruneRequest, Request, RollbackRequest,
};
use crate::ssh::LinkStatus;
use crate::target::Target;
use crate::theme::Theme;
pub use command::Command;
pub use confirm::{Confirm, ConfirmStep};
pub use fleet::{FleetCtx, FleetView};
use layout::Areas;
pub use list::{Focus, ListCtx, ListView, Row};
pub use logs::{LogInput, LogInputKind, LogView};
pub use palette::Palette;
pub use panels::{AuditPanel, EVENTS_KEPT, EventsPanel, PanelCtx};
pub use picker::{Picker, PickerEntry, PickerStep};
pub use prompt::Prompt;
pub use runbook::{ImagePicker, RunState};
pub use stats::{NodeReach, NodeStats};
pub use swarm::{SwarmRow, SwarmView};

#[derive(Debug, Clone, PartialEq)]
pub enum Connection {
    /// Nothing chosen yet: the server picker is open.
    Idle,
    Connecting,
    Connected {
        transport: String,
        version: EngineVersion,
    },
    Failed(String),
    /// Connected before, the link broke; the list shows the last state.
    Stale {
        reason: String,
        transport: String,
        version: EngineVersion,
    },
}

/// The full-screen views; Esc goes back to the containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Containers,
    Events,
    Runbook,
    Audit,
    Logs,
    /// Host CPU, memory, disks and `docker system df`.
    Host,
    /// Every configured server at once; Esc returns to the console.
    Fleet,
    /// What happened, in time order.
    Timeline,
    /// A swarm manager's stacks, services and tasks.
    Swarm,
    /// A swarm manager's nodes.
    Nodes,
}

/// The small line editor used by the filter and the palette.
pub type Input = TextArea<'static>;

#[derive(Debug, Clone)]
pub enum Overlay {
    None,
    Prompt(Prompt),
    Confirm(Confirm),
    Help {
        scroll: u16,
    },
    Filter(Input),
    Palette(Palette),
    Picker(Picker),
    /// Rollback: which image to go back to.
    Images(ImagePicker),
    /// The search or filter line of a log view.
    LogInput(LogInput),
    /// Which of a container's ports to forward.
    Ports(forwards::PortPicker),
    /// The console's port forwards; `d` stops the selected one.
    Forwards {
        selected: usize,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub level: Level,
    pub text: String,
    pub at: DateTime<Utc>,
    /// The container the message is about: shown only while it is selected.
    pub about: Option<String>,
}

/// How long a footer message stays: errors longer, so they are read; none for ever.
const STATUS_SECS: i64 = 6;
const STATUS_ERROR_SECS: i64 = 20;

pub struct App {
    pub config: Config,
    pub theme: Theme,
    pub keymap: Keymap,
    pub target: Option<Target>,
    pub connection: Connection,
    /// Tasks of older sessions may still report; only this session's news counts.
    pub session: u64,
    pub containers: BTreeMap<String, Container>,
    /// Rates and history per container, from the stats collector.
    pub stats: crate::stats::StatsStore,
    /// Stats pane, interval, host view.
    pub monitor: stats::Monitor,
    /// The container list, its selection and the details pane.
    pub list: ListView,
    pub overlay: Overlay,
    pub status: Option<Status>,
    pub now: DateTime<Utc>,
    pub size: Rect,
    pub should_quit: bool,
    /// The SSH link's state when the server is reached over SSH.
    pub link: Option<LinkStatus>,
    /// Since when what is on screen is no longer known to be current (link or engine lost).
    pub stale_since: Option<DateTime<Utc>>,
    /// Failed resyncs of the engine's events stream since it was last live.
    pub stale_tries: u32,
    pub view: View,
    /// The engine's events, newest first.
    pub events: EventsPanel,
    /// The current or last runbook run.
    pub run: Option<RunState>,
    /// The current or last run across a group: `run` shows its server running now.
    pub group_run: Option<group_run::GroupRun>,
    /// The audit log as last read.
    pub audit: AuditPanel,
    /// The timeline as last built.
    pub timeline: timeline::TimelinePanel,
    /// Quit was pressed once while a runbook ran; the second press quits.
    pub quit_armed: bool,
    /// The open log view.
    pub logs: Option<LogView>,
    /// Log views opened so far: the id of the next one.
    pub log_views: u64,
    /// The servers the picker and `:server` completion offer; refreshed by `Command::LoadServers`.
    pub servers: Vec<PickerEntry>,
    /// The compose files of the projects on screen, for drift.
    pub compose: drift::ComposeFiles,
    /// The swarm views' rows and selections, and the swarm as last read.
    pub swarm: SwarmView,
    /// The fleet view's rows and selection, kept while a server's console is open.
    pub fleet: FleetView,
    /// The port forwards running on this server's session.
    pub forwards: forwards::Forwards,
    /// The engine's first listing of this session has arrived: until then an empty list means
    /// nothing yet, not "no containers".
    pub listed: bool,
}

impl App {
    pub fn new(config: Config, theme: Theme, keymap: Keymap, now: DateTime<Utc>) -> App {
        let interval = config.stats.interval_or_default();
        let servers = crate::target::configured_servers(&config);
        App {
            config,
            theme,
            keymap,
            target: None,
            connection: Connection::Idle,
            session: 0,
            containers: BTreeMap::new(),
            stats: crate::stats::StatsStore::new(interval),
            monitor: stats::Monitor::new(interval),
            list: ListView::default(),
            overlay: Overlay::None,
            status: None,
            now,
            size: Rect::new(0, 0, 120, 40),
            should_quit: false,
            link: None,
            stale_since: None,
            stale_tries: 0,
            view: View::Containers,
            events: EventsPanel::default(),
            run: None,
            group_run: None,
            audit: AuditPanel::default(),
            timeline: timeline::TimelinePanel::default(),
            quit_armed: false,
            logs: None,
            log_views: 0,
            servers,
            compose: drift::ComposeFiles::default(),
            fleet: FleetView::default(),
            swarm: SwarmView::default(),
            forwards: forwards::Forwards::default(),
            listed: false,
        }
    }

    /// The first step: connect to the target; with none named, the fleet when the config lists
    /// several servers, else the picker.
    pub fn start(&mut self, target: Option<Target>) -> Vec<Command> {
        match target {
            Some(t) => self.connect(t),
            None if self.config.servers.len() > 1 => self.open_fleet(),
            None => self.open_picker(),
        }
    }

    /// Starts a session for a target: the caller runs the returned command.
    pub fn connect(&mut self, target: Target) -> Vec<Command> {
        self.session += 1;
        self.target = Some(target.clone());
        self.connection = Connection::Connecting;
        self.link = None;
        self.stale_since = None;
        self.stale_tries = 0;
        self.listed = false;
        self.containers.clear();
        self.compose.clear();
        self.stats.clear();
        self.monitor.reset();
        self.list.revealed = None;
        self.rebuild_rows();
        // The log stream and the forwards belong to the old server: the runner stops them with
        // the session.
        self.logs = None;
        self.forwards.entries.clear();
        let mut commands = vec![];
        if matches!(self.view, View::Logs | View::Swarm | View::Nodes) {
            self.view = View::Containers;
        }
        self.swarm = SwarmView::default();
        if self.view == View::Fleet {
            self.view = View::Containers;
            self.leave_fleet();
        }
        commands.push(Command::Connect(target));
        commands
    }

    pub fn scope(&self) -> Scope {
        if self.view == View::Logs {
            return Scope::Logs;
        }
        if self.view == View::Fleet {
            return Scope::Fleet;
        }
        if matches!(self.view, View::Swarm | View::Nodes) {
            return Scope::Swarm;
        }
        if self.view != View::Containers {
            return Scope::Panel;
        }
        match self.list.focus {
            Focus::Details if self.list.details_open => Scope::Details,
            _ => Scope::List,
        }
    }

    /// The body shows a screen of its own instead of the view (the same test as the drawing's).
    pub fn body_is_covered(&self) -> bool {
        // A group's run belongs to no one server's connection: it shows with none open.
        if self.view == View::Fleet || (self.view == View::Runbook && self.group_run.is_some()) {
            return false;
        }
        match &self.connection {
            Connection::Failed(_) | Connection::Idle => true,
            Connection::Connecting => self.containers.is_empty(),
            _ => false,
        }
    }

    pub fn selected_container(&self) -> Option<&Container> {
        self.list.selected_container(&self.containers)
    }

    pub fn areas(&self) -> Areas {
        layout::areas(self.size, self)
    }

    pub fn notify(&mut self, level: Level, text: impl Into<String>) {
        self.status = Some(Status {
            level,
            text: text.into(),
            at: self.now,
            about: None,
        });
    }

    /// A footer message about one container: it goes when another row is selected.
    pub fn notify_about(&mut self, level: Level, text: impl Into<String>, id: &str) {
        self.notify(level, text);
        if let Some(s) = &mut self.status {
            s.about = Some(id.to_string());
        }
    }

    /// The footer message to show now: none when it is about another container than the selected one.
    pub fn visible_status(&self) -> Option<&Status> {
        let s = self.status.as_ref()?;
        match &s.about {
            Some(id) if self.selected_container().map(|c| &c.id) != Some(id) => None,
            _ => Some(s),
        }
    }

    pub fn update(&mut self, action: Action) -> Vec<Command> {
        let mut commands = self.step(action);
        commands.extend(self.watch_stats_if_changed());
        commands.extend(self.watch_node_stats_if_changed());
        commands.extend(self.refresh_swarm());
        commands
    }

    fn step(&mut self, action: Action) -> Vec<Command> {
        match action {
            Action::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
            Action::Key(_) => vec![],
            Action::Mouse(m) => self.on_mouse(m),
            Action::Paste(text) => {
                match &mut self.overlay {
                    Overlay::Filter(input) => {
                        input.insert_str(text.replace(['\n', '\r'], " "));
                        self.apply_live_filter();
                    }
                    Overlay::Palette(p) => {
                        p.input.insert_str(text.replace(['\n', '\r'], " "));
                        self.complete_palette();
                    }
                    Overlay::LogInput(li) => {
                        li.input.insert_str(text.replace(['\n', '\r'], " "));
                    }
                    _ => {}
                }
                vec![]
            }
            Action::Resize(w, h) => {
                self.size = Rect::new(0, 0, w, h);
                self.clamp_selection();
                vec![]
            }
            Action::Tick(now) => {
                self.now = now;
                if let Some(s) = &self.status {
                    let keep = if s.level == Level::Error {
                        STATUS_ERROR_SECS
                    } else {
                        STATUS_SECS
                    };
                    if (now - s.at).num_seconds() >= keep {
                        self.status = None;
                    }
                }
                self.close_idle_fleet()
            }
            Action::Engine { session, event } if session == self.session => {
                let commands = self.on_engine(event);
                self.track_staleness();
                commands
            }
            Action::Engine { .. } => vec![],
            Action::Notify(level, text) => {
                self.notify(level, text);
                vec![]
            }
            Action::Runbook(msg) => self.on_runbook(msg),
            Action::Timeline { session, result } => self.on_timeline(session, result),
            Action::Logs { view, event } => self.on_log_event(view, event),
            Action::Servers(list) => {
                self.servers = list;
                if let Overlay::Picker(p) = &mut self.overlay {
                    let chosen = p.entries.get(p.selected).map(|e| e.name.clone());
                    p.entries = self.servers.clone();
                    p.selected = chosen
                        .and_then(|n| p.entries.iter().position(|e| e.name == n))
                        .unwrap_or(0);
                }
                vec![]
            }
            Action::ServerResolved(Ok(mut target)) => {
                // berth read-only (the config's `read_only`, into which the console folds
                // --read-only) holds for every server it opens, from the fleet or the picker.
                target.read_only |= self.config.read_only;
                self.connect(target)
            }
            Action::ServerResolved(Err(e)) => {
                self.notify(Level::Error, e);
                vec![]
            }
            Action::Fleet { round, row } => self.on_fleet_row(round, row),
            Action::Forward { session, id, event } => self.on_forward(session, id, event),
            Action::Swarm { session, result } => self.on_swarm(session, result),
            Action::ThemeLoaded { name, result } => {
                match result {
                    Ok(t) => {
                        self.theme = t;
                        self.notify(Level::Info, format!("theme {name}"));
                    }
                    Err(e) => self.notify(Level::Error, e),
                }
                vec![]
            }
            Action::Prompt(request, reply) => {
                self.overlay = Overlay::Prompt(Prompt::new(request, reply));
                vec![]
            }
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Command> {
        // Text inputs take keys before any binding.
        match &mut self.overlay {
            Overlay::Prompt(_) => return self.on_prompt_key(key),
            Overlay::Confirm(_) => return self.on_confirm_key(key),
            Overlay::Filter(_) => return self.on_filter_key(key),
            Overlay::Palette(_) => return self.on_palette_key(key),
            Overlay::Picker(_) => return self.on_picker_key(key),
            Overlay::Images(_) => return self.on_image_picker_key(key),
            Overlay::LogInput(_) => return self.on_log_input_key(key),
            Overlay::Ports(_) => return self.on_ports_key(key),
            Overlay::Forwards { .. } => return self.on_forwards_key(key),
            Overlay::Help { .. } => {
                let intent = self.keymap.lookup(Scope::Global, &key);
                if let Overlay::Help { scroll } = &mut self.overlay {
                    match intent {
                        Some(Intent::Down) => *scroll = scroll.saturating_add(1),
                        Some(Intent::Up) => *scroll = scroll.saturating_sub(1),
                        Some(Intent::PageDown) => *scroll = scroll.saturating_add(10),
                        Some(Intent::PageUp) => *scroll = scroll.saturating_sub(10),
                        Some(Intent::Quit) if key.modifiers.contains(KeyModifiers::CONTROL) => {
                            self.should_quit = true;
                        }
                        _ => self.overlay = Overlay::None,
                    }
                }
                return vec![];
            }
            Overlay::None => {}
        }
        let scope = self.scope();
        let Some(intent) = self.keymap.lookup(scope, &key) else {
            return vec![];
        };
        self.run_command(intent, None)
    }

    /// Runs a command from a key (`arg` is `None`) or the palette. The one place the table's
    /// rules apply: a command that changes the server is refused on a read-only one, and a
    /// palette-only command reached by a key opens the palette to ask for its argument.
    pub fn run_command(&mut self, intent: Intent, arg: Option<&str>) -> Vec<Command> {
        // A group's run also answers to its own servers' guards (`group_run.rs`).
        if intent.mutating()
            && let Some(target) = &self.target
            && let Err(e) = Guard::for_target(target).allows(true)
        {
            self.notify(Level::Error, e.to_string());
            return vec![];
        }
        let Some(arg) = arg else {
            if let Some(p) = intent.palette()
                && intent.default_keys().is_empty()
                && matches!(p.arg, Arg::Required(_))
            {
                self.open_palette(&format!("{} ", p.name()));
                return vec![];
            }
            return self.on_intent(intent);
        };
        self.on_palette_command(intent, arg)
    }

    /// `:notify-test`: the runner posts, the status line says how each webhook answered.
    fn notify_test(&mut self) -> Vec<Command> {
        let n = self.config.notify.len();
        if n == 0 {
            self.notify(
                Level::Warn,
                "no [[notify]] webhook is configured: add one to the config (README: Notifications)",
            );
            return vec![];
        }
        self.notify(
            Level::Info,
            format!("posting a test message to {n} webhook(s)…"),
        );
        vec![Command::NotifyTest]
    }

    pub fn on_intent(&mut self, intent: Intent) -> Vec<Command> {
        if self.view == View::Fleet {
            return self.on_fleet_intent(intent);
        }
        if intent == Intent::FleetView {
            return self.open_fleet();
        }
        // Esc in a console with nothing of its own to close goes back to the fleet, and so does
        // Esc in the run view of a group's run started there.
        let group_run_view = self.view == View::Runbook && self.group_run.is_some();
        if intent == Intent::Back
            && self.back_to_fleet()
            && (group_run_view || matches!(self.view, View::Containers))
            && (self.body_is_covered() || (!self.list.details_open && self.list.filter.is_none()))
        {
            return self.open_fleet();
        }
        // An error, connecting or pick-a-server screen covers the body: keys that would change
        // the view behind it (sort, filter, collapse, scroll …) do nothing there.
        if self.body_is_covered()
            && !matches!(
                intent,
                Intent::Quit
                    | Intent::Help
                    | Intent::Palette
                    | Intent::ServerPicker
                    | Intent::Refresh
            )
        {
            return vec![];
        }
        // The same in every view: it only says something in the status line.
        if intent == Intent::NotifyTest {
            return self.notify_test();
        }
        if self.view == View::Logs {
            return self.on_logs_intent(intent);
        }
        if matches!(self.view, View::Swarm | View::Nodes) {
            return self.on_swarm_intent(intent);
        }
        match intent {
            Intent::SwarmView => return self.open_swarm(View::Swarm),
            Intent::NodesView => return self.open_swarm(View::Nodes),
            _ => {}
        }
        if let Some(commands) = self.on_stats_intent(intent) {
            return commands;
        }
        if self.view != View::Containers {
            match intent {
                Intent::Back => self.view = View::Containers,
                Intent::Events if self.view == View::Events => self.view = View::Containers,
                Intent::Events => self.view = View::Events,
                Intent::Audit if self.view == View::Audit => self.view = View::Containers,
                Intent::Audit => return vec![Command::LoadAudit],
                Intent::Timeline if self.view == View::Timeline => self.view = View::Containers,
                Intent::Timeline => return self.open_timeline(vec![]),
                Intent::RunView if self.view == View::Runbook => self.view = View::Containers,
                Intent::RunView if self.run.is_some() => self.view = View::Runbook,
                Intent::Quit => self.quit(),
                Intent::Help => self.overlay = Overlay::Help { scroll: 0 },
                Intent::Palette => self.open_palette(""),
                Intent::ServerPicker => return self.open_picker(),
                _ => {
                    let ctx = PanelCtx {
                        page: self.areas().list_rows.max(1),
                    };
                    return match (self.view, &mut self.run) {
                        (View::Runbook, Some(run)) => run.handle(intent, &ctx),
                        (View::Runbook, None) => vec![],
                        (View::Audit, _) => self.audit.handle(intent, &ctx),
                        (View::Timeline, _) => self.timeline.handle(intent, &ctx),
                        _ => self.events.handle(intent, &ctx),
                    };
                }
            }
            return vec![];
        }
        // A container action (restart, stop, …): its kind is named like the command.
        if let Some(kind) = action_kind(intent) {
            return self.runbook_for_selection(|name, project| Request::Action {
                kind,
                name,
                project,
            });
        }
        match intent {
            Intent::Quit => self.quit(),
            Intent::Events => {
                self.view = View::Events;
                self.events.scroll = 0;
            }
            Intent::Help => self.overlay = Overlay::Help { scroll: 0 },
            Intent::Palette => self.open_palette(""),
            Intent::ServerPicker => return self.open_picker(),
            Intent::Refresh => {
                if let (Connection::Failed(_), Some(t)) = (&self.connection, self.target.clone()) {
                    return self.connect(t);
                }
                return vec![Command::Resync];
            }
            Intent::Filter => {
                let mut input = new_input();
                if let Some(f) = &self.list.filter {
                    input.insert_str(f.text());
                }
                self.overlay = Overlay::Filter(input);
            }
            Intent::Logs => return self.logs_of_selection(),
            Intent::Migrate => {
                return self.runbook_for_selection(|name, project| {
                    Request::Migrate(MigrateRequest {
                        name,
                        project,
                        ..Default::default()
                    })
                });
            }
            Intent::Backup => {
                return self.runbook_for_selection(|name, project| {
                    Request::Backup(BackupRequest { name, project })
                });
            }
            Intent::Rollback => return self.rollback_selection(false),
            Intent::Deploy => return self.rollback_selection(true),
            // Keys of the log view mean nothing in the list.
            Intent::LogFollow
            | Intent::LogWrap
            | Intent::LogLeft
            | Intent::LogRight
            | Intent::LogTimestamps
            | Intent::LogUtc
            | Intent::LogSearch
            | Intent::LogNext
            | Intent::LogPrev
            | Intent::LogFilter
            | Intent::LogInvert
            | Intent::LogCase
            | Intent::LogSave
            | Intent::LogSaveAll
            | Intent::LogCopy
            | Intent::LogSince => {}
            Intent::Interval => return self.set_stats_interval(""),
            Intent::Prune => return self.request_runbook(Request::Prune(PruneRequest::default())),
            Intent::Audit => return vec![Command::LoadAudit],
            Intent::Timeline => return self.open_timeline(vec![]),
            // Answered above, in every view.
            Intent::NotifyTest => {}
            // Handled by `on_stats_intent` where they apply.
            Intent::Host | Intent::Stats => {}
            Intent::RunView => {
                if self.run.is_some() {
                    self.view = View::Runbook;
                } else {
                    self.notify(Level::Info, "no runbook has run in this session");
                }
            }
            Intent::Shell => return self.shell_in_selection(),
            Intent::Forward => return self.forward_selection(),
            Intent::ForwardsList => self.open_forwards(),
            Intent::ServiceLogs => return self.service_logs_of_selection(),
            // The list's own keys; palette commands (`run_command` asks for their argument
            // first) and container actions (above) mean nothing to it.
            other => return self.with_list(|list, ctx| list.handle(other, ctx)),
        }
        vec![]
    }

    /// Quits, but asks twice while a runbook is running.
    fn quit(&mut self) {
        if self.run.as_ref().is_some_and(|r| !r.finished()) && !self.quit_armed {
            self.quit_armed = true;
            self.notify(
                Level::Warn,
                "a runbook is running: quitting stops it halfway (a later rollback finds and finishes or restores it); q again to quit",
            );
            return;
        }
        self.should_quit = true;
    }

    fn on_mouse(&mut self, m: MouseEvent) -> Vec<Command> {
        if !matches!(self.overlay, Overlay::None) {
            return vec![];
        }
        if self.view == View::Logs {
            return self.on_logs_mouse(m);
        }
        self.with_list(|list, ctx| list.mouse(m, ctx))
    }
}

/// Moves a popup list's selection for Up/Down/Top/Bottom; false for any other intent.
pub(crate) fn move_in_list(selected: &mut usize, len: usize, intent: Intent) -> bool {
    let last = len.saturating_sub(1);
    *selected = match intent {
        Intent::Up => selected.saturating_sub(1),
        Intent::Down => (*selected + 1).min(last),
        Intent::Top => 0,
        Intent::Bottom => last,
        _ => return false,
    };
    true
}

/// The container action a command runs: the one its palette name names (`restart`, `rm`).
fn action_kind(intent: Intent) -> Option<ActionKind> {
    intent.palette().and_then(|p| ActionKind::parse(p.name()))
}

/// `project/service` → (service, Some(project)); anything else is a name as it is.
fn split_service(name: &str) -> (String, Option<String>) {
    match name.split_once('/') {
        Some((p, s)) if !p.is_empty() && !s.is_empty() => (s.to_string(), Some(p.to_string())),
        _ => (name.to_string(), None),
    }
}

fn is_ctrl_c(key: &KeyEvent) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c')
}

pub fn new_input() -> Input {
    let mut t = TextArea::default();
    t.set_cursor_line_style(ratatui::style::Style::default());
    t
}

#[cfg(test)]
mod no_io_tests;

#[cfg(test)]
mod table_tests;

#[cfg(test)]
mod tests;
