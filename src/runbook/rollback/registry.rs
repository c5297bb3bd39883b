//! The registry's side of a rollback or deploy: the tags of the service's repository beside the
//! images on the server, and the pull (on the server, through the engine, with the login berth
//! found) of a tag that is not there yet. A registry that cannot answer is a note, never a reason
//! to hide what the server has.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptions;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::super::{Runner, short};
use super::Candidate;
use crate::engine::Engine;
use crate::registry::{
    Credentials, DETAILED_TAGS, ImageRef, Listing, RegistryClient, RegistryError, find_credentials,
    hosts_for, list_tags,
};
use crate::ssh::{PromptAnswer, PromptRequest};

/// How often a pull's progress line is sent (the run view replaces it in place).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// What the progress line starts with: the CLI sends these to stderr, the run view keeps the last.
pub const PROGRESS_PREFIX: &str = "pull: ";

/// Runs `op` against `repo`'s registry with the login berth finds for it (the server's docker
/// config, then this machine's, then one typed earlier while connected). When none is found and
/// the registry answers 401, the engine's prompter (the tty, the console's popup) is asked once for
/// a username and password, and `op` runs again with them; a login the registry accepts is kept
/// in memory for the connection, never written. Problems reading a config are kept for the
/// message when a login is needed. Returns what `op` gave and the login it used.
pub(crate) async fn with_login<T, F, Fut>(
    engine: &Engine,
    repo: &str,
    op: F,
) -> Result<(T, Option<Credentials>), RegistryError>
where
    F: Fn(Arc<RegistryClient>) -> Fut,
    Fut: std::future::Future<Output = Result<T, RegistryError>> + Send,
{
    let image = ImageRef::parse(repo).map_err(RegistryError::Credentials)?;
    let (found, problems) = find_credentials(&hosts_for(engine), &image).await;
    let typed = |(username, password): (String, crate::ssh::Secret)| Credentials {
        username,
        secret: password.expose().to_string(),
        source: TYPED_SOURCE.into(),
    };
    let credentials = found.or_else(|| engine.typed_logins.get(&image.registry).map(typed));
    if credentials.is_none() && !problems.is_empty() {
        // A login may be needed and the config that would hold it is unreadable: say so early.
        return Err(RegistryError::Credentials(problems.join("; ")));
    }
    let client = Arc::new(RegistryClient::new(image.clone(), credentials.clone())?);
    let first = op(client).await;
    let (Err(e @ RegistryError::NoCredentials { .. }), Some(prompter)) = (&first, &engine.prompter)
    else {
        return first.map(|t| (t, credentials));
    };
    let asked = prompter
        .ask(PromptRequest::RegistryLogin {
            registry: crate::format::printable(&image.registry),
        })
        .await;
    let PromptAnswer::Login { username, password } = asked else {
        return Err(e.clone());
    };
    let login = typed((username.clone(), password.clone()));
    let client = Arc::new(RegistryClient::new(image.clone(), Some(login.clone()))?);
    match op(client).await {
        Ok(t) => {
            engine
                .typed_logins
                .remember(&image.registry, username, password);
            Ok((t, Some(login)))
        }
        Err(RegistryError::Refused {
            registry,
            repository,
            reason,
        }) => Err(RegistryError::TypedRefused {
            registry,
            repository,
            reason,
        }),
        Err(e) => Err(e),
    }
}

/// Where a typed login came from, in the plan's pull step.
const TYPED_SOURCE: &str = "the username and password typed at the prompt";

/// The engine's CPU architecture, to pick the right image of a manifest list.
async fn engine_arch(engine: &Engine) -> String {
    engine
        .docker
        .version()
        .await
        .ok()
        .and_then(|v| v.arch)
        .unwrap_or_else(|| "amd64".into())
}

/// Adds the registry's tags of `repo` to `cands` (marking those the server has too) and returns
/// a note for the list: why the registry is missing, or how much of it is described.
pub async fn add_registry_tags(
    engine: &Engine,
    repo: &str,
    cands: &mut Vec<Candidate>,
) -> Option<String> {
    let arch = engine_arch(engine).await;
    let listing = with_login(engine, repo, |client| {
        let arch = arch.clone();
        async move { list_tags(&client, &arch).await }
    })
    .await
    .map(|(l, _)| l);
    match listing {
        Ok(l) => {
            let image = ImageRef::parse(repo).ok()?;
            merge(cands, &image, &l);
            (l.total > DETAILED_TAGS).then(|| {
                format!(
                    "registry {}: {} tags; digests and dates for the last {DETAILED_TAGS} listed",
                    l.registry, l.total
                )
            })
        }
        Err(e) => Some(format!("{e}; the server's images are listed")),
    }
}

