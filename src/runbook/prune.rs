//! Prune that never eats rollback images: what goes is computed here (stopped containers, unused
//! images, unused networks, build cache, volumes only when asked) and removed one by one. Each
//! service's current image and the newest N others of its repository are always kept, as is anything
//! a kept `-berth-kept-` container uses. Kept containers go only beyond the `keep_old` releases of
//! their service, or when their compose project is gone. The engine's blanket
//! `/images/prune?dangling=false` is never called: it is what deleted Kamal's rollback images
//! (kamal #1922).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bollard::query_parameters::{
    ListImagesOptions, ListNetworksOptions, ListVolumesOptions, PruneBuildOptions,
    RemoveContainerOptions, RemoveImageOptions, RemoveVolumeOptions,
};
use serde::Serialize;

use super::{Plan, PlanKind, RunbookError, Runner, Step, eng, plan_base, short};
use crate::config::Config;
use crate::engine::model::{Container, split_image};
use crate::engine::{Engine, EngineError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PruneRequest {
    /// Images kept per repository besides the current one (`None`: config `[runbook] keep_images`).
    pub keep: Option<usize>,
    pub volumes: bool,
    /// Only touch containers, images (by repository), networks and volumes whose name starts with this
    /// prefix; build cache is left alone. For tests on a shared engine and for careful operators.
    pub only: Option<String>,
}

/// What prune would remove and keep.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneSet {
    pub containers: Vec<(String, String)>,
    /// Kept containers of earlier releases that go: (id, name, why).
    pub kept_containers: Vec<(String, String, String)>,
    /// (reference to remove: a tag, or the id of an untagged image), size if the image goes entirely.
    pub images: Vec<(String, i64)>,
    pub networks: Vec<(String, String)>,
    pub volumes: Vec<String>,
    pub build_cache: bool,
    /// Build cache not in use by a running build, as `docker system df` counts it reclaimable.
    pub build_cache_bytes: i64,
    /// Size of the volumes listed (only when volumes were asked for).
    pub volume_bytes: i64,
    /// Images kept because rollback may need them: (repository, kept references).
    pub kept: BTreeMap<String, Vec<String>>,
    pub reclaim_bytes: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct PrunePlan {
    set: PruneSet,
    steps: Steps,
}

#[derive(Debug, Clone, Default)]
struct Steps {
    containers: Option<usize>,
    kept_containers: Option<usize>,
    images: Option<usize>,
    networks: Option<usize>,
    build: Option<usize>,
    volumes: Option<usize>,
}

struct Img {
    id: String,
    tags: Vec<String>,
    created: i64,
    size: i64,
}

fn engine_err(engine: &Engine, e: bollard::errors::Error) -> RunbookError {
    RunbookError::Engine(EngineError::from_bollard(
        &engine.target.endpoint.to_string(),
        e,
    ))
}

/// Computes what prune would do. Reads the engine only.
pub async fn plan_prune(
    engine: &Engine,
    config: &Config,
    req: &PruneRequest,
) -> Result<Plan, RunbookError> {
    let d = &engine.docker;
    let containers = engine.containers().await?;
    let images = d
        .list_images(Some(ListImagesOptions {
            all: false,
            ..Default::default()
        }))
        .await
        .map_err(|e| engine_err(engine, e))?
        .into_iter()
        .map(|i| Img {
            id: i.id,
            tags: i
                .repo_tags
                .into_iter()
                .filter(|t| t != "<none>:<none>")
                .collect(),
            created: i.created,
            size: i.size,
        })
        .collect::<Vec<_>>();
    let networks = d
        .list_networks(None::<ListNetworksOptions>)
        .await
        .map_err(|e| engine_err(engine, e))?;
    let volumes = if req.volumes {
        let mut f = HashMap::new();
        f.insert("dangling".to_string(), vec!["true".to_string()]);
        d.list_volumes(Some(ListVolumesOptions { filters: Some(f) }))
            .await
            .map_err(|e| engine_err(engine, e))?
            .volumes
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let in_scope = |name: &str| req.only.as_deref().is_none_or(|p| name.starts_with(p));
    let set = compute(config, req, &containers, &images, &in_scope, |n| {
        networks
            .iter()
            .filter(|net| {
                let name = net.name.clone().unwrap_or_default();
                !is_engine_network(net) && !n.contains(&name) && in_scope(&name)
            })
            .map(|net| {
                (
                    net.id.clone().unwrap_or_default(),
                    net.name.clone().unwrap_or_default(),
                )
            })
            .collect()
    });
    let mut set = set;
    set.volumes = volumes
        .into_iter()
        .map(|v| v.name)
        .filter(|n| in_scope(n))
        .collect();
    set.build_cache = req.only.is_none();
    // Sizes the image list does not give; a failure here only costs the figure, never the plan.
    if let Ok(usage) = crate::stats::df::disk_usage(engine).await {
        if set.build_cache {
            set.build_cache_bytes = usage.build_cache.reclaimable as i64;
        }
        set.volume_bytes = set
            .volumes
            .iter()
            .filter_map(|v| usage.volume_sizes.get(v))
            .sum::<u64>() as i64;
    }

    let keep_n = req.keep.unwrap_or(config.runbook.keep_images);
    let title = format!(
        "prune (keeping each service's current image and {keep_n} earlier one(s) for rollback)"
    );
    let mut plan = plan_base(
        engine,
        title,
        "prune",
        req.only.as_deref().unwrap_or("engine"),
        true,
    );
    plan.parameters =
        serde_json::json!({ "keep": keep_n, "volumes": req.volumes, "only": req.only });
    for (repo, refs) in &set.kept {
        plan.notes
            .push(format!("keep for rollback: {repo}: {}", refs.join(", ")));
    }
    plan.notes.push(format!(
        "space reclaimed by images: {:.1} MB",
        set.reclaim_bytes as f64 / 1e6
    ));
    if set.build_cache {
        plan.notes.push(format!(
            "space reclaimed by build cache: {:.1} MB",
            set.build_cache_bytes as f64 / 1e6
        ));
    }
    if req.volumes {
        plan.notes.push(format!(
            "space reclaimed by volumes: {:.1} MB",
            set.volume_bytes as f64 / 1e6
        ));
    }
    let mut steps = Steps::default();
    if !set.containers.is_empty() {
        steps.containers = Some(plan.steps.len());
        plan.steps.push(Step::new(
            format!(
                "remove {} stopped container(s): {}",
                set.containers.len(),
                set.containers
                    .iter()
                    .map(|c| c.1.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            set.containers
                .iter()
                .map(|c| format!("DELETE /containers/{}", short(&c.0)))
                .collect(),
        ));
    }
    if !set.kept_containers.is_empty() {
        steps.kept_containers = Some(plan.steps.len());
        plan.steps.push(Step::new(
            format!(
                "remove {} kept container(s) of earlier releases: {}",
                set.kept_containers.len(),
                set.kept_containers
                    .iter()
                    .map(|c| format!("{} ({})", c.1, c.2))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            set.kept_containers
                .iter()
                .map(|c| format!("DELETE /containers/{}", short(&c.0)))
                .collect(),
        ));
    }
    plan.notes.push(format!(
        "kept containers (<name>-berth-kept-<time>): each service keeps its newest {} release(s) (keep_old); older ones and those whose compose project is gone are removed",
        config.runbook.keep_old
    ));
    if !set.images.is_empty() {
        steps.images = Some(plan.steps.len());
        plan.steps.push(Step::new(
            format!(
                "remove {} unused image reference(s): {}",
                set.images.len(),
                set.images
                    .iter()
                    .map(|i| i.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            set.images
                .iter()
                .map(|i| format!("DELETE /images/{}", i.0))
                .collect(),
        ));
    }
    if !set.networks.is_empty() {
        steps.networks = Some(plan.steps.len());
        plan.steps.push(Step::new(
            format!(
                "remove {} unused network(s): {}",
                set.networks.len(),
                set.networks
                    .iter()
                    .map(|n| n.1.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            set.networks
                .iter()
                .map(|n| format!("DELETE /networks/{}", n.1))
                .collect(),
        ));
    }
    if set.build_cache {
        steps.build = Some(plan.steps.len());
        plan.steps.push(Step::new(
            "remove unused build cache",
            vec!["POST /build/prune".into()],
        ));
    }
    if req.volumes {
        plan.notes
            .push("VOLUMES: data in the volumes listed below is deleted for good".into());
        if !set.volumes.is_empty() {
            steps.volumes = Some(plan.steps.len());
            plan.steps.push(Step::new(
                format!(
                    "remove {} unused volume(s) and their data: {}",
                    set.volumes.len(),
                    set.volumes.join(", ")
                ),
                set.volumes
                    .iter()
                    .map(|v| format!("DELETE /volumes/{v}"))
                    .collect(),
            ));
        }
    }
    // What the plan lists as removed is read back: each of them is gone from the engine.
    use super::postcondition::{Expect, Promise, Resource};
    let promised: [(Resource, &str, Vec<String>); 4] = [
        (
            Resource::Container,
            "stopped container(s)",
            set.containers.iter().map(|c| c.0.clone()).collect(),
        ),
        (
            Resource::Image,
            "image reference(s)",
            set.images.iter().map(|i| i.0.clone()).collect(),
        ),
        (
            Resource::Network,
            "network(s)",
            set.networks.iter().map(|n| n.1.clone()).collect(),
        ),
        (
            Resource::Volume,
            "volume(s)",
            if req.volumes {
                set.volumes.clone()
            } else {
                Vec::new()
            },
        ),
    ];
    for (kind, what, names) in promised {
        if !names.is_empty() {
            plan.promises.push(Promise::new(
                format!("the {} {what} listed are gone", names.len()),
                Expect::Gone { kind, names },
            ));
        }
    }
    plan.kind = PlanKind::Prune(PrunePlan { set, steps });
    Ok(plan)
}

fn compute(
    config: &Config,
    req: &PruneRequest,
    containers: &[Container],
    images: &[Img],
    in_scope: &dyn Fn(&str) -> bool,
    networks: impl FnOnce(&BTreeSet<String>) -> Vec<(String, String)>,
) -> PruneSet {
    let mut set = PruneSet::default();
    let stopped =
        |c: &Container| !c.state.is_up() && c.state != crate::engine::model::State::Removing;
    for c in containers {
        // A kept old container is the way back from a rollback: prune never touches it.
        // Nor a run journal: a cut-off run's recovery needs it.
        if stopped(c) && !c.is_kept() && !c.is_run_journal() && !c.is_lock() && in_scope(&c.name) {
            set.containers.push((c.id.clone(), c.name.clone()));
        }
    }
    set.kept_containers = old_kept(config, containers, in_scope);
    let removed: BTreeSet<&str> = set
        .containers
        .iter()
        .map(|c| c.0.as_str())
        .chain(set.kept_containers.iter().map(|c| c.0.as_str()))
        .collect();
    let remaining: Vec<&Container> = containers
        .iter()
        .filter(|c| !removed.contains(c.id.as_str()))
        .collect();
    let used_nets: BTreeSet<String> = remaining
        .iter()
        .flat_map(|c| c.networks.iter().map(|n| n.network.clone()))
        .collect();
    set.networks = networks(&used_nets);

    let mut keep: BTreeSet<String> = remaining.iter().map(|c| c.image_id.clone()).collect();
    // Every repository a container (of any state, kept ones too) was started from: keep its newest N
    // besides what runs, which are the images rollback offers.
    let mut repos: BTreeMap<String, usize> = BTreeMap::new();
    for c in containers {
        let repo = if c.image.starts_with("sha256:") {
            images
                .iter()
                .find(|i| i.id == c.image_id)
                .and_then(|i| i.tags.first())
                .map(|t| split_image(t).0.to_string())
        } else {
            Some(split_image(&c.image).0.to_string())
        };
        if let Some(repo) = repo {
            let n = c
                .service
                .as_deref()
                .and_then(|s| config.service(c.project.as_deref(), s))
                .and_then(|s| s.keep_images)
                .or(req.keep)
                .unwrap_or(config.runbook.keep_images);
            let e = repos.entry(repo).or_insert(n);
            *e = (*e).max(n);
        }
    }
    // Why each kept image stays, for the dry run.
    let mut why: BTreeMap<String, String> = BTreeMap::new();
    for c in &remaining {
        why.entry(c.image_id.clone()).or_insert_with(|| {
            if c.is_kept() {
                format!("kept container {} uses it", c.name)
            } else if c.state.is_up() {
                format!("{} runs it", c.name)
            } else {
                format!("container {} uses it", c.name)
            }
        });
    }
    let repo_of_image = |id: &str| -> Option<String> {
        images
            .iter()
            .find(|i| i.id == id)
            .and_then(|i| i.tags.first())
            .map(|t| split_image(t).0.to_string())
    };
    // The previous release of every serving container: what it ran before (a kept, stopped or
    // replaced container), else the newest image of its repository built before its own. No
    // `--keep` value removes it.
    for c in remaining.iter().filter(|c| c.state.is_up() && !c.is_kept()) {
        let repo = repo_of_image(&c.image_id);
        let in_repo: Vec<(String, i64)> = images
            .iter()
            .filter(|i| {
                repo.as_deref()
                    .is_some_and(|r| i.tags.iter().any(|t| split_image(t).0 == r))
            })
            .map(|i| (i.id.clone(), i.created))
            .collect();
        let created = images
            .iter()
            .find(|i| i.id == c.image_id)
            .map(|i| i.created);
        let prev = super::rollback::previous_release(c, containers, &in_repo, created);
        if let Some(p) = prev
            && keep.insert(p.clone())
        {
            why.insert(p, format!("previous release of {}", c.name));
        }
    }
    for (repo, n) in &repos {
        let mut of_repo: Vec<&Img> = images
            .iter()
            .filter(|i| i.tags.iter().any(|t| split_image(t).0 == repo))
            .collect();
        of_repo.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        // Rollback goes back: the N kept besides what runs are the newest ones older than the
        // newest image a serving container of this repository runs (all, when none runs).
        let current_created = of_repo
            .iter()
            .filter(|i| {
                remaining
                    .iter()
                    .any(|c| c.image_id == i.id && c.state.is_up() && !c.is_kept())
            })
            .map(|i| i.created)
            .max();
        let mut kept_refs = Vec::new();
        let mut others = 0;
        for i in of_repo {
            let runs = remaining
                .iter()
                .any(|c| c.image_id == i.id && c.state.is_up() && !c.is_kept());
            if !runs {
                let older = current_created.is_none_or(|c| i.created <= c);
                if older && others < *n {
                    others += 1;
                    if keep.insert(i.id.clone()) {
                        why.insert(
                            i.id.clone(),
                            format!("one of the {n} newest before the current"),
                        );
                    }
                } else if !keep.contains(&i.id) {
                    continue;
                }
            }
            let name = i
                .tags
                .iter()
                .find(|t| split_image(t).0 == repo)
                .cloned()
                .unwrap_or_else(|| short(&i.id).to_string());
            kept_refs.push(match why.get(&i.id) {
                Some(w) => format!("{name} ({w})"),
                None => name,
            });
        }
        set.kept.insert(repo.clone(), kept_refs);
    }
    for i in images {
        if keep.contains(&i.id) {
            continue;
        }
        if i.tags.is_empty() {
            if req.only.is_none() {
                set.images.push((i.id.clone(), i.size));
                set.reclaim_bytes += i.size;
            }
            continue;
        }
        let tags: Vec<&String> = i.tags.iter().filter(|t| in_scope(t)).collect();
        if tags.len() == i.tags.len() {
            set.reclaim_bytes += i.size;
        }
        for (k, t) in tags.iter().enumerate() {
            set.images.push((
                (*t).clone(),
                if k == 0 && tags.len() == i.tags.len() {
                    i.size
                } else {
                    0
                },
            ));
        }
    }
    set
}

/// Kept copies that go: those beyond their service's `keep_old` newest releases, and every one
/// whose compose project has no other container left (`docker compose down` removed it).
fn old_kept(
    config: &Config,
    containers: &[Container],
    in_scope: &dyn Fn(&str) -> bool,
) -> Vec<(String, String, String)> {
    use super::rollback::{is_kept_copy, kept_beyond};
    let mut by_service: BTreeMap<(Option<String>, String), Vec<&Container>> = BTreeMap::new();
    for c in containers.iter().filter(|c| is_kept_copy(c)) {
        let key = match &c.service {
            Some(s) => (c.project.clone(), s.clone()),
            None => (
                None,
                c.labels
                    .get(crate::engine::model::LABEL_KEPT_NAME)
                    .cloned()
                    .unwrap_or_default(),
            ),
        };
        by_service.entry(key).or_default().push(c);
    }
    let mut out = Vec::new();
    for ((project, service), kept) in by_service {
        let gone = project.as_deref().is_some_and(|p| {
            !containers
                .iter()
                .any(|o| !is_kept_copy(o) && o.project.as_deref() == Some(p))
        });
        let releases = super::rollback::kept::group(kept.into_iter());
        let (going, why) = if gone {
            (
                kept_beyond(&releases, 0),
                format!("project {} is gone", project.as_deref().unwrap_or_default()),
            )
        } else {
            let n = super::keep_old(config, project.as_deref(), Some(service.as_str()));
            (
                kept_beyond(&releases, n),
                format!("older than the {n} kept release(s) of {service}"),
            )
        };
        out.extend(
            going
                .into_iter()
                .filter(|c| in_scope(&c.name))
                .map(|c| (c.id, c.name, why.clone())),
        );
    }
    out
}

pub(crate) async fn run(
    p: &PrunePlan,
    engine: &Engine,
    run: &mut Runner,
) -> Result<String, String> {
    let d = &engine.docker;
    let mut failures = Vec::new();
    if let Some(i) = p.steps.containers {
        let t = run.start(i).await;
        let mut n = 0;
        for (id, name) in &p.set.containers {
            match d
                .remove_container(
                    id,
                    Some(RemoveContainerOptions {
                        v: false,
                        force: false,
                        link: false,
                    }),
                )
                .await
            {
                Ok(()) => {
                    n += 1;
                    run.out(i, format!("removed {name}")).await;
                }
                Err(e) => run.out(i, format!("kept {name}: {}", eng(engine, e))).await,
            }
        }
        run.finish(i, t, Ok(format!("{n} container(s) removed")))
            .await;
    }
    if let Some(i) = p.steps.kept_containers {
        let t = run.start(i).await;
        let mut n = 0;
        for (id, name, _) in &p.set.kept_containers {
            match super::rollback::remove_kept(engine, id).await {
                Ok(()) => {
                    n += 1;
                    run.out(i, format!("removed {name}")).await;
                }
                Err(e) => {
                    if !failures.contains(&"kept containers") {
                        failures.push("kept containers");
                    }
                    run.out(i, format!("kept {name}: {e}")).await
                }
            }
        }
        run.finish(i, t, Ok(format!("{n} kept container(s) removed")))
            .await;
    }
    if let Some(i) = p.steps.images {
        let t = run.start(i).await;
        let mut n = 0;
        for (r, _) in &p.set.images {
            // noprune=false: an untagged parent goes with its child; force=false: an image a container
            // started meanwhile stays.
            match d
                .remove_image(
                    r,
                    Some(RemoveImageOptions {
                        force: false,
                        noprune: false,
                        platforms: None,
                    }),
                    None,
                )
                .await
            {
                Ok(_) => {
                    n += 1;
                    run.out(i, format!("removed {r}")).await;
                }
                Err(e) => run.out(i, format!("kept {r}: {}", eng(engine, e))).await,
            }
        }
        run.finish(i, t, Ok(format!("{n} image reference(s) removed")))
            .await;
    }
    if let Some(i) = p.steps.networks {
        let t = run.start(i).await;
        let mut n = 0;
        for (id, name) in &p.set.networks {
            match d.remove_network(id).await {
                Ok(()) => {
                    n += 1;
                    run.out(i, format!("removed {name}")).await;
                }
                Err(e) => run.out(i, format!("kept {name}: {}", eng(engine, e))).await,
            }
        }
        run.finish(i, t, Ok(format!("{n} network(s) removed")))
            .await;
    }
    if let Some(i) = p.steps.build {
        let t = run.start(i).await;
        let res = d
            .prune_build(None::<PruneBuildOptions>)
            .await
            .map(|r| {
                format!(
                    "{:.1} MB of build cache reclaimed",
                    r.space_reclaimed.unwrap_or(0) as f64 / 1e6
                )
            })
            .map_err(|e| eng(engine, e));
        if res.is_err() {
            failures.push("build cache");
        }
        run.finish(i, t, res).await;
    }
    if let Some(i) = p.steps.volumes {
        let t = run.start(i).await;
        let mut n = 0;
        for v in &p.set.volumes {
            match d.remove_volume(v, None::<RemoveVolumeOptions>).await {
                Ok(()) => {
                    n += 1;
                    run.out(i, format!("removed volume {v}")).await;
                }
                Err(e) => {
                    run.out(i, format!("kept volume {v}: {}", eng(engine, e)))
                        .await
                }
            }
        }
        run.finish(i, t, Ok(format!("{n} volume(s) removed"))).await;
    }
    if failures.is_empty() {
        Ok(format!(
            "pruned; about {:.1} MB reclaimed from images",
            p.set.reclaim_bytes as f64 / 1e6
        ))
    } else {
        Err(format!("prune incomplete: {} failed", failures.join(", ")))
    }
}

/// A network the engine made and keeps for itself: the default three, and swarm's `ingress` and
/// `docker_gwbridge` (which no container of the user's "uses" while no task is on the node).
/// Prune never plans them.
pub fn is_engine_network(net: &bollard::models::Network) -> bool {
    let name = net.name.as_deref().unwrap_or_default();
    matches!(
        name,
        "bridge" | "host" | "none" | "ingress" | "docker_gwbridge"
    ) || net.ingress == Some(true)
        || net
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key("com.docker.swarm.internal"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::State;

    fn img(id: &str, tags: &[&str], created: i64) -> Img {
        Img {
            id: id.into(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            created,
            size: 1000,
        }
    }

    #[test]
    fn no_keep_value_removes_the_previous_release() {
        // v2 runs; v1 ran before (nothing kept); bad is newer and never ran. --keep 0.
        let mut web = crate::runbook::tests::container("shop-web-1", Some("shop"), Some("web"));
        web.image = "app:v2".into();
        web.image_id = "i2".into();
        let images = vec![
            img("i0", &["app:v0"], 0),
            img("i1", &["app:v1"], 1),
            img("i2", &["app:v2"], 2),
            img("ibad", &["app:bad"], 3),
        ];
        for keep in [0, 1] {
            let req = PruneRequest {
                keep: Some(keep),
                ..Default::default()
            };
            let set = compute(
                &Config::default(),
                &req,
                std::slice::from_ref(&web),
                &images,
                &|_| true,
                |_| Vec::new(),
            );
            let gone: Vec<&str> = set.images.iter().map(|i| i.0.as_str()).collect();
            assert!(!gone.contains(&"app:v1"), "keep {keep}: {gone:?}");
            assert!(gone.contains(&"app:bad"), "keep {keep}: {gone:?}");
            assert_eq!(gone.contains(&"app:v0"), keep < 2, "keep {keep}: {gone:?}");
            // The previous release counts as one of the N older ones.
            let kept = set.kept["app"].join(", ");
            assert!(
                kept.contains("app:v1 (previous release of shop-web-1)"),
                "{kept}"
            );
        }
    }

    #[test]
    fn keeps_current_and_newest_n_of_each_repo() {
        let mut web = crate::runbook::tests::container("shop-web-1", Some("shop"), Some("web"));
        web.image = "app:v3".into();
        web.image_id = "i3".into();
        let mut kept =
            crate::runbook::tests::container("shop-web-1-berth-old-1", Some("shop"), Some("web"));
        kept.id = "kept".into();
        kept.state = State::Exited;
        kept.image = "app:v0".into();
        kept.image_id = "i0".into();
        let mut dead = crate::runbook::tests::container("junk", None, None);
        dead.id = "junk".into();
        dead.state = State::Exited;
        dead.image = "other:1".into();
        dead.image_id = "o1".into();
        let images = vec![
            img("i0", &["app:v0"], 0),
            img("i1", &["app:v1"], 1),
            img("i2", &["app:v2"], 2),
            img("i3", &["app:v3", "app:latest"], 3),
            img("i4", &["app:v4"], 4),
            img("o1", &["other:1"], 1),
            img("o0", &["other:0"], 0),
            img("x", &["unrelated:1"], 5),
            img("dangling", &[], 5),
        ];
        let req = PruneRequest {
            keep: Some(2),
            ..Default::default()
        };
        let set = compute(
            &Config::default(),
            &req,
            &[web, kept, dead],
            &images,
            &|_| true,
            |_| Vec::new(),
        );
        assert_eq!(
            set.containers,
            vec![("junk".to_string(), "junk".to_string())],
            "the kept old container stays"
        );
        let gone: Vec<&str> = set.images.iter().map(|i| i.0.as_str()).collect();
        // app: current i3, the two newest older ones (i2, i1), i0 (the previous release, which the
        // kept container runs); i4 is newer than what runs and never ran: it goes.
        assert!(gone.contains(&"app:v4"), "{gone:?}");
        for keep in ["app:v0", "app:v1", "app:v2", "app:v3", "app:latest"] {
            assert!(!gone.contains(&keep), "{keep} must survive: {gone:?}");
        }
        // other: the stopped container goes, its repo still keeps 2 newest.
        assert!(
            !gone.contains(&"other:1") && !gone.contains(&"other:0"),
            "{gone:?}"
        );
        assert!(gone.contains(&"unrelated:1") && gone.contains(&"dangling"));
        let scoped = PruneRequest {
            keep: Some(2),
            only: Some("app".into()),
            ..Default::default()
        };
        let set = compute(
            &Config::default(),
            &scoped,
            &[],
            &images,
            &|n: &str| n.starts_with("app"),
            |_| Vec::new(),
        );
        assert!(
            set.images.iter().all(|i| i.0.starts_with("app")),
            "{:?}",
            set.images
        );
    }

    #[test]
    fn the_engines_own_networks_are_never_planned() {
        use bollard::models::Network;
        let net = |name: &str| Network {
            name: Some(name.into()),
            ..Default::default()
        };
        for own in ["bridge", "host", "none", "ingress", "docker_gwbridge"] {
            assert!(super::is_engine_network(&net(own)), "{own}");
        }
        let renamed_ingress = Network {
            ingress: Some(true),
            ..net("my-ingress")
        };
        assert!(super::is_engine_network(&renamed_ingress));
        assert!(!super::is_engine_network(&net("shop_default")));
    }
}
