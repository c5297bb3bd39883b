//! The swarm views: stacks → services → tasks, and the nodes. Own their rows, selections and the
//! keys that move them; the runbook keys act on the selected service (or node) through the same
//! `runbook::Request` as `berth scale|restart|rollback|drain|activate`. The swarm is re-read every
//! few seconds while a view shows it.

use chrono::{DateTime, Utc};

use super::{App, Command, View, move_in_list};
use crate::action::Level;
use crate::keymap::Intent;
use crate::runbook::{Request, SwarmAction, SwarmRequest};
use crate::swarm::{NodeInfo, ServiceInfo, Snapshot, TaskInfo};

/// How often an open swarm view reads the swarm again.
const REFRESH_SECS: i64 = 3;
/// Earlier tasks of a service shown under it (the newest), so a failure's error is on screen.
const EARLIER_TASKS: usize = 2;

/// One line of the services view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmRow {
    /// A stack's heading; `None`: services outside any stack.
    Stack(Option<String>),
    /// A service, by id.
    Service(String),
    /// A task of the service above, by task id.
    Task { task: String, service: String },
}

/// What a swarm view may read while it handles a key.
pub struct SwarmCtx {
    pub page: usize,
    pub nodes: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SwarmView {
    pub snapshot: Option<Snapshot>,
    /// Why the swarm is not shown (a worker, not a swarm, an engine error).
    pub error: Option<String>,
    pub rows: Vec<SwarmRow>,
    pub selected: usize,
    pub node_selected: usize,
    /// A read is under way: no second one is asked for.
    pub loading: bool,
    pub loaded_at: Option<DateTime<Utc>>,
}

impl SwarmView {
    /// The swarm's news: rows rebuilt, the selection kept on the same line where it still is.
    pub fn put(&mut self, result: Result<Snapshot, String>, now: DateTime<Utc>) {
        self.loading = false;
        self.loaded_at = Some(now);
        match result {
            Ok(snapshot) => {
                let chosen = self.rows.get(self.selected).cloned();
                let node = self.selected_node().map(|n| n.id.clone());
                self.rows = rows_of(&snapshot);
                self.selected = chosen
                    .and_then(|c| self.rows.iter().position(|r| *r == c))
                    .unwrap_or_else(|| self.selected.min(self.rows.len().saturating_sub(1)));
                self.node_selected = node
                    .and_then(|id| snapshot.nodes.iter().position(|n| n.id == id))
                    .unwrap_or_else(|| {
                        self.node_selected
                            .min(snapshot.nodes.len().saturating_sub(1))
                    });
                self.snapshot = Some(snapshot);
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// The service of the selected line (its own, or the one a task belongs to).
    pub fn selected_service(&self) -> Option<&ServiceInfo> {
        let snapshot = self.snapshot.as_ref()?;
        let id = match self.rows.get(self.selected)? {
            SwarmRow::Service(id) | SwarmRow::Task { service: id, .. } => id,
            SwarmRow::Stack(_) => return None,
        };
        snapshot.services.iter().find(|s| &s.id == id)
    }

    pub fn selected_node(&self) -> Option<&NodeInfo> {
        self.snapshot.as_ref()?.nodes.get(self.node_selected)
    }

    pub fn task(&self, id: &str) -> Option<&TaskInfo> {
        self.snapshot.as_ref()?.tasks.iter().find(|t| t.id == id)
    }

    pub fn service(&self, id: &str) -> Option<&ServiceInfo> {
        self.snapshot.as_ref()?.services.iter().find(|s| s.id == id)
    }

    pub fn handle(&mut self, intent: Intent, ctx: &SwarmCtx) -> Vec<Command> {
        let (selected, len) = if ctx.nodes {
            let n = self.snapshot.as_ref().map_or(0, |s| s.nodes.len());
            (&mut self.node_selected, n)
        } else {
            (&mut self.selected, self.rows.len())
        };
        let page = ctx.page.max(1);
        match intent {
            Intent::PageDown => *selected = (*selected + page).min(len.saturating_sub(1)),
            Intent::PageUp => *selected = selected.saturating_sub(page),
            Intent::Refresh if !self.loading => {
                self.loading = true;
                return vec![Command::LoadSwarm];
            }
            other => {
                move_in_list(selected, len, other);
            }
        }
        vec![]
    }
}

/// Stacks, each with its services, each with the tasks wanted running and its newest earlier ones.
pub fn rows_of(snapshot: &Snapshot) -> Vec<SwarmRow> {
    let mut rows = Vec::new();
    for (stack, services) in snapshot.stacks() {
        rows.push(SwarmRow::Stack(stack));
        for s in services {
            rows.push(SwarmRow::Service(s.id.clone()));
            let tasks = snapshot.tasks_of(&s.id);
            let (current, earlier): (Vec<&TaskInfo>, Vec<&TaskInfo>) =
                tasks.into_iter().partition(|t| t.wants_running());
            let mut earlier = earlier;
            earlier.sort_by_key(|t| std::cmp::Reverse(t.created_at));
            for t in current
                .into_iter()
                .chain(earlier.into_iter().take(EARLIER_TASKS))
            {
                rows.push(SwarmRow::Task {
                    task: t.id.clone(),
                    service: s.id.clone(),
                });
            }
        }
    }
    rows
}

// The app's side: opening the views, their news, their keys and the runbook on the selection.
impl App {
    /// Shows the swarm's services (or nodes) and reads the swarm.
    pub fn open_swarm(&mut self, view: View) -> Vec<Command> {
        let mut commands = vec![];
        if self.view == View::Logs {
            self.logs = None;
            commands.push(Command::CloseLogs);
        }
        self.view = view;
        if !self.swarm.loading {
            self.swarm.loading = true;
            commands.push(Command::LoadSwarm);
        }
        commands
    }

    pub(super) fn on_swarm(
        &mut self,
        session: u64,
        result: Result<Snapshot, String>,
    ) -> Vec<Command> {
        if session == self.session {
            self.swarm.put(result, self.now);
        }
        vec![]
    }

    /// While a swarm view is open, the swarm is read again every few seconds.
    pub(super) fn refresh_swarm(&mut self) -> Option<Command> {
        let open = matches!(self.view, View::Swarm | View::Nodes);
        let due = self
            .swarm
            .loaded_at
            .is_none_or(|t| (self.now - t).num_seconds() >= REFRESH_SECS);
        if open && due && !self.swarm.loading && !self.body_is_covered() {
            self.swarm.loading = true;
            return Some(Command::LoadSwarm);
        }
        None
    }

    pub(super) fn on_swarm_intent(&mut self, intent: Intent) -> Vec<Command> {
        let nodes = self.view == View::Nodes;
        match intent {
            Intent::Back => self.view = View::Containers,
            Intent::SwarmView if !nodes => self.view = View::Containers,
            Intent::NodesView if nodes => self.view = View::Containers,
            Intent::SwarmView => return self.open_swarm(View::Swarm),
            Intent::NodesView => return self.open_swarm(View::Nodes),
            Intent::Quit => self.quit(),
            Intent::Help => self.overlay = super::Overlay::Help { scroll: 0 },
            Intent::Palette => self.open_palette(""),
            Intent::ServerPicker => return self.open_picker(),
            Intent::Events => self.view = View::Events,
            Intent::Audit => return vec![Command::LoadAudit],
            Intent::RunView if self.run.is_some() => self.view = View::Runbook,
            Intent::Scale | Intent::SwarmRestart | Intent::SwarmRollback if nodes => {
                self.notify(Level::Info, "select a service in the swarm view (Z) first");
            }
            Intent::Drain | Intent::Activate if !nodes => {
                self.notify(Level::Info, "select a node in the nodes view (N) first");
            }
            Intent::Scale => {
                if let Some(name) = self.swarm_selection() {
                    self.open_palette(&format!("scale {name}="));
                }
            }
            Intent::SwarmLogs if nodes => {
                self.notify(Level::Info, "select a service in the swarm view (Z) first");
            }
            Intent::SwarmLogs => return self.open_swarm_logs(),
            Intent::SwarmRestart => return self.swarm_runbook(SwarmAction::Restart),
            Intent::SwarmRollback => return self.swarm_runbook(SwarmAction::Rollback),
            Intent::Drain => return self.swarm_runbook(SwarmAction::Drain),
            Intent::Activate => return self.swarm_runbook(SwarmAction::Activate),
            other => {
                let ctx = super::swarm::SwarmCtx {
                    page: self.areas().list_rows.max(1),
                    nodes,
                };
                return self.swarm.handle(other, &ctx);
            }
        }
        vec![]
    }

    /// The selected service's name, or the selected node's hostname in the nodes view; says
    /// what to select when nothing fits.
    fn swarm_selection(&mut self) -> Option<String> {
        let name = if self.view == View::Nodes {
            self.swarm.selected_node().map(|n| n.hostname.clone())
        } else {
            self.swarm.selected_service().map(|s| s.name.clone())
        };
        if name.is_none() {
            let what = if self.view == View::Nodes {
                "a node"
            } else {
                "a service, one of its tasks or a stack's heading"
            };
            self.notify(Level::Info, format!("select {what} first"));
        }
        name
    }

    /// The log of the selected service (a task line: its service), or on a stack's heading of
    /// every service in it: the tasks' logs through the manager, merged like compose replicas.
    fn open_swarm_logs(&mut self) -> Vec<Command> {
        let Some(snapshot) = self.swarm.snapshot.as_ref() else {
            return vec![];
        };
        let named = match self.swarm.rows.get(self.swarm.selected) {
            Some(SwarmRow::Stack(Some(stack))) => snapshot
                .stacks()
                .into_iter()
                .find(|(name, _)| name.as_ref() == Some(stack))
                .map(|(_, members)| crate::swarm::Named::Stack(stack.clone(), members)),
            Some(SwarmRow::Service(id) | SwarmRow::Task { service: id, .. }) => snapshot
                .services
                .iter()
                .find(|s| &s.id == id)
                .map(crate::swarm::Named::Service),
            _ => None,
        };
        let Some(named) = named else {
            self.notify(
                Level::Info,
                "select a service, one of its tasks or a stack first",
            );
            return vec![];
        };
        let title = match &named {
            crate::swarm::Named::Service(s) => s.name.clone(),
            crate::swarm::Named::Stack(name, _) => format!("stack {name}"),
        };
        let sources = crate::swarm::logs::sources_for(snapshot, &named);
        if sources.is_empty() {
            self.notify(
                Level::Info,
                format!(
                    "{}: no task has started a container yet, nothing has logged",
                    crate::format::printable(&title)
                ),
            );
            return vec![];
        }
        self.open_log_sources(title, sources)
    }

    fn swarm_runbook(&mut self, action: SwarmAction) -> Vec<Command> {
        // On a stack's heading, restart and rollback take every service of the stack.
        let stack = match self.swarm.rows.get(self.swarm.selected) {
            Some(SwarmRow::Stack(Some(stack)))
                if self.view == View::Swarm
                    && matches!(action, SwarmAction::Restart | SwarmAction::Rollback) =>
            {
                Some(stack.clone())
            }
            _ => None,
        };
        let Some(name) = stack.or_else(|| self.swarm_selection()) else {
            return vec![];
        };
        self.request_runbook(Request::Swarm(SwarmRequest { action, name }))
    }

    /// `:scale web=3`, `:service-restart web`, `:service-rollback web [TAG]`, `:drain NODE`,
    /// `:activate NODE`.
    pub(super) fn on_swarm_palette(&mut self, intent: Intent, arg: &str) -> Vec<Command> {
        let mut words = arg.split_whitespace();
        let name = words.next().unwrap_or_default().to_string();
        let action = match intent {
            Intent::Scale => match crate::runbook::swarm::parse_scale(arg) {
                Ok((name, n)) => {
                    return self.request_runbook(Request::Swarm(SwarmRequest {
                        action: SwarmAction::Scale(n),
                        name,
                    }));
                }
                Err(e) => {
                    self.notify(Level::Error, e.to_string());
                    return vec![];
                }
            },
            Intent::SwarmRestart => SwarmAction::Restart,
            Intent::SwarmRollback => match words.next() {
                Some(tag) => SwarmAction::Image(tag.to_string()),
                None => SwarmAction::Rollback,
            },
            Intent::Drain => SwarmAction::Drain,
            Intent::Activate => SwarmAction::Activate,
            _ => return vec![],
        };
        self.request_runbook(Request::Swarm(SwarmRequest { action, name }))
    }
}

#[cfg(test)]
#[path = "swarm_tests.rs"]
mod tests;