/// Marks the server's images the registry has under the same tag, and adds the tags only the
/// registry has; newest first where a date is known.
pub fn merge(cands: &mut Vec<Candidate>, image: &ImageRef, listing: &Listing) {
    // The engine dates an image to the second, the registry's config blob to the nanosecond: a
    // server image the registry also has takes the registry's date (the same config, if the
    // seconds agree), so two images built within one second still sort in build order.
    for t in &listing.tags {
        let reference = image.with_tag(&t.tag);
        if let Some(c) = cands.iter_mut().find(|c| c.tags.contains(&reference))
            && let (Some(server), Some(registry)) = (c.created, t.created)
            && server.timestamp() == registry.timestamp()
        {
            c.created = Some(registry);
        }
    }
    let current_created = cands.iter().find(|c| c.current).and_then(|c| c.created);
    for t in &listing.tags {
        let reference = image.with_tag(&t.tag);
        if let Some(c) = cands.iter_mut().find(|c| c.tags.contains(&reference)) {
            c.in_registry = true;
            c.registry_digest = t.digest.clone();
            continue;
        }
        cands.push(Candidate {
            id: String::new(),
            tags: vec![reference],
            digests: t
                .digest
                .iter()
                .map(|d| format!("{}@{d}", image.name()))
                .collect(),
            created: t.created,
            size: t.size.map(|s| s as i64).unwrap_or(0),
            current: false,
            previous: false,
            never_ran: matches!((t.created, current_created), (Some(a), Some(b)) if newer(a, b)),
            on_server: false,
            in_registry: true,
            registry_digest: t.digest.clone(),
        });
    }
    cands.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then(b.on_server.cmp(&a.on_server))
            .then(a.label().cmp(&b.label()))
    });
}

/// `a` is newer than `b`, compared to the second when `b` is an engine date (whole seconds):
/// a tag built in the same second as the current image is not called newer.
fn newer(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    if b.timestamp_subsec_nanos() == 0 {
        a.timestamp() > b.timestamp()
    } else {
        a > b
    }
}

/// A pull planned because the chosen tag is not on the server.
#[derive(Clone)]
pub(crate) struct PullStep {
    pub step: usize,
    pub reference: String,
    pub registry: String,
    pub digest: Option<String>,
    credentials: Option<Credentials>,
}

impl std::fmt::Debug for PullStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullStep")
            .field("step", &self.step)
            .field("reference", &self.reference)
            .field("digest", &self.digest)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl PullStep {
    /// What the plan says: where from, which digest, whose login (never the login itself).
    pub fn describe(&self) -> String {
        format!(
            "pull {} ({}) from {} onto the server{}",
            self.reference,
            self.digest
                .as_deref()
                .map(short_digest)
                .unwrap_or("digest unknown"),
            self.registry,
            match &self.credentials {
                Some(c) => format!(", logged in with {}", c.source),
                None => ", anonymously".into(),
            }
        )
    }
}

fn short_digest(d: &str) -> &str {
    let end = d.find(':').map(|i| i + 13).unwrap_or(12).min(d.len());
    &d[..end]
}

