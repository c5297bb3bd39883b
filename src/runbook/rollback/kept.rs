//! The stopped containers berth keeps of earlier releases (`NAME-berth-kept-TIME`): which belong to
//! a service, grouped by the release (the run that set them aside), newest first, and which of
//! them go because more than `keep_old` releases are kept. The run, its plan, its end-state check
//! and prune all count them here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::super::LABEL_ROLLBACK_ID;
use crate::engine::model::{Container, KEPT_MARK, LABEL_KEPT_NAME};

/// The containers one run kept: the replicas it replaced.
#[derive(Debug, Clone)]
pub struct KeptRelease {
    /// The run's id (its kept copies' label), else the time in their names.
    pub run: String,
    pub kept_at: Option<DateTime<Utc>>,
    pub containers: Vec<Container>,
}

/// A finished kept copy (compose's labels set aside); a `-berth-old-` container of a run in flight
/// or cut off is not one: its recovery needs it.
pub fn is_kept_copy(c: &Container) -> bool {
    c.labels.contains_key(LABEL_KEPT_NAME)
}

/// The kept releases of a compose service (`service` set), else of the containers named
/// `replicas`, newest first.
pub fn kept_releases(
    all: &[Container],
    project: Option<&str>,
    service: Option<&str>,
    replicas: &[String],
) -> Vec<KeptRelease> {
    let mine = |c: &Container| match service {
        Some(s) => c.service.as_deref() == Some(s) && c.project.as_deref() == project,
        None => c
            .labels
            .get(LABEL_KEPT_NAME)
            .is_some_and(|n| replicas.contains(n)),
    };
    group(all.iter().filter(|c| is_kept_copy(c) && mine(c)))
}

/// Kept copies grouped by release, newest first.
pub(crate) fn group<'a>(kept: impl Iterator<Item = &'a Container>) -> Vec<KeptRelease> {
    let mut by_run: BTreeMap<String, KeptRelease> = BTreeMap::new();
    for c in kept {
        let run = c
            .labels
            .get(LABEL_ROLLBACK_ID)
            .cloned()
            .or_else(|| c.name.split_once(KEPT_MARK).map(|(_, t)| t.to_string()))
            .unwrap_or_else(|| c.id.clone());
        let r = by_run.entry(run.clone()).or_insert_with(|| KeptRelease {
            run,
            kept_at: None,
            containers: Vec::new(),
        });
        r.kept_at = r.kept_at.max(c.created);
        r.containers.push(c.clone());
    }
    let mut out: Vec<KeptRelease> = by_run.into_values().collect();
    out.sort_by(|a, b| b.kept_at.cmp(&a.kept_at).then(b.run.cmp(&a.run)));
    for r in &mut out {
        r.containers.sort_by(|a, b| a.name.cmp(&b.name));
    }
    out
}

/// The kept containers beyond the newest `keep` releases: what a successful run and prune remove.
pub fn beyond(releases: &[KeptRelease], keep: usize) -> Vec<Container> {
    releases
        .iter()
        .skip(keep)
        .flat_map(|r| r.containers.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(name: &str, run: &str, minute: i64) -> Container {
        let mut c = crate::runbook::tests::container(name, Some("shop"), Some("web"));
        c.id = format!("{name:0<64}");
        c.labels.insert(LABEL_KEPT_NAME.into(), "shop-web-1".into());
        c.labels.insert(LABEL_ROLLBACK_ID.into(), run.into());
        c.created = DateTime::from_timestamp(1_700_000_000 + minute * 60, 0);
        c
    }

    #[test]
    fn releases_newest_first_and_beyond_keep() {
        let all = vec![
            kept("shop-web-1-berth-kept-1", "r1", 1),
            kept("shop-web-2-berth-kept-1", "r1", 1),
            kept("shop-web-1-berth-kept-3", "r3", 3),
            kept("shop-web-2-berth-kept-3", "r3", 3),
            kept("shop-web-1-berth-kept-2", "r2", 2),
            // A run in flight: never counted, never removed.
            crate::runbook::tests::container("shop-web-1-berth-old-4", Some("shop"), Some("web")),
            // Another project's.
            {
                let mut c = kept("blog-web-1-berth-kept-9", "r9", 9);
                c.project = Some("blog".into());
                c
            },
        ];
        let r = kept_releases(&all, Some("shop"), Some("web"), &[]);
        let runs: Vec<&str> = r.iter().map(|r| r.run.as_str()).collect();
        assert_eq!(runs, ["r3", "r2", "r1"]);
        assert_eq!(r[0].containers.len(), 2);
        let gone: Vec<String> = beyond(&r, 1).into_iter().map(|c| c.name).collect();
        assert_eq!(
            gone,
            [
                "shop-web-1-berth-kept-2",
                "shop-web-1-berth-kept-1",
                "shop-web-2-berth-kept-1"
            ]
        );
        assert!(beyond(&r, 3).is_empty());
        // Not a compose service: by the replica's name.
        let r = kept_releases(&all, None, None, &["shop-web-1".into()]);
        assert_eq!(r.len(), 4);
    }
}
