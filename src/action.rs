//! Everything that can change the app's state: input from the terminal, data from the engine tasks,
//! and the clock. `App::update` is the only consumer.

use chrono::{DateTime, Utc};
use crossterm::event::{KeyEvent, MouseEvent};

use crate::engine::EngineVersion;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::engine::model::Container;
pub use crate::engine::watch::EventRecord;
use crate::engine::watch::WatchEvent;
use crate::runbook::{AuditEntry, Candidate, Plan, RunEvent};
use crate::ssh::{LinkStatus, PromptAnswer, PromptRequest};

#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    Resize(u16, u16),
    /// The clock moved on (uptimes, ages, message expiry).
    Tick(DateTime<Utc>),
    /// Something a background task learnt; `session` tells stale news from an old server apart.
    Engine {
        session: u64,
        event: EngineEvent,
    },
    /// A message for the status line.
    Notify(Level, String),
    /// News from a runbook task: a plan, a step's progress, the audit log.
    Runbook(RunbookMsg),
    /// The timeline `Command::LoadTimeline` asked for, built on session `session`.
    Timeline {
        session: u64,
        result: Result<Box<crate::timeline::Timeline>, String>,
    },
    /// News from the log view `view`'s stream: lines, a source's status, the end.
    Logs {
        view: u64,
        event: crate::logs::LogEvent,
    },
    /// The SSH layer asks the user something (passphrase, password, unknown host key).
    Prompt(PromptRequest, Reply),
    /// The servers berth knows of (config, ssh config, docker contexts), read off the loop.
    Servers(Vec<crate::target::KnownServer>),
    /// A server name resolved to a target (reading ssh config and docker contexts), or why not.
    ServerResolved(Result<crate::target::Target, String>),
    /// The swarm as the manager reported it for the session `session`, or why it cannot be shown
    /// (not a manager: the worker's message names where the managers are).
    Swarm {
        session: u64,
        result: Result<crate::swarm::Snapshot, String>,
    },
    /// One server's row for the fleet view, from the watch started as `round`.
    Fleet {
        round: u64,
        row: crate::fleet::ServerRow,
    },
    /// News of the console's port forward `id`, started on session `session`.
    Forward {
        session: u64,
        id: u64,
        event: crate::forward::ForwardEvent,
    },
    /// A theme file read and parsed, or why not.
    ThemeLoaded {
        name: String,
        result: Result<crate::theme::Theme, String>,
    },
}

/// Where the answer to a prompt goes. Cloneable so actions stay `Clone`; the first answer wins.
#[derive(Clone)]
pub struct Reply(Arc<Mutex<Option<oneshot::Sender<PromptAnswer>>>>);

impl Reply {
    pub fn new() -> (Reply, oneshot::Receiver<PromptAnswer>) {
        let (tx, rx) = oneshot::channel();
        (Reply(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    pub fn send(&self, answer: PromptAnswer) {
        if let Some(tx) = self.0.lock().ok().and_then(|mut t| t.take()) {
            let _ = tx.send(answer);
        }
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply")
    }
}

impl PartialEq for Reply {
    fn eq(&self, other: &Reply) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone)]
pub enum EngineEvent {
    Connected {
        transport: String,
        version: EngineVersion,
    },
    ConnectFailed(String),
    /// The full list, after connecting and at every resync.
    Snapshot(Vec<Container>),
    Changed(Box<Container>),
    Gone(String),
    /// The link or the events stream broke; the shown state may be out of date until it heals.
    Stale(String),
    /// The events stream is flowing again.
    Live,
    /// One engine event, for the events view.
    Event(EventRecord),
    /// The SSH link's state (round-trip time, reconnecting).
    Link(LinkStatus),
    /// One interval's container stats.
    Stats(crate::stats::StatsBatch),
    /// One interval's stats of tasks on another swarm node, read through `server`, or why
    /// that server cannot be read.
    NodeStats {
        server: String,
        reading: Result<crate::stats::StatsBatch, String>,
    },
    /// The health of tasks' containers on another swarm node, read through `server`.
    NodeHealth {
        server: String,
        health: Vec<(String, crate::engine::model::Health)>,
    },
    /// The engine host's CPU, memory and disks, or why they cannot be read.
    Host(Result<crate::stats::host::HostReport, String>),
    /// `docker system df`.
    DiskUsage(Result<crate::stats::df::DiskUsage, String>),
    /// What berth read of compose projects' files (or why it could not), for drift.
    ComposeFiles(Vec<(crate::compose::ProjectKey, crate::compose::ProjectView)>),
}

impl From<WatchEvent> for EngineEvent {
    fn from(event: WatchEvent) -> EngineEvent {
        match event {
            WatchEvent::Snapshot(list) => EngineEvent::Snapshot(list),
            WatchEvent::Changed(c) => EngineEvent::Changed(c),
            WatchEvent::Gone(id) => EngineEvent::Gone(id),
            WatchEvent::Stale(why) => EngineEvent::Stale(why),
            WatchEvent::Live => EngineEvent::Live,
            WatchEvent::Event(record) => EngineEvent::Event(record),
        }
    }
}

/// A plan shared between the app and the task that runs it.
#[derive(Debug, Clone)]
pub struct SharedPlan(pub Arc<Plan>);

impl PartialEq for SharedPlan {
    fn eq(&self, other: &SharedPlan) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A group's plan (its members' engines and plans) shared between the app and the task that runs it.
#[derive(Clone)]
pub struct SharedGroupPlan(pub Arc<crate::fleet::group::GroupPlan>);

impl std::fmt::Debug for SharedGroupPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedGroupPlan({}: {:?})", self.0.group, self.0.names())
    }
}

impl PartialEq for SharedGroupPlan {
    fn eq(&self, other: &SharedGroupPlan) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// News from runbook tasks.
#[derive(Debug, Clone)]
pub enum RunbookMsg {
    Planned(Result<SharedPlan, String>),
    /// The rollback could not be planned because its run journal cannot be written (`why`, one
    /// line); asked in the console, planned again with `force` when the user says so.
    JournalUnwritable {
        request: crate::runbook::Request,
        why: String,
    },
    /// A run's progress; in a group run, of the server running now.
    Event(RunEvent),
    /// A group's run planned on every member, or why not (nothing was changed).
    GroupPlanned(Result<SharedGroupPlan, String>),
    /// The group's member `index` starts its run.
    GroupMember {
        index: usize,
    },
    /// The group's run ended: done, where it stopped, not started.
    GroupDone(crate::fleet::group::Outcome),
    Audit(Result<Vec<AuditEntry>, String>),
    /// The images a service can roll back (or, `forward`, deploy) to, for the picker, with the
    /// registry's note (down, refused, listed in part) when there is one.
    Candidates {
        name: String,
        project: Option<String>,
        forward: bool,
        result: Result<(Vec<Candidate>, Option<String>), String>,
    },
}
