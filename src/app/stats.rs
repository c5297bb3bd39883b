//! The app's side of live stats and the host view: what to collect (the rows on screen and the
//! selection, running only), the stats pane toggle, the interval, host numbers and `system df`.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{App, Command, Connection, View};
use crate::action::Level;
use crate::format::interval_label;
use crate::keymap::Intent;
use crate::stats::df::DiskUsage;
use crate::stats::host::HostReport;
use crate::stats::store::capacity_for;
use crate::stats::{StatsBatch, StatsStore};

/// Interval suggestions for the palette.
pub(super) const INTERVALS: &[&str] = &["1s", "2s", "5s", "10s", "30s"];

#[derive(Debug, Clone, PartialEq)]
pub enum DfState {
    NotLoaded,
    Loading,
    Loaded { usage: DiskUsage, at: DateTime<Utc> },
    Failed(String),
}

/// Host view and stats pane state.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub pane_open: bool,
    pub interval: Duration,
    /// What the collector was last told to read.
    pub watched: Vec<String>,
    pub host: Option<HostReport>,
    pub host_error: Option<String>,
    /// Host CPU% and memory% per reading, for the host view's sparklines (bounded).
    pub host_cpu: VecDeque<u64>,
    pub host_mem: VecDeque<u64>,
    pub df: DfState,
    /// The running tasks on other swarm nodes that are configured servers, by server: what
    /// their collectors were last told to read.
    pub node_watched: BTreeMap<String, Vec<String>>,
    /// How reading each of those servers goes, and what was read there.
    pub nodes: BTreeMap<String, NodeStats>,
}

/// A swarm node berth reads through its own server entry: its tasks' numbers are kept apart
/// from the connected engine's, since they come from another collector with its own clock.
#[derive(Debug, Clone)]
pub struct NodeStats {
    pub reach: NodeReach,
    pub store: StatsStore,
    /// When a reading last brought numbers: a link that broke after the connect reads nothing,
    /// and the last numbers must not pass for current.
    pub read_at: Option<DateTime<Utc>>,
    /// The tasks' containers' health there, by container id, from the latest listing.
    pub health: std::collections::HashMap<String, crate::engine::model::Health>,
}

impl NodeStats {
    /// No numbers for three readings (at least 10 s): what the row shows is old.
    pub fn is_stale(&self, now: DateTime<Utc>, interval: Duration) -> bool {
        let bound = (interval * 3).max(Duration::from_secs(10));
        self.read_at
            .is_some_and(|at| (now - at).to_std().unwrap_or_default() > bound)
    }
}

/// Where reading a node's tasks stands.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeReach {
    Connecting,
    Reading,
    /// Why nothing can be read there (one line, shown in the task's row).
    Failed(String),
}

/// What the stats pane and the host view may read while they handle a key.
pub struct MonitorCtx {
    pub view: View,
    /// Connected and live: `system df` can be asked for.
    pub connected: bool,
}

/// What a key did to the stats pane or the host view, for `App` to finish: the view to show, a
/// footer line, whether the list changed height (the pane opened or closed), commands to run.
#[derive(Debug, Default, PartialEq)]
pub struct MonitorStep {
    pub show: Option<View>,
    pub say: Option<(Level, String)>,
    pub resized: bool,
    pub commands: Vec<Command>,
}

impl Monitor {
    pub fn new(interval: Duration) -> Monitor {
        Monitor {
            pane_open: false,
            interval,
            watched: Vec::new(),
            host: None,
            host_error: None,
            host_cpu: VecDeque::new(),
            host_mem: VecDeque::new(),
            df: DfState::NotLoaded,
            node_watched: BTreeMap::new(),
            nodes: BTreeMap::new(),
        }
    }

    /// Forgets the old server's numbers.
    pub fn reset(&mut self) {
        self.host = None;
        self.host_error = None;
        self.host_cpu.clear();
        self.host_mem.clear();
        self.df = DfState::NotLoaded;
        self.node_watched.clear();
        self.nodes.clear();
    }

