//! The compose files behind the projects on screen, read once per project, for the drift marker
//! in the list and the details pane.

use std::collections::{BTreeMap, BTreeSet};

use crate::compose::{Drift, ProjectKey, ProjectView};
use crate::engine::model::Container;

use super::{App, Command};

#[derive(Debug, Default)]
pub struct ComposeFiles {
    pub views: BTreeMap<ProjectKey, ProjectView>,
    /// Projects already asked for (answered or not): each is read once until it is forgotten,
    /// so a busy events stream does not turn into one SSH exec per event.
    asked: BTreeSet<ProjectKey>,
}

impl ComposeFiles {
    /// The projects of `containers` not read or being read yet, now marked as asked for.
    fn wanted<'a>(&mut self, containers: impl Iterator<Item = &'a Container>) -> Vec<ProjectKey> {
        let mut keys = Vec::new();
        for key in containers.filter_map(ProjectKey::of) {
            if self.asked.insert(key.clone()) {
                keys.push(key);
            }
        }
        keys
    }

    /// Reads the project again at the next chance (its files may have changed: a new container
    /// usually means someone ran `up -d`).
    fn forget(&mut self, c: &Container) {
        if let Some(key) = ProjectKey::of(c) {
            self.asked.remove(&key);
        }
    }

    pub fn clear(&mut self) {
        self.views.clear();
        self.asked.clear();
    }

    pub fn drift(&self, c: &Container) -> Option<Drift> {
        crate::compose::drift(c, &self.views)
    }
}

impl App {
    /// The command that reads the compose files of projects on screen not read yet, if any.
    pub(super) fn load_compose_files(&mut self) -> Vec<Command> {
        let keys = self.compose.wanted(self.containers.values());
        if keys.is_empty() {
            vec![]
        } else {
            vec![Command::LoadComposeFiles(keys)]
        }
    }

    /// A container appeared or changed: a new one makes its project's files worth reading again.
    pub(super) fn compose_container_changed(&mut self, c: &Container, new: bool) -> Vec<Command> {
        if new {
            self.compose.forget(c);
        }
        self.load_compose_files()
    }

    /// After a runbook run the files may differ (a pin rewrote `.env`): read every project again.
    pub(super) fn reload_compose_files(&mut self) -> Vec<Command> {
        self.compose.asked.clear();
        self.load_compose_files()
    }

    pub(super) fn on_compose_files(&mut self, views: Vec<(ProjectKey, ProjectView)>) {
        self.compose.views.extend(views);
    }
}
