//! Database backups written on the server: the dump runs inside the service's container (its kind
//! from the image or `[services."project/service"] backup`) and is streamed by a shell on the
//! server into `<dir>/<project>/<service>/<UTC>.<ext>`, so its bytes never cross the laptop. A
//! sidecar `<file>.json` records size, sha256, duration, image and migration state; the oldest
//! beyond `[backup] keep` are removed; every backup is audited, also one that failed.

pub mod kind;
pub mod shell;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::engine::Engine;
use crate::engine::model::Container;
use kind::{Kind, quote};
use shell::{Server, ShellOutput};

pub const DEFAULT_DIR: &str = "/var/backups/berth";
pub const DEFAULT_KEEP: usize = 7;
/// Migration status kept in the sidecar, at most.
const MIGRATION_MAX: usize = 4000;

/// The sidecar of a dump: what it is and how to check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// `20261207T031500.123Z`: its UTC time, also the file's name.
    pub id: String,
    pub server: String,
    pub project: String,
    pub service: String,
    pub kind: String,
    /// The dump's path on the server.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub started: DateTime<Utc>,
    pub duration_ms: u64,
    pub container: String,
    pub image: String,
    pub image_id: String,
    /// The migration status command's output at that moment, when one is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
    /// Why it was taken, when not asked for by itself: `before restoring …`, `before migrate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The migrations about to be applied when it was taken (`berth migrate`'s backup): a
    /// migration that cannot be undone names this backup as the way back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before_migrations: Vec<String>,
    /// Those of them flagged irreversible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub irreversible: Vec<String>,
    /// The image id of the release that ran those migrations: a rollback to another, older
    /// release crosses them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated_by: Option<String>,
}

impl Meta {
    /// `project/service`, as the audit names it.
    pub fn project_service(&self) -> String {
        format!("{}/{}", self.project, self.service)
    }
}

/// A backup's progress: bytes written so far.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub bytes: u64,
    pub elapsed: Duration,
}

/// What to back up.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub name: String,
    pub project: Option<String>,
    /// Why, for the sidecar and the audit (a safety backup names its restore).
    pub reason: Option<String>,
    /// A dump that `keep` must not remove even when it is the oldest: the one a restore is
    /// about to read, while its safety backup is taken.
    pub spare: Option<String>,
    /// The migrations this backup is taken before (see [`Meta::before_migrations`]).
    pub before_migrations: Vec<String>,
    pub irreversible: Vec<String>,
    pub migrated_by: Option<String>,
}

/// The service's backup settings as the config gives them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `<[backup] dir>/<project>/<service>`
    pub dir: String,
    pub keep: usize,
    pub kind: Kind,
    pub restore: Option<String>,
    pub migrate_status: Option<String>,
}

/// The database container of a service: the first running replica.
#[derive(Debug, Clone)]
pub struct Db {
    pub container: Container,
    pub project: String,
    pub service: String,
    /// `project/service` as the audit names it.
    pub label: String,
}

/// The directory of a service's backups.
pub fn dir_of(config: &Config, project: &str, service: &str) -> String {
    let base = config.backup.dir.as_deref().unwrap_or(DEFAULT_DIR);
    format!("{}/{project}/{service}", base.trim_end_matches('/'))
}

pub fn settings(config: &Config, db: &Db) -> Result<Settings, String> {
    let svc = config.service(Some(&db.project), &db.service);
    let kind = Kind::of(&db.container, svc.and_then(|s| s.backup.as_deref()))?;
    Ok(Settings {
        dir: dir_of(config, &db.project, &db.service),
        keep: config.backup.keep.unwrap_or(DEFAULT_KEEP).max(1),
        kind,
        restore: svc.and_then(|s| s.restore.clone()),
        migrate_status: svc.and_then(|s| s.migrate_status.clone()),
    })
}

pub(crate) async fn run(server: &Server, script: &str) -> Result<ShellOutput, String> {
    server.shell.run(script).await
}

