//! The app's side of live stats and the host view: what to collect (the rows on screen and the
//! selection, running only), the stats pane toggle, the interval, host numbers and `system df`.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{App, Command, Connection, View};
use crate::action::Level;
use crate::format::interval_label;
use crate::keymap::Intent;
use crate::stats::StatsBatch;
use crate::stats::df::DiskUsage;
use crate::stats::host::HostReport;
use crate::stats::store::capacity_for;

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
        }
    }

    /// Forgets the old server's numbers.
    pub fn reset(&mut self) {
        self.host = None;
        self.host_error = None;
        self.host_cpu.clear();
        self.host_mem.clear();
        self.df = DfState::NotLoaded;
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

    /// Keys of this module; `None` leaves the intent to the usual handling.
    pub(super) fn on_stats_intent(&mut self, intent: Intent) -> Option<Vec<Command>> {
        match intent {
            Intent::Host if self.view == View::Host => {
                self.view = View::Containers;
                Some(vec![])
            }
            Intent::Host => Some(self.open_host_view()),
            Intent::Refresh if self.view == View::Host => Some(self.load_disk_usage()),
            Intent::Stats if self.view == View::Containers => {
                self.monitor.pane_open = !self.monitor.pane_open;
                self.clamp_selection();
                Some(vec![])
            }
            _ => None,
        }
    }

    pub(super) fn open_host_view(&mut self) -> Vec<Command> {
        self.view = View::Host;
        if matches!(self.monitor.df, DfState::NotLoaded | DfState::Failed(_)) {
            return self.load_disk_usage();
        }
        vec![]
    }

    fn load_disk_usage(&mut self) -> Vec<Command> {
        if !matches!(self.connection, Connection::Connected { .. }) {
            self.notify(Level::Warn, "not connected");
            return vec![];
        }
        if self.monitor.df == DfState::Loading {
            return vec![];
        }
        self.monitor.df = DfState::Loading;
        vec![Command::LoadDiskUsage]
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
}
