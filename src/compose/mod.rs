//! A compose project as its files on the server declare it: the compose files and `.env` named by
//! the containers' labels, read through the connection berth already has (no compose binary), and
//! the image each service is declared with, so a service running another image shows as drift.
//!
//! Interpolation reads the project's `.env` only. compose also takes variables from the shell of
//! whoever runs it (they win over `.env`); berth cannot know that shell, so a variable set there
//! and not in `.env` is the one thing that can make berth's declared image wrong. A service's
//! `env_file:` sets the container's environment, not the values compose interpolates into the
//! file, so it plays no part here.

pub mod dotenv;
pub mod interpolate;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::model::Container;

pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";

/// A compose or `.env` file larger than this is not read (a real one is a few KiB).
pub const MAX_FILE_BYTES: usize = 1 << 20;
/// Reading a project's files gives up after this long.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Reads files where the engine runs: the local filesystem, or the server over SSH (see
/// `crate::remote`). Paths are the server's, absolute.
pub trait ProjectFiles: Send + Sync {
    /// The file's bytes, or why not (`Ok(None)`: the file does not exist). More than `max` bytes is an error.
    fn read<'a>(&'a self, path: &'a str, max: usize)
    -> BoxFut<'a, Result<Option<Vec<u8>>, String>>;
    /// Replaces `path` with `bytes` atomically (a temp file beside it, keeping its mode, then a
    /// rename), only while it still holds `expected` (the bytes berth read and planned from: an
    /// edit made since is never overwritten), first copying it to `backup` when given, also
    /// through a rename: a run cut off anywhere leaves `backup` whole or absent. A symlink is
    /// written through: its target is replaced, the link stays.
    fn replace<'a>(
        &'a self,
        path: &'a str,
        backup: Option<&'a str>,
        expected: &'a [u8],
        bytes: &'a [u8],
    ) -> BoxFut<'a, Result<(), ReplaceError>>;
}

/// Why a file was not replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplaceError {
    /// The file no longer holds the bytes it was read with: someone changed it since. Nothing
    /// was written.
    Changed,
    /// It could not be written (read-only filesystem, permissions, a dropped link): the reason.
    Failed(String),
}

impl std::fmt::Display for ReplaceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplaceError::Changed => f.write_str("it changed since berth read it"),
            ReplaceError::Failed(why) => f.write_str(why),
        }
    }
}

/// The files of a local engine, on this machine.
pub struct LocalFiles;

