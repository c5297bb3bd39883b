//! The images a service can roll back to, and which one is "previous": the image the service ran
//! before the current one — never merely the newest image that is not current.

use bollard::query_parameters::ListImagesOptions;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::super::{LABEL_ROLLBACK_ID, RunbookError, short};
use crate::engine::model::{Container, LABEL_KEPT_NAME, State, split_image};
use crate::engine::{Engine, EngineError};

/// An image the service could roll back to.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub tags: Vec<String>,
    pub digests: Vec<String>,
    pub created: Option<DateTime<Utc>>,
    pub size: i64,
    /// The service runs it now.
    pub current: bool,
    /// The service ran it before the current one (a kept, stopped or replaced container used it).
    pub previous: bool,
    /// Built after the current image and never run by the service: `newer · never ran`. Never
    /// preselected — rolling "back" to it would be a first deploy.
    #[serde(default)]
    pub never_ran: bool,
    /// The image is on the server (false: a tag only the registry has; a pull comes first).
    pub on_server: bool,
    /// The registry has this tag too.
    pub in_registry: bool,
    /// The tag's manifest digest in the registry.
    pub registry_digest: Option<String>,
}

impl Candidate {
    pub fn label(&self) -> String {
        self.tags
            .first()
            .cloned()
            .or_else(|| self.digests.first().cloned())
            .unwrap_or_else(|| short(&self.id).to_string())
    }

    /// Where it is: `on server`, `in registry`, or both.
    pub fn place(&self) -> &'static str {
        match (self.on_server, self.in_registry) {
            (true, true) => "on server · in registry",
            (false, true) => "in registry",
            _ => "on server",
        }
    }

    /// The digest to show: the registry's, else the first the server records.
    pub fn digest(&self) -> Option<&str> {
        self.registry_digest.as_deref().or_else(|| {
            self.digests
                .first()
                .and_then(|d| d.split_once('@').map(|(_, d)| d))
        })
    }

    /// What the picker and the plan print after the name: `current`, `previous`, `newer · never ran`.
    pub fn mark(&self) -> Option<&'static str> {
        if self.current {
            Some("current")
        } else if self.previous {
            Some("previous")
        } else if self.never_ran {
            Some("newer · never ran")
        } else {
            None
        }
    }
}

/// The one the picker preselects and the CLI takes without `--to`: the candidate marked previous
/// ([`previous_release`]), so `--list`, the picker and the plan name the same image.
pub fn preselect(cands: &[Candidate]) -> Option<usize> {
    cands.iter().position(|c| c.previous && !c.current)
}

/// The one the deploy picker preselects: the newest image built after the current one (the list
/// is newest first, so the top one that is newer). `None` when nothing is newer (or no dates are
/// known): the picker then starts on the current image, and Enter there says so.
pub fn preselect_forward(cands: &[Candidate]) -> Option<usize> {
    let current_created = cands.iter().find(|c| c.current).and_then(|c| c.created)?;
    cands
        .iter()
        .position(|c| !c.current && c.created.is_some_and(|t| t > current_created))
}