    /// The stats pane's and the host view's keys: the host view opened and closed, `system df`
    /// read again there, the pane toggled over the list. `None`: not a key of theirs here.
    pub fn handle(&mut self, intent: Intent, ctx: &MonitorCtx) -> Option<MonitorStep> {
        match intent {
            Intent::Host if ctx.view == View::Host => Some(MonitorStep {
                show: Some(View::Containers),
                ..Default::default()
            }),
            Intent::Host => Some(self.open_host(ctx)),
            Intent::Refresh if ctx.view == View::Host => Some(self.load_disk_usage(ctx)),
            Intent::Stats if ctx.view == View::Containers => {
                self.pane_open = !self.pane_open;
                Some(MonitorStep {
                    resized: true,
                    ..Default::default()
                })
            }
            _ => None,
        }
    }

    /// The host view, with `system df` read when it is not yet (or failed).
    pub fn open_host(&mut self, ctx: &MonitorCtx) -> MonitorStep {
        let mut step = if matches!(self.df, DfState::NotLoaded | DfState::Failed(_)) {
            self.load_disk_usage(ctx)
        } else {
            MonitorStep::default()
        };
        step.show = Some(View::Host);
        step
    }

    fn load_disk_usage(&mut self, ctx: &MonitorCtx) -> MonitorStep {
        if !ctx.connected {
            return MonitorStep {
                say: Some((Level::Warn, "not connected".into())),
                ..Default::default()
            };
        }
        if self.df == DfState::Loading {
            return MonitorStep::default();
        }
        self.df = DfState::Loading;
        MonitorStep {
            commands: vec![Command::LoadDiskUsage],
            ..Default::default()
        }
    }
}