impl ProjectFiles for LocalFiles {
    fn read<'a>(
        &'a self,
        path: &'a str,
        max: usize,
    ) -> BoxFut<'a, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move {
            use tokio::io::AsyncReadExt;
            let file = match tokio::fs::File::open(path).await {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.to_string()),
            };
            let mut buf = Vec::new();
            file.take(max as u64 + 1)
                .read_to_end(&mut buf)
                .await
                .map_err(|e| e.to_string())?;
            if buf.len() > max {
                return Err(format!("larger than {} KiB", max >> 10));
            }
            Ok(Some(buf))
        })
    }

    fn replace<'a>(
        &'a self,
        path: &'a str,
        backup: Option<&'a str>,
        expected: &'a [u8],
        bytes: &'a [u8],
    ) -> BoxFut<'a, Result<(), ReplaceError>> {
        Box::pin(async move {
            let failed = |what: &std::path::Path, e: std::io::Error| {
                ReplaceError::Failed(match e.kind() {
                    std::io::ErrorKind::ReadOnlyFilesystem => format!(
                        "{} is on a read-only filesystem: berth cannot write it",
                        what.display()
                    ),
                    _ => format!("{}: {e}", what.display()),
                })
            };
            // Through a symlink to the file it names: the rename replaces that file, not the link.
            let real = tokio::fs::canonicalize(path)
                .await
                .map_err(|e| failed(std::path::Path::new(path), e))?;
            let holds_expected = |now: &[u8]| now == expected;
            let now = tokio::fs::read(&real).await.map_err(|e| failed(&real, e))?;
            if !holds_expected(&now) {
                return Err(ReplaceError::Changed);
            }
            if let Some(b) = backup {
                // The copy is renamed into place, so a cut-off run leaves a whole copy or none.
                let part = std::path::PathBuf::from(format!("{b}.berth-tmp"));
                tokio::fs::copy(&real, &part)
                    .await
                    .map_err(|e| failed(&part, e))?;
                tokio::fs::rename(&part, b)
                    .await
                    .map_err(|e| failed(std::path::Path::new(b), e))?;
            }
            let mut tmp = real.clone().into_os_string();
            tmp.push(".berth-tmp");
            let tmp = std::path::PathBuf::from(tmp);
            // A copy first, so the temp file has the original's mode; then its content.
            tokio::fs::copy(&real, &tmp)
                .await
                .map_err(|e| failed(&tmp, e))?;
            let written = async {
                tokio::fs::write(&tmp, bytes)
                    .await
                    .map_err(|e| failed(&tmp, e))?;
                // The last look before the rename: an edit made while the copy was written wins.
                let now = tokio::fs::read(&real).await.map_err(|e| failed(&real, e))?;
                if !holds_expected(&now) {
                    return Err(ReplaceError::Changed);
                }
                tokio::fs::rename(&tmp, &real)
                    .await
                    .map_err(|e| failed(&real, e))
            }
            .await;
            if written.is_err() {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            written
        })
    }
}

/// How berth reaches a local engine's project files: on this machine for a unix socket, not at
/// all for a TCP engine (its files are on another host berth has no way into).
pub fn local_files(engine: &crate::engine::Engine) -> Option<Arc<dyn ProjectFiles>> {
    match engine.target.endpoint {
        crate::target::Endpoint::Unix(_) => Some(Arc::new(LocalFiles)),
        _ => None,
    }
}

/// Where a project's files are, from one of its containers' labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectKey {
    pub project: String,
    pub working_dir: String,
    /// Absolute paths, in compose's order (later files override earlier ones).
    pub config_files: Vec<String>,
}

impl ProjectKey {
    pub fn of(c: &Container) -> Option<ProjectKey> {
        let project = c.project.clone()?;
        let working_dir = c.labels.get(LABEL_WORKING_DIR)?.clone();
        let files = c.labels.get(LABEL_CONFIG_FILES)?;
        // compose v1 writes the paths relative to the working dir, v2 absolute.
        let config_files = files
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(|f| {
                if f.starts_with('/') {
                    f.to_string()
                } else {
                    format!("{}/{f}", working_dir.trim_end_matches('/'))
                }
            })
            .collect::<Vec<_>>();
        if config_files.is_empty() {
            return None;
        }
        Some(ProjectKey {
            project,
            working_dir,
            config_files,
        })
    }

    pub fn env_path(&self) -> String {
        format!("{}/.env", self.working_dir.trim_end_matches('/'))
    }
}

/// A service's image as its compose files declare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// The interpolated image reference.
    pub image: String,
    /// The text in the file, before interpolation (`app:${TAG}`).
    pub template: String,
    /// Which file the `image:` that counts came from.
    pub file: String,
}

/// What berth read of a project, or why it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectView {
    Read(Project),
    /// A file could not be read: "drift unknown: <path> not readable".
    Unreadable {
        path: String,
        reason: String,
    },
    /// A file was read but is not a compose file berth understands.
    Unparseable {
        path: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub key: ProjectKey,
    /// Service → declared image; a service without `image:` (built) is absent.
    pub services: BTreeMap<String, Declared>,
    /// The project's `.env` as read (empty when there is none).
    pub env_text: String,
    pub env: BTreeMap<String, String>,
}