/// Checks with the registry that `reference` exists and plans its pull; the error is the
/// registry's reason in one line (unknown tag, refused login, down, not a registry).
pub(crate) async fn plan_pull(engine: &Engine, reference: &str) -> Result<PullStep, RegistryError> {
    let image = ImageRef::parse(reference).map_err(RegistryError::Credentials)?;
    let tag = image
        .digest
        .clone()
        .or(image.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let (digest, credentials) = with_login(engine, &image.name(), |client| {
        let tag = tag.clone();
        async move { client.digest(&tag).await }
    })
    .await?;
    Ok(PullStep {
        step: 0,
        reference: reference.to_string(),
        registry: image.registry.clone(),
        digest,
        credentials,
    })
}

/// One layer as the engine's pull stream reports it.
#[derive(Default)]
struct Layer {
    current: u64,
    total: u64,
    done: bool,
}

/// Pulls on the server through the engine, reporting layers, bytes and rate; a cancel stops the
/// pull (the engine abandons it when the request goes). Returns the pulled image's id and a summary.
pub(crate) async fn pull(
    p: &PullStep,
    engine: &Engine,
    run: &mut Runner,
) -> Result<(String, String), String> {
    let image = ImageRef::parse(&p.reference)?;
    let credentials = p.credentials.as_ref().map(|c| DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.secret.clone()),
        serveraddress: Some(image.registry.clone()),
        ..Default::default()
    });
    let (from_image, tag) = match (&image.digest, &image.tag) {
        (Some(d), _) => (format!("{}@{d}", image.name()), String::new()),
        (None, t) => (image.name(), t.clone().unwrap_or_else(|| "latest".into())),
    };
    let options = CreateImageOptions {
        from_image: Some(from_image),
        tag: (!tag.is_empty()).then_some(tag),
        ..Default::default()
    };
    let mut stream = engine.docker.create_image(Some(options), None, credentials);
    let started = Instant::now();
    let mut last_sent = Instant::now();
    let mut layers: BTreeMap<String, Layer> = BTreeMap::new();
    let cancel = run.cancel.clone();
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            _ = cancel.cancelled() => return Err("pull cancelled; nothing was changed".into()),
        };
        let Some(item) = next else { break };
        let info = item.map_err(|e| pull_error(e, &p.reference))?;
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            return Err(format!("the pull of {} failed: {e}", p.reference));
        }
        let (Some(id), Some(status)) = (info.id, info.status) else {
            continue;
        };
        // Only layer lines: "Pulling from …", "Digest: …" and "Status: …" also carry an id.
        const LAYER_STATUSES: [&str; 8] = [
            "Pulling fs layer",
            "Waiting",
            "Downloading",
            "Verifying Checksum",
            "Download complete",
            "Extracting",
            "Pull complete",
            "Already exists",
        ];
        if !LAYER_STATUSES.contains(&status.as_str()) {
            continue;
        }
        let layer = layers.entry(id).or_default();
        match status.as_str() {
            "Downloading" => {
                if let Some(d) = info.progress_detail {
                    layer.current = d.current.unwrap_or(0).max(0) as u64;
                    layer.total = d.total.unwrap_or(0).max(0) as u64;
                }
            }
            "Download complete" | "Verifying Checksum" => layer.current = layer.total,
            "Pull complete" | "Already exists" => {
                layer.current = layer.total;
                layer.done = true;
            }
            _ => {}
        }
        if last_sent.elapsed() >= PROGRESS_EVERY {
            last_sent = Instant::now();
            run.out(p.step, progress_line(&layers, started.elapsed()))
                .await;
        }
    }
    run.out(p.step, progress_line(&layers, started.elapsed()))
        .await;
    let inspect = engine
        .docker
        .inspect_image(&p.reference)
        .await
        .map_err(|e| {
            format!(
                "the pull ended but {} is not on the server: {e}",
                p.reference
            )
        })?;
    let id = inspect.id.unwrap_or_default();
    let bytes: u64 = layers.values().map(|l| l.total).sum();
    let message = format!(
        "pulled {} ({}): {} layer(s), {} in {:.1} s",
        p.reference,
        short(&id),
        layers.len(),
        crate::format::bytes(bytes),
        started.elapsed().as_secs_f64()
    );
    Ok((id, message))
}

/// The engine's refusal in one line: the registry's reason is in its message.
fn pull_error(e: bollard::errors::Error, reference: &str) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            format!("the pull of {reference} failed: {}", message.trim())
        }
        e => format!("the pull of {reference} failed: {e}"),
    }
}