/// The images the service's repository has on the server, newest first.
pub async fn candidates(
    engine: &Engine,
    current: &Container,
    history: &[Container],
) -> Result<Vec<Candidate>, RunbookError> {
    let repo = repo_of(engine, current).await?;
    let images = engine
        .docker
        .list_images(Some(ListImagesOptions {
            all: false,
            digests: true,
            ..Default::default()
        }))
        .await
        .map_err(|e| {
            RunbookError::Engine(EngineError::from_bollard(
                &engine.target.endpoint.to_string(),
                e,
            ))
        })?;
    let in_repo: Vec<(String, i64)> = images
        .iter()
        .filter(|i| {
            i.repo_tags.iter().any(|t| split_image(t).0 == repo)
                || i.repo_digests.iter().any(|d| split_image(d).0 == repo)
        })
        .map(|i| (i.id.clone(), i.created))
        .collect();
    let current_created = images
        .iter()
        .find(|i| i.id == current.image_id)
        .map(|i| i.created);
    let previous = previous_release(current, history, &in_repo, current_created);
    let ran: Vec<&str> = history
        .iter()
        .filter(|c| same_service(c, current))
        .map(|c| c.image_id.as_str())
        .collect();
    let mut out: Vec<Candidate> = images
        .into_iter()
        .filter(|i| {
            i.id == current.image_id
                || previous.as_deref() == Some(i.id.as_str())
                || i.repo_tags.iter().any(|t| split_image(t).0 == repo)
                || i.repo_digests.iter().any(|d| split_image(d).0 == repo)
        })
        .map(|i| Candidate {
            current: i.id == current.image_id,
            previous: previous.as_deref() == Some(i.id.as_str()),
            never_ran: i.id != current.image_id
                && previous.as_deref() != Some(i.id.as_str())
                && !ran.contains(&i.id.as_str())
                && current_created.is_some_and(|c| i.created > c),
            tags: i
                .repo_tags
                .into_iter()
                .filter(|t| t != "<none>:<none>")
                .collect(),
            digests: i
                .repo_digests
                .into_iter()
                .filter(|d| d != "<none>@<none>")
                .collect(),
            created: DateTime::from_timestamp(i.created, 0),
            size: i.size,
            id: i.id,
            on_server: true,
            in_registry: false,
            registry_digest: None,
        })
        .collect();
    for c in &mut out {
        // The service's own repository first: that is the name the user knows.
        c.tags
            .sort_by_key(|t| (split_image(t).0 != repo, t.clone()));
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// The rollback candidates of a service or container by name (what the console's picker lists).
pub async fn candidates_for(
    engine: &Engine,
    name: &str,
    project: Option<&str>,
) -> Result<Vec<Candidate>, RunbookError> {
    let subject = super::super::resolve(engine, name, project).await?;
    let running = running_replicas(&subject, name)?;
    candidates(engine, running[0], &subject.all).await
}

/// [`candidates_for`] with the registry's tags of the repository beside them, and a note when
/// the registry could not be listed (or only in part): the rollback picker's and `--list`'s rows.
pub async fn candidates_with_registry(
    engine: &Engine,
    name: &str,
    project: Option<&str>,
) -> Result<(Vec<Candidate>, Option<String>), RunbookError> {
    let subject = super::super::resolve(engine, name, project).await?;
    let running = running_replicas(&subject, name)?;
    let mut cands = candidates(engine, running[0], &subject.all).await?;
    let repo = repo_of(engine, running[0]).await?;
    let note = super::registry::add_registry_tags(engine, &repo, &mut cands).await;
    Ok((cands, note))
}

/// The subject's running replicas, at least one: a rollback needs something serving to replace.
pub(super) fn running_replicas<'a>(
    subject: &'a super::super::Subject,
    name: &str,
) -> Result<Vec<&'a Container>, RunbookError> {
    let running: Vec<&Container> = subject
        .containers
        .iter()
        .filter(|c| c.state == State::Running)
        .collect();
    if running.is_empty() {
        return Err(RunbookError::Invalid(format!(
            "{} has no running container to roll back; start it first (`berth start {name}`)",
            subject.label
        )));
    }
    Ok(running)
}

/// The repository a container's image belongs to (its reference, or the first tag of its image).
pub(super) async fn repo_of(engine: &Engine, c: &Container) -> Result<String, RunbookError> {
    if !c.image.starts_with("sha256:") {
        return Ok(split_image(&c.image).0.to_string());
    }
    let i = engine
        .docker
        .inspect_image(&c.image_id)
        .await
        .map_err(|e| RunbookError::Engine(EngineError::from_bollard("image", e)))?;
    i.repo_tags
        .unwrap_or_default()
        .first()
        .map(|t| split_image(t).0.to_string())
        .ok_or_else(|| {
            RunbookError::Invalid(format!(
                "{} runs an untagged image {}: name the image to roll back to with --to",
                c.name,
                short(&c.image_id)
            ))
        })
}

fn same_service(c: &Container, current: &Container) -> bool {
    (c.service.is_some() && c.service == current.service && c.project == current.project)
        || c.name.starts_with(&format!("{}-berth-", current.name))
        || c.labels.get(LABEL_KEPT_NAME) == Some(&current.name)
}

/// The image the same service ran before the current one: the container berth kept when it put
/// the current one in place (same rollback id), else the newest kept, stopped or replaced
/// container of the service that ran another image.
pub(crate) fn previous_image(current: &Container, history: &[Container]) -> Option<String> {
    let others = || {
        history
            .iter()
            .filter(|c| c.id != current.id && c.image_id != current.image_id)
            .filter(|c| same_service(c, current))
    };
    if let Some(run) = current.labels.get(LABEL_ROLLBACK_ID)
        && let Some(kept) = others().find(|c| c.labels.get(LABEL_ROLLBACK_ID) == Some(run))
    {
        return Some(kept.image_id.clone());
    }
    if let Some(from) = current.labels.get(super::super::LABEL_ROLLBACK_FROM)
        && let Some(old) = others().find(|c| &c.id == from)
    {
        return Some(old.image_id.clone());
    }
    others()
        .max_by_key(|c| (c.is_kept(), c.finished_at.or(c.created)))
        .map(|c| c.image_id.clone())
}