impl ProjectView {
    /// The one line that says why drift is unknown; `None` when the files were read.
    pub fn unknown_reason(&self) -> Option<String> {
        match self {
            ProjectView::Read(_) => None,
            ProjectView::Unreadable { path, reason } => {
                Some(format!("drift unknown: {path} not readable ({reason})"))
            }
            ProjectView::Unparseable { path, reason } => {
                Some(format!("drift unknown: {path} cannot be parsed: {reason}"))
            }
        }
    }

    pub fn project(&self) -> Option<&Project> {
        match self {
            ProjectView::Read(p) => Some(p),
            _ => None,
        }
    }
}

/// Reads and parses a project's compose files and `.env`, bounded in size and time.
pub async fn load(files: &dyn ProjectFiles, key: &ProjectKey) -> ProjectView {
    match tokio::time::timeout(READ_TIMEOUT, load_inner(files, key)).await {
        Ok(v) => v,
        Err(_) => ProjectView::Unreadable {
            path: key.config_files[0].clone(),
            reason: format!("no answer within {} s", READ_TIMEOUT.as_secs()),
        },
    }
}

async fn load_inner(files: &dyn ProjectFiles, key: &ProjectKey) -> ProjectView {
    let env_path = key.env_path();
    let env_text = match files.read(&env_path, MAX_FILE_BYTES).await {
        Ok(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(None) => String::new(),
        Err(reason) => {
            return ProjectView::Unreadable {
                path: env_path,
                reason,
            };
        }
    };
    let env = dotenv::parse(&env_text);
    let mut texts = Vec::new();
    for path in &key.config_files {
        match files.read(path, MAX_FILE_BYTES).await {
            Ok(Some(b)) => texts.push((path.clone(), String::from_utf8_lossy(&b).into_owned())),
            Ok(None) => {
                return ProjectView::Unreadable {
                    path: path.clone(),
                    reason: "no such file on the server".into(),
                };
            }
            Err(reason) => {
                return ProjectView::Unreadable {
                    path: path.clone(),
                    reason,
                };
            }
        }
    }
    match declared_images(&texts, &env) {
        Ok(services) => ProjectView::Read(Project {
            key: key.clone(),
            services,
            env_text,
            env,
        }),
        Err((path, reason)) => ProjectView::Unparseable { path, reason },
    }
}

/// Each service's declared image across the files, in order: a later file's `image:` wins.
pub fn declared_images(
    files: &[(String, String)],
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Declared>, (String, String)> {
    let mut out = BTreeMap::new();
    for (path, text) in files {
        let fail = |reason: String| (path.clone(), reason);
        let mut doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| fail(e.to_string()))?;
        // `<<: *defaults` (YAML merge keys) is common in compose files' `x-` fragments.
        doc.apply_merge().map_err(|e| fail(e.to_string()))?;
        let Some(services) = doc.get("services") else {
            // An override file may hold only networks or volumes; an empty file is null.
            if doc.is_null() || doc.is_mapping() {
                continue;
            }
            return Err(fail("not a mapping at the top".into()));
        };
        let Some(services) = services.as_mapping() else {
            if services.is_null() {
                continue;
            }
            return Err(fail("`services` is not a mapping".into()));
        };
        for (name, service) in services {
            let Some(name) = name.as_str() else { continue };
            let Some(image) = service.get("image") else {
                continue;
            };
            let Some(template) = image.as_str() else {
                return Err(fail(format!("services.{name}.image is not a string")));
            };
            let image = interpolate::interpolate(template, env)
                .map_err(|e| fail(format!("services.{name}.image: {e}")))?
                .value;
            out.insert(
                name.to_string(),
                Declared {
                    image,
                    template: template.to_string(),
                    file: path.clone(),
                },
            );
        }
    }
    Ok(out)
}

/// `app` means `app:latest` to the engine and to compose alike; `docker.io/library/` is implied.
pub fn normalize_image(image: &str) -> String {
    let image = image
        .strip_prefix("docker.io/library/")
        .or_else(|| image.strip_prefix("docker.io/"))
        .unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Whether a container runs another image than its service declares. `None`: not a compose
/// service, or its service has no `image:` (built from a Dockerfile).
pub fn drifts(c: &Container, project: &Project) -> Option<(bool, String)> {
    let service = c.service.as_deref()?;
    let declared = project.services.get(service)?;
    Some((
        normalize_image(&c.image) != normalize_image(&declared.image),
        declared.image.clone(),
    ))
}

/// Every project the containers belong to, each read once.
pub async fn load_all(
    files: &dyn ProjectFiles,
    containers: &[Container],
) -> BTreeMap<ProjectKey, ProjectView> {
    let mut out = BTreeMap::new();
    for key in containers.iter().filter_map(ProjectKey::of) {
        if let std::collections::btree_map::Entry::Vacant(slot) = out.entry(key) {
            let view = load(files, slot.key()).await;
            slot.insert(view);
        }
    }
    out
}

/// The image a container's service is declared with, when berth could read its project.
pub fn declared_image(c: &Container, views: &BTreeMap<ProjectKey, ProjectView>) -> Option<String> {
    let key = ProjectKey::of(c)?;
    let project = views.get(&key)?.project()?;
    drifts(c, project).map(|(_, image)| image)
}

/// Pinning a rolled-back image in `.env`: which variable, its new value, who else uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinPlan {
    pub env_path: String,
    pub var: String,
    pub old_value: String,
    pub new_value: String,
    /// Every service whose declared image reads the variable (the rolled-back one included).
    pub services: Vec<String>,
}

/// How to make `service`'s declared image read `target` by changing one variable set in `.env`,
/// or why that is not possible.
pub fn pin_for(project: &Project, service: &str, target: &str) -> Result<PinPlan, String> {
    let declared = project
        .services
        .get(service)
        .ok_or_else(|| format!("{service} has no `image:` in its compose files"))?;
    let looked_up = interpolate::interpolate(&declared.template, &project.env)
        .map_err(|e| e.to_string())?
        .vars;
    // Try each variable set in .env: with a marker for its value, what is around the marker is
    // what the rest of the template makes; the target must have the same around it.
    const MARK: &str = "\u{1}berth\u{1}";
    for var in looked_up.iter().filter(|v| project.env.contains_key(*v)) {
        let mut env = project.env.clone();
        env.insert(var.clone(), MARK.into());
        let Ok(marked) = interpolate::interpolate(&declared.template, &env) else {
            continue;
        };
        let v = &marked.value;
        if v.matches(MARK).count() != 1 {
            continue;
        }
        let (before, after) = v.split_once(MARK).unwrap_or_default();
        let Some(value) = target
            .strip_prefix(before)
            .and_then(|t| t.strip_suffix(after))
        else {
            continue;
        };
        if !dotenv::is_plain_value(value) {
            continue;
        }
        let services = project
            .services
            .iter()
            .filter(|(_, d)| {
                interpolate::interpolate(&d.template, &project.env)
                    .is_ok_and(|i| i.vars.contains(var))
            })
            .map(|(name, _)| name.clone())
            .collect();
        return Ok(PinPlan {
            env_path: project.key.env_path(),
            var: var.clone(),
            old_value: project.env.get(var).cloned().unwrap_or_default(),
            new_value: value.to_string(),
            services,
        });
    }
    Err(if looked_up.iter().any(|v| project.env.contains_key(v)) {
        format!(
            "{target} cannot be written as {} by changing one variable of .env",
            declared.template
        )
    } else {
        format!(
            "the image of {service} ({}) takes no variable set in {}: change {} by hand to keep this version",
            declared.template,
            project.key.env_path(),
            declared.file
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn later_files_override_the_image() {
        let base = "x-common: &common\n  restart: always\nservices:\n  web:\n    <<: *common\n    image: app:${TAG:-v1}\n  db:\n    image: postgres\n  built:\n    build: .\n".to_string();
        let over = "services:\n  web:\n    image: app:${OVERRIDE_TAG}\n".to_string();
        let files = vec![("/p/a.yml".to_string(), base.clone())];
        let d = declared_images(&files, &env(&[("TAG", "v2")])).unwrap();
        assert_eq!(d["web"].image, "app:v2");
        assert_eq!(d["web"].template, "app:${TAG:-v1}");
        assert_eq!(d["db"].image, "postgres");
        assert!(!d.contains_key("built"));
        let files = vec![
            ("/p/a.yml".to_string(), base),
            ("/p/b.yml".to_string(), over),
        ];
        let d = declared_images(&files, &env(&[("OVERRIDE_TAG", "v3")])).unwrap();
        assert_eq!(
            (d["web"].image.as_str(), d["web"].file.as_str()),
            ("app:v3", "/p/b.yml")
        );
        assert_eq!(d["db"].image, "postgres");
    }

    #[test]
    fn a_file_berth_cannot_parse_is_named() {
        let files = vec![("/p/c.yml".to_string(), "services: [web\n".to_string())];
        let (path, _) = declared_images(&files, &env(&[])).unwrap_err();
        assert_eq!(path, "/p/c.yml");
        let files = vec![(
            "/p/c.yml".to_string(),
            "services:\n  web:\n    image: app:${TAG:?set TAG}\n".to_string(),
        )];
        let (_, why) = declared_images(&files, &env(&[])).unwrap_err();
        assert!(why.contains("TAG is required"), "{why}");
        // An alias bomb is refused, not expanded.
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            };
            bomb.push_str(&format!(
                "b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        assert!(declared_images(&[("/p/bomb.yml".into(), bomb)], &env(&[])).is_err());
    }

    fn project(template: &str, env_text: &str) -> Project {
        let env = dotenv::parse(env_text);
        let yaml = format!(
            "services:\n  web:\n    image: {template}\n  worker:\n    image: {template}-worker\n  db:\n    image: postgres:16\n"
        );
        let services = declared_images(&[("/srv/p/compose.yml".into(), yaml)], &env).unwrap();
        Project {
            key: ProjectKey {
                project: "p".into(),
                working_dir: "/srv/p".into(),
                config_files: vec!["/srv/p/compose.yml".into()],
            },
            services,
            env_text: env_text.into(),
            env,
        }
    }

    #[test]
    fn pins_the_variable_the_image_reads() {
        let p = project("app:${TAG}", "TAG=v2\n");
        let pin = pin_for(&p, "web", "app:v1").unwrap();
        assert_eq!(
            (
                pin.var.as_str(),
                pin.old_value.as_str(),
                pin.new_value.as_str()
            ),
            ("TAG", "v2", "v1")
        );
        assert_eq!(
            pin.services,
            ["web", "worker"],
            "every service reading TAG is listed"
        );
        assert_eq!(pin.env_path, "/srv/p/.env");
        let p = project("${REPO}:${TAG:-v9}", "REPO=app\nTAG=v2\n");
        assert_eq!(
            pin_for(&p, "web", "app:v1").unwrap().var,
            "TAG",
            "REPO cannot make app:v1"
        );
        let p = project("${IMAGE}", "IMAGE=registry:5000/app:v2\n");
        assert_eq!(
            pin_for(&p, "web", "registry:5000/app:v1")
                .unwrap()
                .new_value,
            "registry:5000/app:v1"
        );
    }

    #[test]
    fn says_why_it_cannot_pin() {
        let p = project("app:${TAG:-v2}", "");
        assert!(
            pin_for(&p, "web", "app:v1")
                .unwrap_err()
                .contains("by hand")
        );
        let p = project("app:${TAG}", "TAG=v2\n");
        assert!(
            pin_for(&p, "web", "other:v1")
                .unwrap_err()
                .contains("cannot be written")
        );
        assert!(pin_for(&p, "web", "sha256:abc").is_err());
        assert!(
            pin_for(&p, "db", "postgres:15")
                .unwrap_err()
                .contains("by hand")
        );
        assert!(pin_for(&p, "nope", "x:1").is_err());
    }

    #[test]
    fn images_compare_as_the_engine_names_them() {
        assert_eq!(normalize_image("nginx"), "nginx:latest");
        assert_eq!(normalize_image("docker.io/library/nginx:1"), "nginx:1");
        assert_eq!(
            normalize_image("registry:5000/app"),
            "registry:5000/app:latest"
        );
        assert_eq!(normalize_image("app@sha256:abc"), "app@sha256:abc");
    }

    #[test]
    fn project_paths_from_labels_v1_and_v2() {
        let mut c = crate::fixtures::replica("shop", "web", 1);
        c.labels
            .insert(LABEL_WORKING_DIR.into(), "/srv/shop".into());
        c.labels.insert(
            LABEL_CONFIG_FILES.into(),
            "docker-compose.yml,/etc/shop/override.yml".into(),
        );
        let k = ProjectKey::of(&c).unwrap();
        assert_eq!(
            k.config_files,
            ["/srv/shop/docker-compose.yml", "/etc/shop/override.yml"]
        );
        assert_eq!(k.env_path(), "/srv/shop/.env");
        c.labels.remove(LABEL_WORKING_DIR);
        assert!(ProjectKey::of(&c).is_none());
    }

    /// The local files' compare before write, through a symlink, on the real filesystem.
    #[test]
    fn local_files_write_only_what_they_read_and_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("shared")).unwrap();
        let target = dir.path().join("shared").join("app.env");
        std::fs::write(&target, "TAG=v2\n").unwrap();
        let env = dir.path().join(".env");
        std::os::unix::fs::symlink(&target, &env).unwrap();
        let (env_s, backup) = (
            env.to_str().unwrap().to_string(),
            dir.path()
                .join(".env.berth-1")
                .to_str()
                .unwrap()
                .to_string(),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let replace = |expected: &'static [u8], bytes: &'static [u8]| {
            rt.block_on(LocalFiles.replace(&env_s, Some(&backup), expected, bytes))
        };
        assert_eq!(
            replace(b"TAG=v3\n", b"TAG=v1\n"),
            Err(ReplaceError::Changed)
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"TAG=v2\n");
        assert!(!std::path::Path::new(&backup).exists());
        assert_eq!(replace(b"TAG=v2\n", b"TAG=v1\n"), Ok(()));
        assert_eq!(std::fs::read(&target).unwrap(), b"TAG=v1\n");
        assert!(
            std::fs::symlink_metadata(&env)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&backup).unwrap(), b"TAG=v2\n");
    }
}

/// How a container's image compares with what its compose files declare, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// It runs the declared image.
    Matches { declared: String },
    /// It runs another image: the next `up -d` recreates it with `declared`.
    Drifted { declared: String },
    /// Its project's files could not be read or parsed; the reason, as one line.
    Unknown(String),
}

/// The drift of one container, when it belongs to a compose service berth has read or tried to
/// read. `None`: not compose, built from a Dockerfile, or its project not read yet.
pub fn drift(c: &Container, views: &BTreeMap<ProjectKey, ProjectView>) -> Option<Drift> {
    if c.is_kept() {
        // A kept copy is set aside on purpose; compose does not see it.
        return None;
    }
    let view = views.get(&ProjectKey::of(c)?)?;
    match view.project() {
        Some(project) => drifts(c, project).map(|(drifted, declared)| {
            if drifted {
                Drift::Drifted { declared }
            } else {
                Drift::Matches { declared }
            }
        }),
        None => view.unknown_reason().map(Drift::Unknown),
    }
}