/// `pull: [########----] 2/3 layers · 12.0 MiB/40.0 MiB · 5.1 MiB/s`.
fn progress_line(layers: &BTreeMap<String, Layer>, elapsed: Duration) -> String {
    let done = layers.values().filter(|l| l.done).count();
    let current: u64 = layers.values().map(|l| l.current).sum();
    let total: u64 = layers.values().map(|l| l.total).sum();
    let fraction = if total > 0 {
        current as f64 / total as f64
    } else if !layers.is_empty() {
        done as f64 / layers.len() as f64
    } else {
        0.0
    };
    let filled = (fraction * 20.0).round().clamp(0.0, 20.0) as usize;
    let rate = current as f64 / elapsed.as_secs_f64().max(0.001);
    format!(
        "{PROGRESS_PREFIX}[{}{}] {done}/{} layers · {}/{} · {}/s",
        "#".repeat(filled),
        "-".repeat(20 - filled),
        layers.len(),
        crate::format::bytes(current),
        crate::format::bytes(total),
        crate::format::bytes(rate as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RemoteTag;

    #[test]
    fn registry_tags_join_the_servers_images() {
        let at = |h: i64| DateTime::from_timestamp(1_700_000_000 + h * 3600, 0);
        let server = |tag: &str, h: i64, current: bool| Candidate {
            id: format!("sha256:{tag}"),
            tags: vec![format!("127.0.0.1:5000/app:{tag}")],
            digests: vec![],
            created: at(h),
            size: 1,
            current,
            previous: false,
            never_ran: false,
            on_server: true,
            in_registry: false,
            registry_digest: None,
        };
        // v1 as `candidates` marks it: the previous release (the newest built before v2).
        let mut cands = vec![server("v2", 2, true), server("v1", 1, false)];
        cands[1].previous = true;
        let remote = |tag: &str, h: Option<i64>| RemoteTag {
            tag: tag.into(),
            digest: Some(format!("sha256:{tag}{tag}")),
            created: h.and_then(at),
            size: Some(10),
        };
        let listing = Listing {
            registry: "127.0.0.1:5000".into(),
            repository: "app".into(),
            tags: vec![
                remote("v3", Some(3)),
                remote("v2", Some(2)),
                remote("v0", None),
            ],
            total: 3,
        };
        merge(
            &mut cands,
            &ImageRef::parse("127.0.0.1:5000/app").unwrap(),
            &listing,
        );
        let shown: Vec<(String, &str)> = cands.iter().map(|c| (c.label(), c.place())).collect();
        assert_eq!(
            shown,
            vec![
                ("127.0.0.1:5000/app:v3".into(), "in registry"),
                ("127.0.0.1:5000/app:v2".into(), "on server · in registry"),
                ("127.0.0.1:5000/app:v1".into(), "on server"),
                ("127.0.0.1:5000/app:v0".into(), "in registry"),
            ]
        );
        assert_eq!(cands[1].digest(), Some("sha256:v2v2"));
        assert!(cands[0].never_ran, "newer than the current image");
        // What is only in the registry is never the default pick: a plain rollback pulls nothing.
        assert_eq!(super::super::preselect(&cands), Some(2));
    }

    #[test]
    fn tags_built_in_the_same_second_keep_their_build_order() {
        // The engine says 12:00:00 for v2; the registry says v1 12:00:00.2, v2 12:00:00.5,
        // v3 12:00:00.8. v1 is older than what runs, not "newer · never ran".
        let at = |ms: i64| DateTime::from_timestamp_millis(1_700_000_000_000 + ms);
        let mut cands = vec![Candidate {
            id: "sha256:v2".into(),
            tags: vec!["127.0.0.1:5000/app:v2".into()],
            digests: vec![],
            created: at(0),
            size: 1,
            current: true,
            previous: false,
            never_ran: false,
            on_server: true,
            in_registry: false,
            registry_digest: None,
        }];
        let remote = |tag: &str, ms: i64| RemoteTag {
            tag: tag.into(),
            digest: Some(format!("sha256:{tag}{tag}")),
            created: at(ms),
            size: Some(10),
        };
        let listing = Listing {
            registry: "127.0.0.1:5000".into(),
            repository: "app".into(),
            tags: vec![remote("v1", 200), remote("v2", 500), remote("v3", 800)],
            total: 3,
        };
        merge(
            &mut cands,
            &ImageRef::parse("127.0.0.1:5000/app").unwrap(),
            &listing,
        );
        let order: Vec<(String, bool)> = cands.iter().map(|c| (c.label(), c.never_ran)).collect();
        assert_eq!(
            order,
            vec![
                ("127.0.0.1:5000/app:v3".into(), true),
                ("127.0.0.1:5000/app:v2".into(), false),
                ("127.0.0.1:5000/app:v1".into(), false),
            ]
        );
    }

    #[test]
    fn progress_reads_as_a_bar() {
        let mut layers = BTreeMap::new();
        layers.insert(
            "a".to_string(),
            Layer {
                current: 512,
                total: 1024,
                done: false,
            },
        );
        layers.insert(
            "b".to_string(),
            Layer {
                current: 1024,
                total: 1024,
                done: true,
            },
        );
        let l = progress_line(&layers, Duration::from_secs(1));
        assert!(
            l.starts_with("pull: [###############-----] 1/2 layers · "),
            "{l}"
        );
        assert!(l.ends_with("/s"), "{l}");
    }
}