impl App {
    /// The running containers whose rows are on screen, plus the selection. A full-screen view
    /// over the list (events, host, a run) keeps the list's set: the charts stay continuous and
    /// the set is as small as one screen of rows.
    pub fn stats_wanted(&self) -> Vec<String> {
        let connected = matches!(
            self.connection,
            Connection::Connected { .. } | Connection::Stale { .. }
        );
        if !self.config.stats.enabled || !connected {
            return vec![];
        }
        let mut ids: Vec<String> = self
            .visible_ids()
            .into_iter()
            .filter(|id| self.containers.get(id).is_some_and(|c| c.state.is_up()))
            .collect();
        // The swarm view shows the running tasks on this engine's node with their numbers.
        if self.view == View::Swarm {
            for id in self.swarm_local_containers() {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    fn swarm_local_containers(&self) -> Vec<String> {
        self.swarm
            .snapshot
            .as_ref()
            .map(|s| s.local_running_containers())
            .unwrap_or_default()
    }

    /// A command for the collector when what it should read changed.
    pub(super) fn watch_stats_if_changed(&mut self) -> Option<Command> {
        let wanted = self.stats_wanted();
        if wanted == self.monitor.watched {
            return None;
        }
        self.monitor.watched = wanted.clone();
        Some(Command::WatchStats(wanted))
    }

    /// The running tasks on other swarm nodes to read there, by the server each node is: only
    /// while the swarm view shows them.
    pub fn node_stats_wanted(&self) -> BTreeMap<String, Vec<String>> {
        let connected = matches!(
            self.connection,
            Connection::Connected { .. } | Connection::Stale { .. }
        );
        if self.view != View::Swarm || !self.config.stats.enabled || !connected {
            return BTreeMap::new();
        }
        match (&self.swarm.snapshot, &self.target) {
            (Some(snapshot), Some(target)) => {
                crate::swarm::reach::remote_running_containers(snapshot, &self.config, &target.name)
            }
            _ => BTreeMap::new(),
        }
    }

    /// A command for the node collectors when what they should read changed. A server no longer
    /// read forgets its numbers; a new one starts as being reached.
    pub(super) fn watch_node_stats_if_changed(&mut self) -> Option<Command> {
        let wanted = self.node_stats_wanted();
        if wanted == self.monitor.node_watched {
            return None;
        }
        let interval = self.monitor.interval;
        let nodes = &mut self.monitor.nodes;
        nodes.retain(|server, _| wanted.contains_key(server));
        for (server, ids) in &wanted {
            let node = nodes.entry(server.clone()).or_insert_with(|| NodeStats {
                reach: NodeReach::Connecting,
                store: StatsStore::new(interval),
                read_at: None,
                health: Default::default(),
            });
            node.store.retain(|id, _| ids.contains(id));
        }
        self.monitor.node_watched = wanted.clone();
        Some(Command::WatchNodeStats(wanted))
    }

    /// A reading of another node's tasks, or why there is none.
    pub(super) fn on_node_stats(
        &mut self,
        server: String,
        reading: Result<StatsBatch, String>,
    ) -> Vec<Command> {
        let Some(node) = self.monitor.nodes.get_mut(&server) else {
            // Asked for before the swarm view closed: nothing shows it now.
            return vec![];
        };
        match reading {
            Ok(batch) => {
                if !batch.samples.is_empty() {
                    node.read_at = Some(self.now);
                }
                node.store.ingest(&batch);
                node.reach = NodeReach::Reading;
            }
            Err(why) => node.reach = NodeReach::Failed(why),
        }
        vec![]
    }

    /// The health of the tasks' containers on another node, as its server listed them.
    pub(super) fn on_node_health(
        &mut self,
        server: String,
        health: Vec<(String, crate::engine::model::Health)>,
    ) -> Vec<Command> {
        if let Some(node) = self.monitor.nodes.get_mut(&server) {
            node.health = health.into_iter().collect();
        }
        vec![]
    }

    /// A task's latest numbers read on its node's server, and how reading there goes.
    pub fn node_reading(&self, container_id: &str) -> Option<(&str, &NodeStats)> {
        let server = crate::swarm::reach::server_of_task(&self.monitor.node_watched, container_id)?;
        Some((server, self.monitor.nodes.get(server)?))
    }

    pub(super) fn on_stats(&mut self, batch: StatsBatch) -> Vec<Command> {
        self.stats.ingest(&batch);
        let containers = &self.containers;
        let tasks = self.swarm_local_containers();
        self.stats
            .retain(|id, _| containers.contains_key(id) || tasks.contains(id));
        vec![]
    }

    pub(super) fn on_host(&mut self, report: Result<HostReport, String>) -> Vec<Command> {
        match report {
            Ok(r) => {
                let keep = capacity_for(
                    self.monitor
                        .interval
                        .max(crate::stats::host::MIN_HOST_INTERVAL),
                );
                let push = |ring: &mut VecDeque<u64>, v: Option<f64>| {
                    if let Some(v) = v {
                        if ring.len() >= keep {
                            ring.pop_front();
                        }
                        ring.push_back(v.round().clamp(0.0, 100.0) as u64);
                    }
                };
                push(&mut self.monitor.host_cpu, r.cpu_percent);
                push(&mut self.monitor.host_mem, r.health.mem_percent());
                self.monitor.host = Some(r);
                self.monitor.host_error = None;
            }
            Err(e) => self.monitor.host_error = Some(e),
        }
        vec![]
    }

    pub(super) fn on_disk_usage(&mut self, usage: Result<DiskUsage, String>) -> Vec<Command> {
        self.monitor.df = match usage {
            Ok(usage) => DfState::Loaded {
                usage,
                at: self.now,
            },
            Err(e) => DfState::Failed(e),
        };
        vec![]
    }

    /// The stats pane's and the host view's keys (`Monitor::handle`), finished here: the view
    /// shown, the footer line, the list's selection kept on screen. `None` leaves the intent to
    /// the usual handling.
    pub(super) fn on_stats_intent(&mut self, intent: Intent) -> Option<Vec<Command>> {
        let ctx = self.monitor_ctx();
        let step = self.monitor.handle(intent, &ctx)?;
        Some(self.finish_monitor_step(step))
    }

    /// Shows the host view (from the palette or the log view too).
    pub(super) fn open_host_view(&mut self) -> Vec<Command> {
        let ctx = self.monitor_ctx();
        let step = self.monitor.open_host(&ctx);
        self.finish_monitor_step(step)
    }

    fn monitor_ctx(&self) -> MonitorCtx {
        MonitorCtx {
            view: self.view,
            connected: matches!(self.connection, Connection::Connected { .. }),
        }
    }

    fn finish_monitor_step(&mut self, step: MonitorStep) -> Vec<Command> {
        if let Some(view) = step.show {
            self.view = view;
        }
        if let Some((level, text)) = step.say {
            self.notify(level, text);
        }
        if step.resized {
            self.clamp_selection();
        }
        step.commands
    }

    /// `:interval 5s` sets how often stats are read; bare, it says the current pace.
    pub(super) fn set_stats_interval(&mut self, text: &str) -> Vec<Command> {
        if text.is_empty() {
            self.notify(
                Level::Info,
                format!(
                    "stats every {}; change with :interval 5s",
                    interval_label(self.monitor.interval)
                ),
            );
            return vec![];
        }
        match crate::config::parse_interval(text) {
            Ok(d) => {
                self.monitor.interval = d;
                self.stats.set_interval(d);
                self.notify(Level::Info, format!("stats every {}", interval_label(d)));
                vec![Command::StatsInterval(d)]
            }
            Err(e) => {
                self.notify(Level::Error, e);
                vec![]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{Action, EngineEvent};
    use crate::config::Config;
    use crate::engine::EngineVersion;
    use crate::fixtures;
    use crate::keymap::Keymap;
    use crate::stats::{Method, Sample};
    use crate::target::Target;
    use crate::theme::Theme;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn connected() -> (App, Vec<Command>) {
        let mut app = App::new(
            Config::default(),
            Theme::default(),
            Keymap::default(),
            fixtures::now(),
        );
        app.update(Action::Resize(160, 30));
        let _ = app.connect(Target::local());
        let session = app.session;
        app.update(Action::Engine {
            session,
            event: EngineEvent::Connected {
                transport: "unix socket".into(),
                version: EngineVersion::default(),
            },
        });
        let commands = app.update(Action::Engine {
            session,
            event: EngineEvent::Snapshot(fixtures::shop()),
        });
        (app, commands)
    }

    fn key(app: &mut App, c: char) -> Vec<Command> {
        app.update(Action::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )))
    }

    #[test]
    fn collects_only_running_rows_on_screen_and_says_so_once() {
        let (mut app, commands) = connected();
        let Some(Command::WatchStats(ids)) = commands.last().cloned() else {
            panic!("the first list asks for stats: {commands:?}");
        };
        assert!(!ids.is_empty());
        for id in &ids {
            assert!(app.containers[id].state.is_up(), "{id} is running");
        }
        let stopped = app.containers.values().filter(|c| !c.state.is_up()).count();
        assert!(stopped > 0, "the fixture has stopped containers");
        // Nothing changed: no new command.
        assert!(
            !key(&mut app, 'j')
                .iter()
                .any(|c| matches!(c, Command::WatchStats(_)))
        );
        // The host view loads `system df` once; the list's set stays.
        assert_eq!(key(&mut app, 'H'), vec![Command::LoadDiskUsage]);
        assert_eq!(app.view, View::Host);
        assert_eq!(key(&mut app, 'H'), vec![]);
        assert_eq!(app.view, View::Containers);
        // A filter narrows the rows on screen, and so what is read.
        let first = app.containers[&ids[0]].name.clone();
        let mut cmds = app.run_palette(&format!("filter {first}"));
        cmds.extend(app.watch_stats_if_changed());
        assert_eq!(cmds, vec![Command::WatchStats(vec![ids[0].clone()])]);
        // Disconnected: nothing is read.
        let _ = app.connect(Target::local());
        assert_eq!(app.stats_wanted(), Vec::<String>::new());
    }

    #[test]
    fn samples_fill_the_store_and_gone_containers_are_forgotten() {
        let (mut app, _) = connected();
        let session = app.session;
        let id = app.containers.keys().next().unwrap().clone();
        for (i, at) in [1u64, 3].iter().enumerate() {
            let batch = StatsBatch {
                method: Method::Cgroup {
                    detail: "test".into(),
                },
                samples: vec![
                    Sample {
                        id: id.clone(),
                        at: Duration::from_secs(*at),
                        cpu_ns: Some(i as u64 * 1_000_000_000),
                        mem_used: Some(10),
                        mem_limit: Some(100),
                        ..Default::default()
                    },
                    Sample {
                        id: "gone".into(),
                        ..Default::default()
                    },
                ],
            };
            app.update(Action::Engine {
                session,
                event: EngineEvent::Stats(batch),
            });
        }
        assert_eq!(app.stats.latest(&id).unwrap().cpu, Some(50.0));
        assert!(app.stats.latest("gone").is_none());
        app.update(Action::Engine {
            session,
            event: EngineEvent::Gone(id.clone()),
        });
        assert!(app.stats.latest(&id).is_none());
    }

    #[test]
    fn interval_from_the_palette() {
        let (mut app, _) = connected();
        assert_eq!(
            app.run_palette("interval 5s"),
            vec![Command::StatsInterval(Duration::from_secs(5))]
        );
        assert_eq!(app.monitor.interval, Duration::from_secs(5));
        assert!(app.run_palette("interval 1ms").is_empty());
        assert_eq!(app.status.as_ref().unwrap().level, Level::Error);
        assert_eq!(app.monitor.interval, Duration::from_secs(5));
        assert!(
            app.palette_candidates("interval ")
                .contains(&"interval 2s".to_string())
        );
    }

    #[test]
    fn stats_pane_toggles() {
        let (mut app, _) = connected();
        key(&mut app, 'c');
        assert!(app.monitor.pane_open);
        assert!(app.areas().stats.is_some());
        key(&mut app, 'c');
        assert!(!app.monitor.pane_open);
    }

    /// The pane's and the host view's keys on their own state: the host view asks for `system df`
    /// once (not again while it loads, and says why not when disconnected), Ctrl-r there reads
    /// it again, the host key leaves it, and the pane toggles only over the list.
    #[test]
    fn the_monitor_handles_its_own_keys() {
        let mut m = Monitor::new(Duration::from_secs(2));
        let list = MonitorCtx {
            view: View::Containers,
            connected: true,
        };
        let host = MonitorCtx {
            view: View::Host,
            connected: true,
        };
        let step = m.handle(Intent::Host, &list).unwrap();
        assert_eq!(step.show, Some(View::Host));
        assert_eq!(step.commands, vec![Command::LoadDiskUsage]);
        assert_eq!(m.df, DfState::Loading);
        let again = m.handle(Intent::Refresh, &host).unwrap();
        assert!(again.commands.is_empty(), "already loading");
        assert_eq!(
            m.handle(Intent::Host, &host).unwrap().show,
            Some(View::Containers)
        );
        m.df = DfState::Failed("gone".into());
        let offline = MonitorCtx {
            view: View::Containers,
            connected: false,
        };
        let step = m.handle(Intent::Host, &offline).unwrap();
        assert_eq!(step.show, Some(View::Host));
        assert_eq!(step.say, Some((Level::Warn, "not connected".into())));
        assert!(step.commands.is_empty());

        assert!(m.handle(Intent::Stats, &list).unwrap().resized);
        assert!(m.pane_open);
        assert_eq!(
            m.handle(Intent::Stats, &host),
            None,
            "not over the host view"
        );
        assert_eq!(m.handle(Intent::Up, &list), None);
    }
}
