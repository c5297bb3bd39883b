//! The compose files behind the projects on screen, read once per project, for the drift marker
//! in the list and the details pane.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::compose::{Drift, ProjectKey, ProjectView};
use crate::engine::model::Container;

use super::{App, Command};

#[derive(Debug, Default)]
pub struct ComposeFiles {
    pub views: BTreeMap<ProjectKey, ProjectView>,
    /// Projects already asked for (answered or not): each is read once until it is forgotten,
    /// so a busy events stream does not turn into one SSH exec per event.
    asked: BTreeSet<ProjectKey>,
    /// Each container's drift, worked out when the containers or the files change, so drawing a
    /// row only looks it up.
    by_container: HashMap<String, Drift>,
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
        self.by_container.clear();
    }

    pub fn drift(&self, c: &Container) -> Option<&Drift> {
        self.by_container.get(&c.id)
    }

    pub(super) fn forget_container(&mut self, id: &str) {
        self.by_container.remove(id);
    }

    /// Works out every container's drift again from the files read so far.
    pub(super) fn refresh<'a>(&mut self, containers: impl Iterator<Item = &'a Container>) {
        self.by_container = containers
            .filter_map(|c| Some((c.id.clone(), crate::compose::drift(c, &self.views)?)))
            .collect();
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
        self.compose.refresh(self.containers.values());
    }
}
