//! Kamal's releases on one engine: which containers of an app's role (in one destination) are the
//! current release, so an action on the app or the role touches those and leaves older releases
//! (stopped, or still running after a deploy that failed half-way) as they are.
//!
//! The rule: within one app, role and destination, the current release is the newest-created
//! container that runs (else the newest-created, when none runs), together with any other
//! container of that role and destination carrying the same version. A container Kamal set aside
//! (`…_replaced_…`) belongs to the current release only when it is that newest one itself.

use std::collections::BTreeMap;

use super::model::{Container, LABEL_KAMAL_DESTINATION};

/// A destination is named after the role: `shop/web@staging`, `shop@staging`.
pub const DESTINATION_MARK: char = '@';

/// `(app, role, destination)` of a Kamal container; `None` for any other container.
pub fn release_group(c: &Container) -> Option<(String, String, Option<String>)> {
    if !c.is_kamal() {
        return None;
    }
    Some((
        c.project.clone()?,
        c.service.clone()?,
        c.kamal_destination().map(str::to_string),
    ))
}

/// Splits `shop/web@staging` into the name and the destination it selects. A Docker name never
/// holds `@`, so the mark cannot be part of a container or service name.
pub fn split_destination(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once(DESTINATION_MARK) {
        Some((base, dest)) if !dest.is_empty() && !dest.contains('/') => (base, Some(dest)),
        _ => (name, None),
    }
}

/// Whether `c` is in `destination` (`None`: any destination, and every non-Kamal container).
pub fn in_destination(c: &Container, destination: Option<&str>) -> bool {
    match destination {
        None => true,
        Some(d) => c.is_kamal() && c.kamal_destination() == Some(d),
    }
}

/// The ids of the current release's containers, over every Kamal role and destination in `all`.
pub fn current_ids<'a>(all: impl IntoIterator<Item = &'a Container>) -> Vec<&'a str> {
    let mut groups: BTreeMap<(String, String, Option<String>), Vec<&Container>> = BTreeMap::new();
    for c in all {
        if let Some(key) = release_group(c) {
            groups.entry(key).or_default().push(c);
        }
    }
    let mut ids = Vec::new();
    for members in groups.values() {
        let Some(newest) = newest(members) else {
            continue;
        };
        let version = newest.kamal_version();
        for c in members {
            let same = c.id == newest.id || (!is_set_aside(c) && c.kamal_version() == version);
            if same {
                ids.push(c.id.as_str());
            }
        }
    }
    ids
}

/// The newest-created running container, else the newest-created one.
fn newest<'a>(members: &[&'a Container]) -> Option<&'a Container> {
    let by_age = |c: &&&Container| (c.created, c.started_at, c.name.clone());
    members
        .iter()
        .filter(|c| c.state.is_up())
        .max_by_key(by_age)
        .or_else(|| members.iter().max_by_key(by_age))
        .copied()
}

/// A container Kamal renamed out of the way (`<name>_replaced_<hex>`) when it redeployed the
/// same version.
fn is_set_aside(c: &Container) -> bool {
    c.name.contains("_replaced_")
}

/// The destination label's value, empty read as none.
pub(super) fn destination_label(c: &Container) -> Option<&str> {
    c.labels
        .get(LABEL_KAMAL_DESTINATION)
        .map(String::as_str)
        .filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::State;
    use crate::fixtures::{self, minutes_ago};

    pub(crate) fn kamal(name: &str, role: &str, dest: Option<&str>, age_min: i64) -> Container {
        let mut c = fixtures::container(name);
        c.labels.insert("service".into(), "shop".into());
        c.labels.insert("role".into(), role.into());
        if let Some(d) = dest {
            c.labels.insert("destination".into(), d.into());
        }
        c.project = Some("shop".into());
        c.service = Some(role.into());
        c.number = None;
        c.created = minutes_ago(age_min);
        c
    }

    #[test]
    fn the_current_release_is_the_newest_running_else_the_newest() {
        let mut old = kamal("shop-web-3f2a1c7", "web", None, 60);
        old.state = State::Exited;
        let new = kamal("shop-web-9b8e4d2", "web", None, 10);
        let staging = kamal("shop-web-staging-9b8e4d2", "web", Some("staging"), 5);
        let mut staging_old = kamal("shop-web-staging-1111111", "web", Some("staging"), 50);
        staging_old.state = State::Running;
        let all = [
            old.clone(),
            new.clone(),
            staging.clone(),
            staging_old.clone(),
        ];
        let ids = current_ids(&all);
        assert_eq!(ids, [new.id.as_str(), staging.id.as_str()], "{ids:?}");

        // The newest failed to start: the older one that still runs is the current release.
        let mut failed = kamal("shop-web-aaaaaaa", "web", None, 1);
        failed.state = State::Exited;
        let all = [old.clone(), new.clone(), failed.clone()];
        assert_eq!(current_ids(&all), [new.id.as_str()]);
        // Nothing runs: the newest-created.
        let mut stopped = new.clone();
        stopped.state = State::Exited;
        let all = [old, stopped.clone()];
        assert_eq!(current_ids(&all), [stopped.id.as_str()]);
    }

    #[test]
    fn destinations_split_off_the_name() {
        assert_eq!(
            split_destination("shop/web@staging"),
            ("shop/web", Some("staging"))
        );
        assert_eq!(split_destination("shop@staging"), ("shop", Some("staging")));
        assert_eq!(split_destination("shop/web"), ("shop/web", None));
        assert_eq!(split_destination("web@"), ("web@", None));
    }
}
