//! The app's state and `update`, the only place it changes. `update` is a pure step: it returns the
//! side effects to run as `Command`s, so it is tested by feeding actions and checking state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEvent};
use ratatui::layout::Rect;
use ratatui_textarea::TextArea;

pub mod confirm;
pub mod details;
pub mod layout;
pub mod list;
pub mod logs;
pub mod palette;
pub mod picker;
pub mod prompt;
pub mod runbook;
pub mod stats;

use crate::action::{Action, EngineEvent, EventRecord, Level, Reply, SharedPlan};
use crate::commands::Arg;
use crate::config::Config;
use crate::engine::EngineVersion;
use crate::engine::model::{Container, State};
use crate::grouping::{Filter, STANDALONE, SortKey};
use crate::keymap::{Intent, Keymap, Scope};
use crate::runbook::{
    ActionKind, AuditEntry, Guard, MigrateRequest, PruneRequest, Request, RollbackRequest,
};
use crate::ssh::{LinkStatus, PromptAnswer};
use crate::target::Target;
use crate::theme::Theme;
pub use confirm::{Confirm, ConfirmStep};
use layout::{Areas, Screen};
pub use list::{Focus, ListCtx, ListView, Row};
pub use logs::{LogInput, LogInputKind, LogView};
pub use palette::Palette;
pub use picker::{Picker, PickerEntry, PickerStep};
pub use prompt::Prompt;
pub use runbook::{ImagePicker, RunState};

/// Side effects `update` asks for; the runner in `tui.rs` carries them out.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Drop the current server's tasks and connect to this one.
    Connect(Target),
    /// Re-list every container now.
    Resync,
    /// Stream the logs of these containers (one container, a service or a project) into log view
    /// `view`, replacing any earlier log stream.
    OpenLogs {
        ids: Vec<String>,
        view: u64,
        options: crate::logs::LogOptions,
    },
    /// Stop the log stream: its view closed.
    CloseLogs,
    /// Write a log view's lines to `file` (relative: the current directory, else the data directory).
    /// The runner formats them, off the update loop.
    SaveLogs {
        file: std::path::PathBuf,
        lines: Vec<crate::logs::LogLine>,
        sources: Vec<crate::logs::LogSource>,
        timestamps: bool,
    },
    /// Put text on the terminal's clipboard (OSC 52); the loop writes it, between frames.
    Copy(String),
    /// Suspend the console and open an interactive shell in the container.
    Shell { id: String, name: String },
    /// Hand the user's answer back to the SSH layer.
    Answer(Reply, PromptAnswer),
    /// Build the plan for a runbook request (reads the engine only).
    PlanRunbook(Request),
    /// Run a confirmed plan.
    RunPlan(SharedPlan),
    /// Read the audit log.
    LoadAudit,
    /// List the images a service can roll back to (the picker opens with them).
    LoadCandidates {
        name: String,
        project: Option<String>,
    },
    /// Read stats of these containers (and only these) from now on.
    WatchStats(Vec<String>),
    /// Read stats this often.
    StatsInterval(std::time::Duration),
    /// Ask the engine for `docker system df`.
    LoadDiskUsage,
    /// Read the servers berth knows of; the answer is `Action::Servers`.
    LoadServers,
    /// Resolve a server name to a target; the answer is `Action::ServerResolved`.
    ResolveServer(String),
    /// Read a theme file; the answer is `Action::ThemeLoaded`.
    LoadTheme(String),
}

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