/// The one "previous" release of a service, which `--list`, the picker, the plan and prune all
/// name: the image it ran before the current one ([`previous_image`]), else — when nothing it ran
/// before is left (compose replaced and removed those containers) — the newest image of its
/// repository (`repo_images`: id, created) built before the current one.
pub(crate) fn previous_release(
    current: &Container,
    history: &[Container],
    repo_images: &[(String, i64)],
    current_created: Option<i64>,
) -> Option<String> {
    previous_image(current, history).or_else(|| {
        let created = current_created?;
        repo_images
            .iter()
            .filter(|(id, c)| *id != current.image_id && *c <= created)
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(id, _)| id.clone())
    })
}

pub(super) fn looks_like_id(s: &str) -> bool {
    let h = s.strip_prefix("sha256:").unwrap_or(s);
    h.len() >= 12 && h.chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: &str, hours: i64, current: bool, previous: bool, never_ran: bool) -> Candidate {
        Candidate {
            id: id.into(),
            tags: vec![format!("app:{id}")],
            digests: vec![],
            created: DateTime::from_timestamp(1_700_000_000 + hours * 3600, 0),
            size: 1,
            current,
            previous,
            never_ran,
            on_server: true,
            in_registry: false,
            registry_digest: None,
        }
    }

    #[test]
    fn previous_from_history() {
        let mut cur = crate::runbook::tests::container("shop-web-1", Some("shop"), Some("web"));
        cur.image_id = "sha256:v2".into();
        let mut old =
            crate::runbook::tests::container("shop-web-1-berth-old-1", Some("shop"), Some("web"));
        old.id = "old".into();
        old.image_id = "sha256:v1".into();
        assert_eq!(
            previous_image(&cur, &[cur.clone(), old.clone()]),
            Some("sha256:v1".into())
        );
        assert_eq!(previous_image(&cur, std::slice::from_ref(&cur)), None);
        assert!(looks_like_id("sha256:2ffcbdd28124"));
        assert!(!looks_like_id("v1"));
    }

    #[test]
    fn newer_never_ran_is_never_preselected() {
        // bad (newest, never ran), v2 current, v1 older: with no history v1 is the previous
        // release (marked so by `candidates`), and the pick.
        let c = vec![
            cand("bad", 3, false, false, true),
            cand("v2", 2, true, false, false),
            cand("v1", 1, false, true, false),
        ];
        assert_eq!(preselect(&c), Some(2));
        assert_eq!(c[0].mark(), Some("newer · never ran"));
        let mut cur = crate::runbook::tests::container("shop-web-1", Some("shop"), Some("web"));
        cur.image_id = "v2".into();
        let repo = [("bad".to_string(), 3), ("v2".into(), 2), ("v1".into(), 1)];
        assert_eq!(
            previous_release(&cur, std::slice::from_ref(&cur), &repo, Some(2)),
            Some("v1".into())
        );
        // What ran before wins over age.
        let c = vec![
            cand("v3", 3, false, true, false),
            cand("v2", 2, true, false, false),
            cand("v1", 1, false, false, false),
        ];
        assert_eq!(preselect(&c), Some(0));
        // Nothing older and nothing that ran: nothing preselected.
        let c = vec![
            cand("bad", 3, false, false, true),
            cand("v2", 2, true, false, false),
        ];
        assert_eq!(preselect(&c), None);
    }

    #[test]
    fn a_deploy_starts_on_the_newest_image_after_the_current_one() {
        // A registry-only tag newer than the current one: the deploy's pick, even though it never ran.
        let mut v4 = cand("v4", 4, false, false, true);
        v4.on_server = false;
        v4.in_registry = true;
        let c = vec![
            v4,
            cand("v3", 3, true, false, false),
            cand("v2", 2, false, true, false),
        ];
        assert_eq!(preselect_forward(&c), Some(0));
        // The current image is the newest: nothing to go forward to.
        let c = vec![
            cand("v3", 3, true, false, false),
            cand("v2", 2, false, true, false),
        ];
        assert_eq!(preselect_forward(&c), None);
        // Undated tags (the registry gave no date) are never guessed to be newer.
        let mut undated = cand("x", 9, false, false, false);
        undated.created = None;
        let c = vec![cand("v3", 3, true, false, false), undated];
        assert_eq!(preselect_forward(&c), None);
    }
}
