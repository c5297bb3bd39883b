//! `Command`: the side effects `update` asks for, carried out by the runner in `tui/runner.rs`.

use crate::action::{Reply, SharedGroupPlan, SharedPlan};
use crate::runbook::Request;
use crate::ssh::PromptAnswer;
use crate::target::Target;

/// Side effects `update` asks for; the runner in `tui/runner.rs` carries them out.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Drop the current server's tasks and connect to this one.
    Connect(Target),
    /// Re-list every container now.
    Resync,
    /// Read these compose projects' files and `.env` on the server (drift); the answer comes as
    /// `EngineEvent::ComposeFiles`.
    LoadComposeFiles(Vec<crate::compose::ProjectKey>),
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
    /// Read the view's whole range again from the engine (no follow, no cap) straight into `file`:
    /// the lines a view's bounds dropped.
    SaveAllLogs {
        file: std::path::PathBuf,
        ids: Vec<String>,
        sources: Vec<crate::logs::LogSource>,
        options: crate::logs::LogOptions,
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
    /// Connect to a group's members and plan the request on each (`fleet::group::plan`); the
    /// answer is `RunbookMsg::GroupPlanned`.
    PlanGroup {
        group: String,
        members: Vec<String>,
        request: Request,
    },
    /// Run a confirmed group plan, one server at a time.
    RunGroup(SharedGroupPlan),
    /// Read the audit log.
    LoadAudit,
    /// Build the timeline of the current server (these names only, when any); the answer is
    /// `Action::Timeline`.
    LoadTimeline(Vec<String>),
    /// Post a test message to every `[[notify]]` webhook; the answer is one status-line message.
    NotifyTest,
    /// List the images a service can roll back to, or deploy (`forward`), for the picker.
    LoadCandidates {
        name: String,
        project: Option<String>,
        forward: bool,
    },
    /// Read stats of these containers (and only these) from now on.
    WatchStats(Vec<String>),
    /// Read the stats of these containers on these servers (other swarm nodes), by server; a
    /// server left out is no longer read.
    WatchNodeStats(std::collections::BTreeMap<String, Vec<String>>),
    /// Read stats this often.
    StatsInterval(std::time::Duration),
    /// Ask the engine for `docker system df`.
    LoadDiskUsage,
    /// Read the servers berth knows of; the answer is `Action::Servers`.
    LoadServers,
    /// Resolve a server name to a target; the answer is `Action::ServerResolved`.
    ResolveServer(String),
    /// Forward the container's `port` to this machine (`local`: that local port, else the same
    /// number when free, else any); its news come back as `Action::Forward` with `id`.
    StartForward {
        id: u64,
        container_id: String,
        container: String,
        port: u16,
        local: Option<u16>,
    },
    /// Stop the forward `id`: its listener closes and its connections end.
    StopForward(u64),
    /// Read a theme file; the answer is `Action::ThemeLoaded`.
    LoadTheme(String),
    /// Read the swarm (services, tasks, nodes) once; the answer is `Action::Swarm`.
    LoadSwarm,
    /// Watch every configured server (one kept session each), replacing any earlier watch; rows
    /// come back as `Action::Fleet` tagged with `round`.
    WatchFleet { round: u64 },
    /// Close these servers' fleet sessions (nobody looked at them for `[fleet] idle_close`); the
    /// other servers stay watched.
    CloseFleetServers(Vec<String>),
    /// Watch these servers again, closed earlier, as part of the watch `round`.
    ReopenFleetServers { round: u64, servers: Vec<String> },
}