/// Engine events kept for the events view.
pub const EVENTS_KEPT: usize = 1000;

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
    /// Newest first, bounded by [`EVENTS_KEPT`].
    pub events: std::collections::VecDeque<EventRecord>,
    pub events_scroll: usize,
    /// The current or last runbook run.
    pub run: Option<RunState>,
    pub audit: Vec<AuditEntry>,
    pub audit_scroll: usize,
    /// Quit was pressed once while a runbook ran; the second press quits.
    pub quit_armed: bool,
    /// The open log view.
    pub logs: Option<LogView>,
    /// Log views opened so far: the id of the next one.
    pub log_views: u64,
    /// The servers the picker and `:server` completion offer; refreshed by `Command::LoadServers`.
    pub servers: Vec<PickerEntry>,
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
            events: std::collections::VecDeque::new(),
            events_scroll: 0,
            run: None,
            audit: Vec::new(),
            audit_scroll: 0,
            quit_armed: false,
            logs: None,
            log_views: 0,
            servers,
        }
    }

    /// The first step: connect to the target, or let the user pick a server.
    pub fn start(&mut self, target: Option<Target>) -> Vec<Command> {
        match target {
            Some(t) => self.connect(t),
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
        self.containers.clear();
        self.stats.clear();
        self.monitor.reset();
        self.list.revealed = None;
        self.rebuild_rows();
        // The log stream belongs to the old server: the runner stops it with the session.
        self.logs = None;
        if self.view == View::Logs {
            self.view = View::Containers;
        }
        vec![Command::Connect(target)]
    }

    pub fn scope(&self) -> Scope {
        if self.view == View::Logs {
            return Scope::Logs;
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
                vec![]
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
                if let Some(cur) = &self.target {
                    // --read-only given on the command line holds for every server.
                    target.read_only |= cur.read_only && self.config.read_only;
                }
                self.connect(target)
            }
            Action::ServerResolved(Err(e)) => {
                self.notify(Level::Error, e);
                vec![]
            }
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
                let mut input = new_input();
                input.set_mask_char('•');
                self.overlay = Overlay::Prompt(Prompt {
                    request,
                    input,
                    reply,
                });
                vec![]
            }
        }
    }

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
    fn track_staleness(&mut self) {
        match (self.is_stale(), self.stale_since) {
            (true, None) => self.stale_since = Some(self.now),
            (false, Some(_)) => self.stale_since = None,
            _ => {}
        }
    }

    fn on_engine(&mut self, event: EngineEvent) -> Vec<Command> {
        match event {
            EngineEvent::Connected { transport, version } => {
                self.connection = Connection::Connected { transport, version };
            }
            EngineEvent::ConnectFailed(e) => {
                self.connection = Connection::Failed(e);
            }
            EngineEvent::Snapshot(list) => {
                self.containers = list.into_iter().map(|c| (c.id.clone(), c)).collect();
                self.stats.retain(|id, _| self.containers.contains_key(id));
                self.rebuild_rows();
            }
            EngineEvent::Changed(c) => {
                self.containers.insert(c.id.clone(), *c);
                self.rebuild_rows();
            }
            EngineEvent::Gone(id) => {
                self.containers.remove(&id);
                self.stats.remove(&id);
                if self.list.revealed.as_deref() == Some(id.as_str()) {
                    self.list.revealed = None;
                }
                self.rebuild_rows();
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
            EngineEvent::Host(report) => return self.on_host(report),
            EngineEvent::DiskUsage(usage) => return self.on_disk_usage(usage),
            EngineEvent::Event(record) => {
                if self.events.len() == EVENTS_KEPT {
                    self.events.pop_back();
                }
                self.events.push_front(record);
                if self.view == View::Events && self.events_scroll > 0 {
                    // Keep the rows the user is reading still while new ones arrive on top.
                    self.events_scroll += 1;
                }
            }
        }
        vec![]
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

    pub fn on_intent(&mut self, intent: Intent) -> Vec<Command> {
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
        if self.view == View::Logs {
            return self.on_logs_intent(intent);
        }
        if let Some(commands) = self.on_stats_intent(intent) {
            return commands;
        }
        if self.view != View::Containers {
            let page = self.areas().list_rows.max(1);
            let (len, scroll) = match self.view {
                View::Runbook => match &mut self.run {
                    Some(r) => (r.output.len(), &mut r.scroll),
                    None => (0, &mut self.events_scroll),
                },
                View::Audit => (self.audit.len(), &mut self.audit_scroll),
                _ => (self.events.len(), &mut self.events_scroll),
            };
            let max = len.saturating_sub(1);
            // The run's output grows at the bottom: up goes back in time, as in a log.
            let intent = match (self.view, intent) {
                (View::Runbook, Intent::Up) => Intent::Down,
                (View::Runbook, Intent::Down) => Intent::Up,
                (View::Runbook, Intent::PageUp) => Intent::PageDown,
                (View::Runbook, Intent::PageDown) => Intent::PageUp,
                (View::Runbook, Intent::Top) => Intent::Bottom,
                (View::Runbook, Intent::Bottom) => Intent::Top,
                (_, other) => other,
            };
            match intent {
                Intent::Up => *scroll = scroll.saturating_sub(1),
                Intent::Down => *scroll = (*scroll + 1).min(max),
                Intent::PageUp => *scroll = scroll.saturating_sub(page),
                Intent::PageDown => *scroll = (*scroll + page).min(max),
                Intent::Top => *scroll = 0,
                Intent::Bottom => *scroll = max,
                Intent::Back => self.view = View::Containers,
                Intent::Events if self.view == View::Events => self.view = View::Containers,
                Intent::Events => self.view = View::Events,
                Intent::Audit if self.view == View::Audit => self.view = View::Containers,
                Intent::Audit => return vec![Command::LoadAudit],
                Intent::RunView if self.view == View::Runbook => self.view = View::Containers,
                Intent::RunView if self.run.is_some() => self.view = View::Runbook,
                Intent::Quit => self.quit(),
                Intent::Help => self.overlay = Overlay::Help { scroll: 0 },
                Intent::Palette => self.open_palette(""),
                Intent::ServerPicker => return self.open_picker(),
                _ => {}
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
                self.events_scroll = 0;
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
            Intent::Logs => {
                if let Some(c) = self.selected_container() {
                    let (title, ids) = (c.display_name(), vec![c.id.clone()]);
                    return self.open_logs(title, ids);
                }
                if let Some(Row::Group { key, .. }) = self.list.rows.get(self.list.selected) {
                    return self.logs_for_group(key.clone());
                }
            }
            Intent::Migrate => {
                return self.runbook_for_selection(|name, project| {
                    Request::Migrate(MigrateRequest {
                        name,
                        project,
                        ..Default::default()
                    })
                });
            }
            Intent::Rollback => return self.rollback_selection(),
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
            | Intent::LogCopy
            | Intent::LogSince => {}
            Intent::Interval => return self.set_stats_interval(""),
            Intent::Prune => return self.request_runbook(Request::Prune(PruneRequest::default())),
            Intent::Audit => return vec![Command::LoadAudit],
            // Handled by `on_stats_intent` where they apply.
            Intent::Host | Intent::Stats => {}
            Intent::RunView => {
                if self.run.is_some() {
                    self.view = View::Runbook;
                } else {
                    self.notify(Level::Info, "no runbook has run in this session");
                }
            }
            Intent::Shell => {
                if let Some(target) = &self.target
                    && let Err(e) = crate::runbook::Guard::for_target(target).allows(true)
                {
                    self.notify(
                        Level::Error,
                        format!("{e}: a shell could change anything, so e is refused"),
                    );
                    return vec![];
                }
                if let Some(c) = self.selected_container() {
                    if c.state != State::Running {
                        let msg = format!(
                            "{} is {}: a shell needs a running container",
                            c.display_name(),
                            c.state.as_str()
                        );
                        self.notify(Level::Warn, msg);
                    } else {
                        return vec![Command::Shell {
                            id: c.id.clone(),
                            name: c.display_name(),
                        }];
                    }
                }
            }
            Intent::ServiceLogs => {
                let target = self
                    .selected_container()
                    .map(|c| (c.project.clone(), c.service.clone()));
                match target {
                    Some((Some(p), Some(s))) => {
                        let ids = self.ids_where(|c| {
                            c.project.as_deref() == Some(&p) && c.service.as_deref() == Some(&s)
                        });
                        return self.open_logs(format!("{p}/{s}"), ids);
                    }
                    Some(_) => return self.on_intent(Intent::Logs),
                    None => {
                        if let Some(Row::Group { key, .. }) = self.list.rows.get(self.list.selected)
                        {
                            return self.logs_for_group(key.clone());
                        }
                    }
                }
            }
            // The list's own keys; palette commands (`run_command` asks for their argument
            // first) and container actions (above) mean nothing to it.
            other => return self.with_list(|list, ctx| list.handle(other, ctx)),
        }
        vec![]
    }

    fn logs_for_group(&mut self, key: String) -> Vec<Command> {
        if key == STANDALONE {
            return vec![];
        }
        let ids = self.ids_where(|c| c.project.as_deref() == Some(&key));
        self.open_logs(key, ids)
    }

    fn ids_where(&self, f: impl Fn(&Container) -> bool) -> Vec<String> {
        self.containers
            .values()
            .filter(|c| f(c))
            .map(|c| c.id.clone())
            .collect()
    }

    /// Asks before running `then`; typed confirmation when `typed` is set.
    pub fn ask(
        &mut self,
        title: impl Into<String>,
        body: Vec<String>,
        typed: Option<String>,
        then: Vec<Command>,
    ) {
        self.overlay = Overlay::Confirm(Confirm {
            title: title.into(),
            summary: Vec::new(),
            body,
            scroll: 0,
            typed,
            input: new_input(),
            then,
        });
    }

    fn on_prompt_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Overlay::Prompt(p) = &mut self.overlay else {
            return vec![];
        };
        match p.handle(key) {
            Some(answer) => {
                // The typed secret leaves the app state with the answer.
                self.overlay = Overlay::None;
                vec![answer]
            }
            None => vec![],
        }
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

    /// What a confirmation lets through; a plan about to run opens the run view.
    fn confirmed(&mut self, then: Vec<Command>) -> Vec<Command> {
        for c in &then {
            if let Command::RunPlan(plan) = c {
                self.start_run(plan.0.clone());
            }
        }
        then
    }

    fn on_confirm_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Overlay::Confirm(c) = &mut self.overlay else {
            return vec![];
        };
        match c.handle(key) {
            ConfirmStep::Stay => vec![],
            ConfirmStep::Warn(msg) => {
                self.notify(Level::Warn, msg);
                vec![]
            }
            ConfirmStep::Cancelled => {
                self.overlay = Overlay::None;
                self.notify(Level::Info, "cancelled: nothing was changed");
                vec![]
            }
            ConfirmStep::Confirmed(then) => {
                self.overlay = Overlay::None;
                self.confirmed(then)
            }
        }
    }

    fn on_filter_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Overlay::Filter(input) = &mut self.overlay else {
            return vec![];
        };
        match key.code {
            KeyCode::Esc => {
                self.overlay = Overlay::None;
                self.list.filter = None;
                self.rebuild_rows();
            }
            KeyCode::Enter => {
                self.overlay = Overlay::None;
            }
            _ => {
                if is_ctrl_c(&key) {
                    self.should_quit = true;
                    return vec![];
                }
                input.input(key);
                self.apply_live_filter();
            }
        }
        vec![]
    }

    fn apply_live_filter(&mut self) {
        let Overlay::Filter(input) = &self.overlay else {
            return;
        };
        let text = input.lines().join("");
        match Filter::parse(&text) {
            Ok(f) => {
                self.list.filter = f;
                if matches!(&self.status, Some(s) if s.text.starts_with("bad regex")) {
                    self.status = None;
                }
                self.rebuild_rows();
            }
            // Keep the last good filter while a regex is half typed.
            Err(e) => self.notify(Level::Warn, e),
        }
    }

    fn find_container(&self, name: &str) -> Option<String> {
        let all: Vec<&Container> = self.containers.values().collect();
        crate::logs::container_named(&all, name).map(|c| c.id.clone())
    }

    /// A container, a `project/service`, a service, or a project — in that order (the same
    /// resolution as `berth logs NAME`).
    pub fn logs_by_name(&mut self, name: &str) -> Vec<Command> {
        let all: Vec<&Container> = self.containers.values().collect();
        // Named by its container name or id: titled as a container.
        if let Some(one) = crate::logs::container_named(&all, name) {
            let (title, id) = (one.display_name(), one.id.clone());
            return self.open_logs(title, vec![id]);
        }
        match crate::logs::containers_named(&all, name) {
            Ok(chosen) => {
                let ids = chosen.iter().map(|c| c.id.clone()).collect();
                self.open_logs(name.to_string(), ids)
            }
            Err(e) => {
                self.notify(Level::Error, e);
                vec![]
            }
        }
    }

    /// Resolving a name reads ssh config and docker contexts: the runner does it and answers
    /// with `Action::ServerResolved`.
    pub fn switch_server(&mut self, name: &str) -> Vec<Command> {
        vec![Command::ResolveServer(name.to_string())]
    }

    /// Opens the picker on the servers known so far and asks for a fresh list.
    pub fn open_picker(&mut self) -> Vec<Command> {
        let entries = self.servers.clone();
        let current = self.target.as_ref().map(|t| t.name.clone());
        let selected = entries
            .iter()
            .position(|e| Some(&e.name) == current.as_ref())
            .unwrap_or(0);
        self.overlay = Overlay::Picker(Picker { entries, selected });
        vec![Command::LoadServers]
    }

    fn on_picker_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let intent = self.keymap.lookup(Scope::Global, &key);
        let has_server = self.target.is_some();
        let Overlay::Picker(p) = &mut self.overlay else {
            return vec![];
        };
        match p.handle(&key, intent, has_server) {
            PickerStep::Stay => vec![],
            PickerStep::Close => {
                self.overlay = Overlay::None;
                vec![]
            }
            PickerStep::Quit => {
                self.should_quit = true;
                vec![]
            }
            PickerStep::Connect(name) => {
                self.overlay = Overlay::None;
                self.switch_server(&name)
            }
        }
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

    /// Runs `f` on the list with what it may read, then shows what it said and drops a footer
    /// message about a container that is no longer selected.
    fn with_list<R>(&mut self, f: impl FnOnce(&mut ListView, &ListCtx) -> R) -> R {
        let ctx = ListCtx {
            containers: &self.containers,
            now: self.now,
            theme: &self.theme,
            keymap: &self.keymap,
            screen: Screen::of(self),
        };
        let out = f(&mut self.list, &ctx);
        for after in std::mem::take(&mut self.list.reselected) {
            if self
                .status
                .as_ref()
                .is_some_and(|s| s.about.is_some() && s.about != after)
            {
                self.status = None;
            }
        }
        for n in std::mem::take(&mut self.list.notices) {
            self.notify(n.level, n.text);
            if let Some(s) = &mut self.status {
                s.about = n.about;
            }
        }
        out
    }

    fn select_container(&mut self, id: &str) {
        self.with_list(|list, ctx| list.select_container(id, ctx));
    }

    /// Keeps the selection on screen.
    fn clamp_selection(&mut self) {
        self.with_list(|list, ctx| list.clamp(ctx));
    }

    /// Recomputes the rows from the containers, keeping the selection on the same row when it still exists.
    pub fn rebuild_rows(&mut self) {
        self.with_list(|list, ctx| list.rebuild(ctx));
    }

    /// Container ids whose rows are on screen, plus the selection: what stats are collected for.
    pub fn visible_ids(&self) -> Vec<String> {
        let ctx = ListCtx {
            containers: &self.containers,
            now: self.now,
            theme: &self.theme,
            keymap: &self.keymap,
            screen: Screen::of(self),
        };
        self.list.visible_ids(&ctx)
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
mod tests {
    use super::*;
    use crate::action::RunbookMsg;
    use crate::fixtures;
    use crossterm::event::{KeyEventState, MouseButton, MouseEvent, MouseEventKind};

    fn key(c: char) -> Action {
        Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
    }
    fn code(c: KeyCode) -> Action {
        Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    pub fn app_with(list: Vec<Container>) -> App {
        let mut app = App::new(
            Config::default(),
            Theme::default(),
            Keymap::default(),
            fixtures::now(),
        );
        app.update(Action::Resize(120, 30));
        let _ = app.connect(Target::local());
        app.update(Action::Engine {
            session: app.session,
            event: EngineEvent::Connected {
                transport: "unix socket".into(),
                version: EngineVersion::default(),
            },
        });
        app.update(Action::Engine {
            session: app.session,
            event: EngineEvent::Snapshot(list),
        });
        app
    }

    fn names(app: &App) -> Vec<String> {
        app.list
            .rows
            .iter()
            .map(|r| match r {
                Row::Group { key, .. } => format!("[{key}]"),
                Row::Container { id } => app.containers[id].name.clone(),
            })
            .collect()
    }

    #[test]
    fn groups_by_project_with_standalone_last() {
        let app = app_with(fixtures::shop());
        assert_eq!(
            names(&app),
            vec![
                "[shop]",
                "shop-db-1",
                "shop-migrate-1",
                "shop-web-1",
                "shop-web-2",
                "shop-worker-1",
                "[standalone]",
                "nightly-backup",
                "reporting"
            ]
        );
        // The selection lands on a container, not on the first header.
        assert_eq!(app.selected_container().unwrap().name, "shop-db-1");
    }

    #[test]
    fn toggle_all_hides_stopped() {
        let mut app = app_with(fixtures::shop());
        app.update(key('a'));
        assert!(!names(&app).contains(&"shop-migrate-1".to_string()));
        assert!(!names(&app).contains(&"[standalone]".to_string()));
        app.update(key('a'));
        assert!(names(&app).contains(&"reporting".to_string()));
    }

    #[test]
    fn sort_by_state_puts_trouble_first() {
        let mut app = app_with(fixtures::shop());
        app.update(key('s'));
        assert_eq!(app.list.sort, SortKey::State);
        let n = names(&app);
        assert_eq!(&n[1..3], &["shop-web-2", "shop-migrate-1"]);
        app.update(key('s'));
        assert_eq!(app.list.sort, SortKey::Uptime);
        // Most recently started first: web-2 started 2 minutes ago.
        assert_eq!(names(&app)[1], "shop-web-2");
    }

    #[test]
    fn filter_substring_and_regex() {
        let mut app = app_with(fixtures::shop());
        app.update(key('/'));
        for c in "postgres".chars() {
            app.update(key(c));
        }
        assert_eq!(names(&app), vec!["[shop]", "shop-db-1"]);
        app.update(code(KeyCode::Enter));
        assert!(matches!(app.overlay, Overlay::None));
        assert!(app.list.filter.is_some());
        app.update(code(KeyCode::Esc));
        assert!(
            app.list.filter.is_none(),
            "Esc in the list clears the filter"
        );
        app.update(key('/'));
        for c in "~^shop-web-[0-9]$".chars() {
            app.update(key(c));
        }
        assert_eq!(names(&app), vec!["[shop]", "shop-web-1", "shop-web-2"]);
        // A half-typed regex keeps the last good filter and warns.
        app.update(key('('));
        assert_eq!(names(&app), vec!["[shop]", "shop-web-1", "shop-web-2"]);
        assert!(app.status.as_ref().unwrap().text.starts_with("bad regex"));
        app.update(code(KeyCode::Esc));
        assert!(app.list.filter.is_none());
        assert!(matches!(app.overlay, Overlay::None));
    }

    #[test]
    fn collapse_and_expand_project() {
        let mut app = app_with(fixtures::shop());
        app.update(code(KeyCode::Char(' ')));
        assert_eq!(
            names(&app),
            vec!["[shop]", "[standalone]", "nightly-backup", "reporting"]
        );
        assert_eq!(app.list.selected, 0);
        app.update(code(KeyCode::Enter));
        assert_eq!(names(&app).len(), 9, "Enter on a folded group unfolds it");
    }

    #[test]
    fn navigation_is_bounded() {
        let mut app = app_with(fixtures::shop());
        for _ in 0..50 {
            app.update(key('j'));
        }
        assert_eq!(app.list.selected, app.list.rows.len() - 1);
        app.update(key('g'));
        assert_eq!(app.list.selected, 0);
        app.update(code(KeyCode::End));
        assert_eq!(app.selected_container().unwrap().name, "reporting");
        app.update(code(KeyCode::PageUp));
        assert_eq!(app.list.selected, 0);
    }

    #[test]
    fn selection_follows_container_across_updates() {
        let mut app = app_with(fixtures::shop());
        app.update(key('j'));
        app.update(key('j'));
        let chosen = app.selected_container().unwrap().id.clone();
        let mut newcomer = fixtures::replica("shop", "api", 1);
        newcomer.name = "shop-api-1".into();
        let session = app.session;
        app.update(Action::Engine {
            session,
            event: EngineEvent::Changed(Box::new(newcomer)),
        });
        assert_eq!(app.selected_container().unwrap().id, chosen);
        assert!(names(&app).contains(&"shop-api-1".to_string()));
        app.update(Action::Engine {
            session,
            event: EngineEvent::Gone(chosen.clone()),
        });
        assert!(app.selected_container().is_some_and(|c| c.id != chosen));
    }

    #[test]
    fn stale_news_from_an_old_session_is_ignored() {
        let mut app = app_with(fixtures::shop());
        let old = app.session;
        let _ = app.connect(Target::local());
        app.update(Action::Engine {
            session: old,
            event: EngineEvent::Snapshot(fixtures::shop()),
        });
        assert!(app.containers.is_empty());
    }

    #[test]
    fn details_and_reveal_are_per_container() {
        let mut app = app_with(fixtures::shop());
        assert_eq!(app.selected_container().unwrap().name, "shop-db-1");
        app.update(code(KeyCode::Enter));
        assert!(app.list.details_open);
        app.update(code(KeyCode::Enter));
        assert_eq!(app.list.focus, Focus::Details);
        app.update(key('x'));
        let db = app.selected_container().unwrap().id.clone();
        assert_eq!(app.list.revealed.as_deref(), Some(db.as_str()));
        app.update(code(KeyCode::Esc));
        assert!(!app.list.details_open);
        app.update(key('j'));
        assert_ne!(app.selected_container().unwrap().id, db);
        // `x` on a container with nothing masked reveals nothing (the footer says so): no container
        // other than the chosen one is ever revealed.
        app.update(key('x'));
        assert_eq!(app.list.revealed.as_deref(), Some(db.as_str()));
    }

    #[test]
    fn palette_completes_and_runs() {
        let mut app = app_with(fixtures::shop());
        app.update(key(':'));
        app.update(key('t'));
        let Overlay::Palette(p) = &app.overlay else {
            panic!("palette open")
        };
        // A command that takes an argument completes with its space.
        assert_eq!(p.candidates, vec!["theme "]);
        app.update(code(KeyCode::Tab));
        app.update(key(' '));
        app.update(key('l'));
        let Overlay::Palette(p) = &app.overlay else {
            panic!("palette open")
        };
        assert_eq!(p.candidates, vec!["theme light"]);
        app.update(code(KeyCode::Tab));
        app.update(code(KeyCode::Enter));
        assert_eq!(app.theme.name, "light");
        assert_eq!(app.run_palette("theme nope"), vec![]);
        assert_eq!(app.status.as_ref().unwrap().level, Level::Error);
        app.run_palette("inspect shop-web-2");
        assert_eq!(app.selected_container().unwrap().name, "shop-web-2");
        assert!(app.list.details_open);
        app.run_palette("frobnicate");
        assert!(
            app.status
                .as_ref()
                .unwrap()
                .text
                .contains("unknown command ':frobnicate'")
        );
        app.run_palette("q");
        assert!(app.should_quit);
    }

    #[test]
    fn logs_by_name_resolves_container_service_project() {
        let mut app = app_with(fixtures::shop());
        let cmds = app.run_palette("logs shop-db-1");
        assert!(matches!(&cmds[..], [Command::OpenLogs { ids, .. }] if ids.len() == 1));
        let cmds = app.run_palette("logs web");
        assert!(matches!(&cmds[..], [Command::OpenLogs { ids, .. }] if ids.len() == 2));
        let cmds = app.run_palette("logs shop");
        assert!(matches!(&cmds[..], [Command::OpenLogs { ids, .. }] if ids.len() == 5));
        assert!(app.run_palette("logs nothing").is_empty());
        assert!(
            app.status
                .as_ref()
                .unwrap()
                .text
                .contains("no container, service or project named 'nothing'")
        );
    }

    #[test]
    fn mouse_click_selects_and_wheel_scrolls() {
        let mut app = app_with(fixtures::shop());
        let body = app.areas().list_body;
        let click = |row: u16| {
            Action::Mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column: body.x + 3,
                row: body.y + row,
                modifiers: KeyModifiers::NONE,
            })
        };
        app.update(click(3));
        assert_eq!(app.list.selected, 3);
        app.update(click(200));
        assert_eq!(
            app.list.selected, 3,
            "a click below the rows changes nothing"
        );
        app.update(Action::Mouse(MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: body.x,
            row: body.y,
            modifiers: KeyModifiers::NONE,
        }));
        assert_eq!(app.list.selected, 6);
    }

    #[test]
    fn help_opens_and_any_key_closes() {
        let mut app = app_with(fixtures::shop());
        app.update(key('?'));
        assert!(matches!(app.overlay, Overlay::Help { .. }));
        app.update(key('j'));
        assert!(matches!(app.overlay, Overlay::Help { scroll: 1 }));
        app.update(key('z'));
        assert!(matches!(app.overlay, Overlay::None));
        // Key releases (kitty protocol) are ignored.
        let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        release.state = KeyEventState::NONE;
        app.update(Action::Key(release));
        assert!(!app.should_quit);
        app.update(key('q'));
        assert!(app.should_quit);
    }

    #[test]
    fn connection_goes_stale_and_heals() {
        let mut app = app_with(fixtures::shop());
        let s = app.session;
        app.update(Action::Engine {
            session: s,
            event: EngineEvent::Stale("events stream ended".into()),
        });
        assert!(matches!(app.connection, Connection::Stale { .. }));
        assert_eq!(app.containers.len(), 7, "the last state stays on screen");
        app.update(Action::Engine {
            session: s,
            event: EngineEvent::Live,
        });
        assert!(matches!(app.connection, Connection::Connected { .. }));
    }

    #[test]
    fn typed_confirmation_needs_the_exact_name() {
        let mut app = app_with(fixtures::shop());
        app.ask(
            "Restart web",
            vec!["restart 2 containers".into()],
            Some("web".into()),
            vec![Command::Resync],
        );
        for c in "we".chars() {
            assert!(app.update(key(c)).is_empty());
        }
        assert!(
            app.update(code(KeyCode::Enter)).is_empty(),
            "a prefix does not confirm"
        );
        assert!(matches!(app.overlay, Overlay::Confirm(_)));
        assert!(app.update(key('b')).is_empty());
        assert_eq!(app.update(code(KeyCode::Enter)), vec![Command::Resync]);
        assert!(matches!(app.overlay, Overlay::None));

        app.ask("Stop web", vec![], None, vec![Command::Resync]);
        assert!(app.update(key('x')).is_empty(), "other keys do nothing");
        assert!(app.update(code(KeyCode::Esc)).is_empty());
        assert!(
            app.status
                .as_ref()
                .unwrap()
                .text
                .contains("nothing was changed")
        );
        app.ask("Stop web", vec![], None, vec![Command::Resync]);
        assert_eq!(app.update(key('y')), vec![Command::Resync]);
    }

    fn plan(title: &str, subject: &str, steps: usize) -> SharedPlan {
        SharedPlan(std::sync::Arc::new(fixtures::plan(title, subject, steps)))
    }

    #[test]
    fn runbook_keys_plan_confirm_then_run() {
        let mut app = app_with(fixtures::shop());
        app.run_palette("inspect shop-web-2");
        app.update(code(KeyCode::Esc));
        let cmds = app.update(key('R'));
        assert!(
            matches!(&cmds[..], [Command::PlanRunbook(Request::Action { kind: ActionKind::Restart, name, .. })] if name == "shop-web-2"),
            "{cmds:?}"
        );
        // The plan comes back: a yes/no question on a non-production server.
        let p = plan("restart shop-web-2", "shop-web-2", 2);
        assert!(
            app.update(Action::Runbook(RunbookMsg::Planned(Ok(p.clone()))))
                .is_empty()
        );
        assert!(
            matches!(&app.overlay, Overlay::Confirm(c) if c.typed.is_none() && c.body[0].starts_with("1. "))
        );
        let cmds = app.update(key('y'));
        assert_eq!(cmds, vec![Command::RunPlan(p)]);
        assert_eq!(app.view, View::Runbook);
        app.update(Action::Runbook(RunbookMsg::Event(
            crate::runbook::RunEvent::StepStarted { step: 0 },
        )));
        assert!(app.run.as_ref().unwrap().steps[0].running);
        // While it runs, q asks twice.
        app.update(key('q'));
        assert!(!app.should_quit);
        assert!(app.update(key('R')).is_empty() || app.status.is_some());
        app.update(key('q'));
        assert!(app.should_quit);
    }

    #[test]
    fn production_asks_for_the_name_and_read_only_refuses() {
        let mut app = app_with(fixtures::shop());
        let mut t = Target::local();
        t.environment = Some("production".into());
        app.target = Some(t.clone());
        let p = plan("rollback web", "web", 3);
        app.update(Action::Runbook(RunbookMsg::Planned(Ok(p))));
        assert!(matches!(&app.overlay, Overlay::Confirm(c) if c.typed.as_deref() == Some("web")));
        app.update(code(KeyCode::Esc));

        t.read_only = true;
        app.target = Some(t);
        assert!(app.update(key('R')).is_empty());
        assert!(
            app.status.as_ref().unwrap().text.contains("read-only"),
            "{:?}",
            app.status
        );
        assert!(app.update(key('P')).is_empty());
        // A shell could change anything: refused with the reason, like every mutating key.
        app.status = None;
        assert!(app.update(key('e')).is_empty(), "no shell on read-only");
        let said = &app.status.as_ref().unwrap().text;
        assert!(
            said.contains("read-only") && said.contains("shell"),
            "{said}"
        );
        // Looking is not changing: the audit view still opens.
        assert_eq!(app.update(key('A')), vec![Command::LoadAudit]);
    }

    #[test]
    fn a_failed_plan_is_an_error_message() {
        let mut app = app_with(fixtures::shop());
        app.update(Action::Runbook(RunbookMsg::Planned(Err(
            "no earlier image of shop/web to roll back to".into(),
        ))));
        assert_eq!(app.status.as_ref().unwrap().level, Level::Error);
        assert!(matches!(app.overlay, Overlay::None));
    }

    #[test]
    fn palette_runbook_commands() {
        let mut app = app_with(fixtures::shop());
        assert_eq!(
            app.run_palette("rollback shop/web v1"),
            vec![Command::PlanRunbook(Request::Rollback(RollbackRequest {
                name: "web".into(),
                project: Some("shop".into()),
                to: Some("v1".into()),
                ..Default::default()
            }))]
        );
        assert_eq!(
            app.run_palette("migrate-status shop-db-1"),
            vec![Command::PlanRunbook(Request::Migrate(MigrateRequest {
                name: "shop-db-1".into(),
                status: true,
                ..Default::default()
            }))]
        );
        assert!(app.run_palette("restart").is_empty());
        assert!(
            app.status
                .as_ref()
                .unwrap()
                .text
                .starts_with("usage: :restart NAME")
        );
        assert_eq!(
            app.palette_candidates("rollback shop/w"),
            vec!["rollback shop/web", "rollback shop/worker"]
        );
    }
}