/// `docker exec` of a script in the container, as a shell command on the server.
pub(crate) fn exec_in(server: &Server, container: &str, interactive: bool, script: &str) -> String {
    format!(
        "{} exec {}{} sh -c {}",
        server.docker,
        if interactive { "-i " } else { "" },
        quote(container),
        quote(script)
    )
}

/// The dump itself: the directory checked, the space checked, the dump streamed into a partial
/// file, checksummed, renamed, its sidecar written, old ones pruned.
pub async fn take(
    engine: &Engine,
    server: &Server,
    db: &Db,
    settings: &Settings,
    request: &Request,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Meta, String> {
    let dir = &settings.dir;
    let free = free_space(server, dir).await?;
    let (need, why) = match list_dir(server, dir).await?.last() {
        Some(last) => (
            last.size + last.size / 5,
            "the last backup's size and a fifth",
        ),
        None => match settings.kind.size_script() {
            Some(script) => {
                let out = run(server, &exec_in(server, &db.container.id, false, &script)).await?;
                (
                    out.stdout_text().parse::<u64>().unwrap_or(0),
                    "the database's size",
                )
            }
            None => (0, ""),
        },
    };
    if need > free {
        return Err(format!(
            "not enough free space in {dir} on the server: the dump needs about {} ({why}), {} is free; free some space or set [backup] dir",
            crate::format::bytes(need),
            crate::format::bytes(free)
        ));
    }
    let migration = match &settings.migrate_status {
        Some(cmd) => {
            let out = run(server, &exec_in(server, &db.container.id, false, cmd)).await?;
            let mut text =
                crate::logs::sanitize::plain_lines(&String::from_utf8_lossy(&out.stdout));
            if text.len() > MIGRATION_MAX {
                let cut = (0..=MIGRATION_MAX)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                text.truncate(cut);
            }
            Some(text)
        }
        None => None,
    };
    let now = Utc::now();
    let id = now.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let file = format!("{dir}/{id}.{}", settings.kind.ext());
    let part = format!("{file}.partial");
    let dump = format!(
        "{} > {}",
        exec_in(
            server,
            &db.container.id,
            false,
            &settings.kind.dump_script()
        ),
        quote(&part)
    );
    let started = Instant::now();
    let out = {
        let running = run(server, &dump);
        tokio::pin!(running);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let size = format!("stat -c %s {} 2>/dev/null || echo 0", quote(&part));
        loop {
            tokio::select! {
                out = &mut running => break out,
                _ = tick.tick() => {
                    if let Ok(o) = run(server, &size).await {
                        let bytes = o.stdout_text().parse().unwrap_or(0);
                        progress(Progress { bytes, elapsed: started.elapsed() });
                    }
                }
            }
        }
    };
    let failed = match out {
        Ok(o) if o.ok() => None,
        Ok(o) => Some(o.reason()),
        Err(e) => Some(e),
    };
    let sum = format!(
        "stat -c %s {p} && sha256sum {p} | cut -d' ' -f1",
        p = quote(&part)
    );
    let summed = match failed {
        None => Some(run(server, &sum).await),
        Some(_) => None,
    };
    let (size, sha256) = match (failed, summed) {
        (None, Some(Ok(o))) if o.ok() => {
            let text = o.stdout_text();
            let mut words = text.split_whitespace();
            let size: u64 = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            let sha = words.next().unwrap_or_default().to_string();
            if size == 0 {
                remove(server, &part).await;
                return Err("the dump is empty: nothing was kept".into());
            }
            (size, sha)
        }
        (failed, summed) => {
            remove(server, &part).await;
            let why = failed
                .or_else(|| summed.map(|s| s.map(|o| o.reason()).unwrap_or_else(|e| e)))
                .unwrap_or_default();
            return Err(format!(
                "the dump of {} failed ({why}); the partial file was removed",
                db.label
            ));
        }
    };
    progress(Progress {
        bytes: size,
        elapsed: started.elapsed(),
    });
    let meta = Meta {
        id,
        server: engine.target.name.clone(),
        project: db.project.clone(),
        service: db.service.clone(),
        kind: settings.kind.name().into(),
        file: file.clone(),
        size,
        sha256,
        started: now,
        duration_ms: started.elapsed().as_millis() as u64,
        container: db.container.name.clone(),
        image: db.container.image.clone(),
        image_id: db.container.image_id.clone(),
        migration,
        reason: request.reason.clone(),
        before_migrations: request.before_migrations.clone(),
        irreversible: request.irreversible.clone(),
        migrated_by: request.migrated_by.clone(),
    };
    let json = serde_json::to_string(&meta).map_err(|e| e.to_string())?;
    let keep = format!(
        "mv {p} {f} && printf '%s\\n' {j} > {f}.json",
        p = quote(&part),
        f = quote(&file),
        j = quote(&json)
    );
    let out = run(server, &keep).await?;
    if !out.ok() {
        remove(server, &part).await;
        return Err(format!(
            "cannot keep the dump as {file} on the server ({})",
            out.reason()
        ));
    }
    prune(server, dir, settings.keep, request.spare.as_deref()).await;
    Ok(meta)
}

/// The size and sha256 of a file on the server, read there.
pub async fn checksum(server: &Server, file: &str) -> Result<(u64, String), String> {
    let out = run(
        server,
        &format!(
            "stat -c %s {f} && sha256sum {f} | cut -d' ' -f1",
            f = quote(file)
        ),
    )
    .await?;
    if !out.ok() {
        return Err(format!(
            "cannot read {file} on the server ({})",
            out.reason()
        ));
    }
    let text = out.stdout_text();
    let mut words = text.split_whitespace();
    let size = words.next().and_then(|s| s.parse().ok());
    let sha = words.next().filter(|s| s.len() == 64);
    match (size, sha) {
        (Some(size), Some(sha)) => Ok((size, sha.to_string())),
        _ => Err(format!(
            "cannot read the checksum of {file} on the server: got {text}"
        )),
    }
}

/// Overwrites the database in `container` with the dump `file` on the server: the file is the
/// restore script's stdin, so its bytes go from the server's disk into the container only.
pub async fn restore_from(
    server: &Server,
    container: &str,
    script: &str,
    file: &str,
) -> Result<(), String> {
    let cmd = format!(
        "{} < {}",
        exec_in(server, container, true, script),
        quote(file)
    );
    let out = run(server, &cmd).await?;
    if out.ok() { Ok(()) } else { Err(out.reason()) }
}

/// Copies the dump of `meta` from the server to `dest` here, a chunk at a time, and checks the
/// copy's size and sha256 against the record; a copy that does not match is removed.
pub async fn download(
    server: &Server,
    meta: &Meta,
    dest: &std::path::Path,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<(), String> {
    use sha2::Digest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut part = dest.as_os_str().to_owned();
    part.push(".partial");
    let part = std::path::PathBuf::from(part);
    let mut out = tokio::fs::File::create(&part)
        .await
        .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
    let copied = async {
        let mut from = server.shell.read(&meta.file).await?;
        let mut hash = sha2::Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut bytes = 0u64;
        let started = Instant::now();
        let mut shown = Instant::now();
        loop {
            let n = from
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading {} from the server: {e}", meta.file))?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            out.write_all(&buf[..n])
                .await
                .map_err(|e| format!("writing {}: {e}", part.display()))?;
            bytes += n as u64;
            if shown.elapsed() >= Duration::from_secs(1) {
                shown = Instant::now();
                progress(Progress {
                    bytes,
                    elapsed: started.elapsed(),
                });
            }
        }
        out.flush()
            .await
            .map_err(|e| format!("writing {}: {e}", part.display()))?;
        let sha: String = hash
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if bytes != meta.size || sha != meta.sha256 {
            return Err(format!(
                "the copy of {} does not match its record ({bytes} bytes, sha256 {} here; {} bytes, {} recorded): it was removed; download again",
                meta.file,
                &sha[..12],
                meta.size,
                &meta.sha256[..12.min(meta.sha256.len())]
            ));
        }
        Ok(())
    }
    .await;
    drop(out);
    let renamed = match copied {
        Ok(()) => tokio::fs::rename(&part, dest)
            .await
            .map_err(|e| format!("cannot write {}: {e}", dest.display())),
        Err(e) => Err(e),
    };
    if renamed.is_err() {
        let _ = tokio::fs::remove_file(&part).await;
    }
    renamed
}

/// Bytes free in `dir` on the server (made first); refuses a directory berth cannot write.
async fn free_space(server: &Server, dir: &str) -> Result<u64, String> {
    let d = quote(dir);
    let out = run(
        server,
        &format!("mkdir -p {d} && test -w {d} && df -Pk {d} | tail -n 1"),
    )
    .await?;
    if !out.ok() {
        return Err(format!(
            "the backup directory {dir} on the server is not writable ({}): fix its permissions or set [backup] dir",
            out.reason()
        ));
    }
    let text = out.stdout_text();
    text.split_whitespace()
        .nth(3)
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("cannot read the free space of {dir} on the server: df said {text}"))
}

async fn remove(server: &Server, path: &str) {
    let _ = run(server, &format!("rm -f -- {}", quote(path))).await;
}

/// The backups in one service's directory, oldest first.
pub async fn list_dir(server: &Server, dir: &str) -> Result<Vec<Meta>, String> {
    let script = format!(
        "for f in {}/*.json; do [ -f \"$f\" ] && cat \"$f\"; done; true",
        quote(dir)
    );
    let out = run(server, &script).await?;
    Ok(parse_metas(&out.stdout))
}

/// Every backup under `[backup] dir`, oldest first (by service, then time).
pub async fn list_all(server: &Server, config: &Config) -> Result<Vec<Meta>, String> {
    let base = config.backup.dir.as_deref().unwrap_or(DEFAULT_DIR);
    let script = format!(
        "[ -d {b} ] || exit 0; find {b} -mindepth 3 -maxdepth 3 -name '*.json' -type f -exec cat {{}} +",
        b = quote(base)
    );
    let out = run(server, &script).await?;
    if !out.ok() {
        return Err(format!(
            "cannot list the backups in {base} on the server ({})",
            out.reason()
        ));
    }
    let mut metas = parse_metas(&out.stdout);
    metas.sort_by(|a, b| (&a.project, &a.service, &a.id).cmp(&(&b.project, &b.service, &b.id)));
    Ok(metas)
}

fn parse_metas(bytes: &[u8]) -> Vec<Meta> {
    let mut metas: Vec<Meta> = String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    metas.sort_by(|a, b| a.id.cmp(&b.id));
    metas
}

/// Removes the oldest backups beyond `keep` (the dump and its sidecar), never `spare`.
async fn prune(server: &Server, dir: &str, keep: usize, spare: Option<&str>) {
    let Ok(metas) = list_dir(server, dir).await else {
        return;
    };
    let extra = metas.len().saturating_sub(keep);
    for m in metas
        .iter()
        .take(extra)
        .filter(|m| Some(m.file.as_str()) != spare)
    {
        let _ = run(
            server,
            &format!("rm -f -- {f} {f}.json", f = quote(&m.file)),
        )
        .await;
    }
}

/// The backups as a table for `berth backup --list`.
pub fn format_table(metas: &[Meta]) -> String {
    let mut out = format!(
        "{:<24} {:<18} {:<8} {:>10} {:<14} {:>8}  {}\n",
        "SERVICE", "ID", "KIND", "SIZE", "SHA256", "TOOK", "IMAGE"
    );
    for m in metas {
        out.push_str(&format!(
            "{:<24} {:<18} {:<8} {:>10} {:<14} {:>7.1}s  {}\n",
            crate::format::printable(&format!("{}/{}", m.project, m.service)),
            crate::format::printable(&m.id),
            m.kind,
            crate::format::bytes(m.size),
            crate::format::printable(&m.sha256.chars().take(12).collect::<String>()),
            m.duration_ms as f64 / 1000.0,
            crate::format::printable(&m.image),
        ));
    }
    out
}
