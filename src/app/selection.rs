//! The list's commands on its selection (its logs, its service's logs, a shell in it) and the
//! containers the palette names (`:logs NAME`, `:inspect NAME`), resolved like `berth logs NAME`.

use super::{App, Command, Row};
use crate::action::Level;
use crate::engine::model::{Container, State};
use crate::grouping::STANDALONE;
use crate::keymap::Intent;
use crate::runbook::Guard;

impl App {
    /// The selected container's logs, or its project's when a project heading is selected.
    pub(super) fn logs_of_selection(&mut self) -> Vec<Command> {
        if let Some(c) = self.selected_container() {
            let (title, ids) = (c.display_name(), vec![c.id.clone()]);
            return self.open_logs(title, ids);
        }
        if let Some(Row::Group { key, .. }) = self.list.rows.get(self.list.selected) {
            return self.logs_for_group(key.clone());
        }
        vec![]
    }

    /// The logs of every container of the selected container's compose service (its own when it
    /// is in none), or of the selected project heading's project.
    pub(super) fn service_logs_of_selection(&mut self) -> Vec<Command> {
        let target = self
            .selected_container()
            .map(|c| (c.project.clone(), c.service.clone()));
        match target {
            Some((Some(p), Some(s))) => {
                let ids = self.ids_where(|c| {
                    c.project.as_deref() == Some(&p) && c.service.as_deref() == Some(&s)
                });
                self.open_logs(format!("{p}/{s}"), ids)
            }
            Some(_) => self.on_intent(Intent::Logs),
            None => {
                if let Some(Row::Group { key, .. }) = self.list.rows.get(self.list.selected) {
                    return self.logs_for_group(key.clone());
                }
                vec![]
            }
        }
    }

    /// A shell in the selected container: refused on a read-only server (a shell could change
    /// anything) and on a container that is not running.
    pub(super) fn shell_in_selection(&mut self) -> Vec<Command> {
        if let Some(target) = &self.target
            && let Err(e) = Guard::for_target(target).allows(true)
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

    pub(super) fn find_container(&self, name: &str) -> Option<String> {
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
}
