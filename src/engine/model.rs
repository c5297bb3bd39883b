//! berth's own view of a container, built from the engine's inspect data. Views and tests use this,
//! never bollard's wire types, so a fixture is a plain struct literal.

use std::collections::BTreeMap;

use bollard::models::{ContainerInspectResponse, ContainerStateStatusEnum, HealthStatusEnum};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
/// Kamal's labels: the app (`service`), the role (`web`, `job`…) and the destination (`staging`).
pub const LABEL_KAMAL_SERVICE: &str = "service";
pub const LABEL_KAMAL_ROLE: &str = "role";
pub const LABEL_KAMAL_DESTINATION: &str = "destination";
/// Every label compose sets starts with this.
pub const COMPOSE_PREFIX: &str = "com.docker.compose.";
/// A container berth keeps after a rollback carries its compose labels under this prefix, so
/// compose does not count it as a replica while berth still knows its project and service.
pub const KEPT_PREFIX: &str = "berth.kept.";
/// The name the kept container had while it served.
pub const LABEL_KEPT_NAME: &str = "berth.kept.name";
/// Its restart policy (JSON), set to `no` while it is kept.
pub const LABEL_KEPT_RESTART: &str = "berth.kept.restart";
/// The name of a rollback's new container until it is verified and takes the service's name.
pub const NEW_MARK: &str = "-berth-new-";
/// The one name of an old container a rollback replaces: set aside as `NAME-berth-kept-TIME`
/// when it stops, and kept under that same name after a success (as a copy with compose's labels
/// set aside, which takes the name when the original is removed).
pub const KEPT_MARK: &str = "-berth-kept-";
/// The kept copy's name while the original still holds the kept name: `NAME-berth-kept-TIME-copy`.
pub const COPY_SUFFIX: &str = "-copy";
/// The set-aside mark of berth before the one name: a run an older berth left cut off is still
/// found and recovered.
pub const LEGACY_OLD_MARK: &str = "-berth-old-";

/// The replica name an old container set aside (or kept) by a rollback had, when its name says so.
pub fn set_aside_base(name: &str) -> Option<&str> {
    [KEPT_MARK, LEGACY_OLD_MARK]
        .iter()
        .find_map(|m| name.find(m).map(|i| &name[..i]))
}

/// The kept name for an old container set aside as `name`: itself, or an older berth's
/// `-berth-old-` name with the one mark.
pub fn kept_name_of(name: &str) -> String {
    let name = name.strip_suffix(COPY_SUFFIX).unwrap_or(name);
    name.replacen(LEGACY_OLD_MARK, KEPT_MARK, 1)
}
/// A rollback in flight, recorded on the server: a container named `berth-run-<rollback id>`,
/// created and never started, whose label holds the run journal (JSON), so a run cut off is found
/// from any machine.
pub const LABEL_RUN_JOURNAL: &str = "berth.run.journal";
pub const RUN_JOURNAL_PREFIX: &str = "berth-run-";
/// A run's lock on its service: a container named `berth-lock-<project>-<service>`, created and
/// never started, whose label says who holds it (see `runbook::lock`).
pub const LABEL_LOCK: &str = "berth.lock";
pub const LOCK_PREFIX: &str = "berth-lock-";
/// The image reference the kept container served (its own image is named by id, exact across retags).
pub const LABEL_KEPT_IMAGE: &str = "berth.kept.image";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Restarting,
    Paused,
    Created,
    Removing,
    Exited,
    Dead,
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Restarting => "restarting",
            State::Paused => "paused",
            State::Created => "created",
            State::Removing => "removing",
            State::Exited => "exited",
            State::Dead => "dead",
            State::Unknown => "unknown",
        }
    }
    pub fn is_up(self) -> bool {
        matches!(self, State::Running | State::Restarting | State::Paused)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Healthy,
    Unhealthy,
    Starting,
    None,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Starting => "starting",
            Health::None => "none",
        }
    }
    /// Shape as well as colour, so health reads on a monochrome terminal too.
    pub fn symbol(self) -> &'static str {
        match self {
            Health::Healthy => "●",
            Health::Unhealthy => "✖",
            Health::Starting => "◐",
            Health::None => "·",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
    pub container_port: u16,
    pub protocol: String,
}

impl Port {
    pub fn short(&self) -> String {
        match self.host_port {
            Some(h) => format!("{h}→{}", self.container_port),
            None => format!("{}/{}", self.container_port, self.protocol),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthProbe {
    pub start: Option<DateTime<Utc>>,
    pub exit_code: i64,
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub kind: String,
    pub source: String,
    pub destination: String,
    pub read_write: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkAttachment {
    pub network: String,
    pub ip: String,
    pub aliases: Vec<String>,
}

/// One container as berth shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Container {
    pub id: String,
    /// Without the leading '/'; may be empty for a container that has none.
    pub name: String,
    pub project: Option<String>,
    pub service: Option<String>,
    /// Compose replica number.
    pub number: Option<u32>,
    pub state: State,
    pub health: Health,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub error: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub restart_count: i64,
    pub restart_policy: String,
    /// As the container was created with, e.g. `shop-web:v2`.
    pub image: String,
    /// `sha256:…` id of the image.
    pub image_id: String,
    pub command: Vec<String>,
    pub entrypoint: Vec<String>,
    pub ports: Vec<Port>,
    pub labels: BTreeMap<String, String>,
    pub env: Vec<String>,
    pub mounts: Vec<Mount>,
    pub networks: Vec<NetworkAttachment>,
    pub health_log: Vec<HealthProbe>,
    pub has_healthcheck: bool,
    /// Seconds the engine waits after the stop signal before SIGKILL: the container's own
    /// StopTimeout (compose's `stop_grace_period`, `docker run --stop-timeout`); `None`: the
    /// engine's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
}

/// Kamal's labels without compose's: compose wins when a container carries both.
fn is_kamal_labels(labels: &BTreeMap<String, String>) -> bool {
    compose_label(labels, LABEL_PROJECT).is_none()
        && labels
            .get(LABEL_KAMAL_SERVICE)
            .is_some_and(|s| !s.is_empty())
        && labels.get(LABEL_KAMAL_ROLE).is_some_and(|r| !r.is_empty())
}

/// The project and service a container is grouped under: compose's labels, else Kamal's app
/// and role.
fn project_and_service(labels: &BTreeMap<String, String>) -> (Option<String>, Option<String>) {
    if is_kamal_labels(labels) {
        return (
            labels.get(LABEL_KAMAL_SERVICE).cloned(),
            labels.get(LABEL_KAMAL_ROLE).cloned(),
        );
    }
    (
        compose_label(labels, LABEL_PROJECT),
        compose_label(labels, LABEL_SERVICE),
    )
}

/// A compose label, or the copy berth keeps of it on a kept container.
fn compose_label(labels: &BTreeMap<String, String>, key: &str) -> Option<String> {
    labels
        .get(key)
        .or_else(|| labels.get(&format!("{KEPT_PREFIX}{key}")))
        .cloned()
}

pub fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

pub fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    let s = s?;
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    // The engine writes year 1 for "never".
    (t.timestamp() > 0).then_some(t)
}

impl Container {
    pub fn short_id(&self) -> &str {
        short_id(&self.id)
    }

    /// Name shown in the list: `service-N` within a compose group, else the container name.
    pub fn display_name(&self) -> String {
        if self.name.is_empty() {
            return format!("<{}>", self.short_id());
        }
        self.name.clone()
    }

    /// `repo`, `tag` of the image reference (tag "latest" when none; digest references keep their digest).
    pub fn image_repo_tag(&self) -> (&str, &str) {
        split_image(&self.image)
    }

    /// Started by compose (or kept by berth from a compose service); a Kamal container is not.
    pub fn is_compose(&self) -> bool {
        self.project.is_some() && !self.is_kamal()
    }

    /// Deployed by Kamal: its app and role labels, and no compose project. Its app is berth's
    /// project and its role the service, so the list, `berth ps` and names treat it like compose.
    pub fn is_kamal(&self) -> bool {
        is_kamal_labels(&self.labels)
    }

    /// The version Kamal deployed: the tail of `<service>-<role>[-<destination>]-<version>`, else
    /// the image's tag (a renamed container, e.g. one Kamal set aside as `…_replaced_…`).
    pub fn kamal_version(&self) -> Option<String> {
        if !self.is_kamal() {
            return None;
        }
        let app = self.labels.get(LABEL_KAMAL_SERVICE)?;
        let role = self.labels.get(LABEL_KAMAL_ROLE)?;
        let mut prefix = format!("{app}-{role}-");
        if let Some(dest) = self.kamal_destination() {
            prefix.push_str(dest);
            prefix.push('-');
        }
        match self.name.strip_prefix(&prefix) {
            Some(version) if !version.is_empty() && !version.contains("_replaced_") => {
                Some(version.to_string())
            }
            _ => Some(self.image_repo_tag().1.to_string()),
        }
    }

    /// The Kamal destination the container was deployed to (`staging`); `None` for the default
    /// destination and for containers Kamal did not deploy.
    pub fn kamal_destination(&self) -> Option<&str> {
        if !self.is_kamal() {
            return None;
        }
        super::kamal::destination_label(self)
    }

    /// The server's record of a rollback in flight (see `LABEL_RUN_JOURNAL`).
    pub fn is_run_journal(&self) -> bool {
        self.labels.contains_key(LABEL_RUN_JOURNAL)
    }

    /// A run's lock on a service (see `LABEL_LOCK`).
    pub fn is_lock(&self) -> bool {
        self.labels.contains_key(LABEL_LOCK)
    }

    /// An old container berth kept after a rollback (stopped, out of compose's sight): shown under
    /// its service but never as a replica, and never counted as unhealthy.
    pub fn is_kept(&self) -> bool {
        self.labels.contains_key(LABEL_KEPT_NAME) || set_aside_base(&self.name).is_some()
    }

    /// The name in the grouped list: `web-1` within a compose group, else the container name. berth's
    /// own containers say what they are, so two rows never read the same: `web-1 · kept`.
    pub fn list_name(&self) -> String {
        let base = match (&self.service, self.number, self.kamal_version()) {
            (Some(s), Some(n), _) => format!("{s}-{n}"),
            // Kamal's old and new containers of a role run side by side during a deploy: the
            // version tells them apart, and the destination tells staging from the default.
            (Some(s), None, Some(v)) => match self.kamal_destination() {
                Some(d) => format!("{s}-{d}-{v}"),
                None => format!("{s}-{v}"),
            },
            _ => self.display_name(),
        };
        if self.is_kept() {
            format!("{base} · kept")
        } else if self.name.contains(NEW_MARK) {
            format!("{base} · new")
        } else if self.is_run_journal() {
            format!("{base} · rollback journal")
        } else if self.is_lock() {
            format!("{base} · lock")
        } else {
            base
        }
    }

    /// The image a kept container served, by the reference it was started with.
    pub fn kept_image(&self) -> &str {
        self.labels
            .get(LABEL_KEPT_IMAGE)
            .map(String::as_str)
            .unwrap_or(&self.image)
    }

    /// The health that counts now: a container that is not up has none, whatever its last probe said.
    pub fn current_health(&self) -> Health {
        if self.state.is_up() {
            self.health
        } else {
            Health::None
        }
    }

    pub fn from_inspect(i: &ContainerInspectResponse) -> Container {
        let state = i.state.as_ref();
        let config = i.config.as_ref();
        let labels: BTreeMap<String, String> = config
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
            .into_iter()
            .collect();
        let status = state.and_then(|s| s.status).map(|s| match s {
            ContainerStateStatusEnum::RUNNING => State::Running,
            ContainerStateStatusEnum::RESTARTING => State::Restarting,
            ContainerStateStatusEnum::PAUSED => State::Paused,
            ContainerStateStatusEnum::CREATED => State::Created,
            ContainerStateStatusEnum::REMOVING => State::Removing,
            ContainerStateStatusEnum::EXITED => State::Exited,
            ContainerStateStatusEnum::DEAD => State::Dead,
            _ => State::Unknown,
        });
        let health_state = state.and_then(|s| s.health.as_ref());
        let health = match health_state.and_then(|h| h.status) {
            Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
            Some(HealthStatusEnum::STARTING) => Health::Starting,
            _ => Health::None,
        };
        let health_log = health_state
            .and_then(|h| h.log.as_ref())
            .map(|log| {
                log.iter()
                    .map(|p| HealthProbe {
                        start: parse_time(p.start.as_deref()),
                        exit_code: p.exit_code.unwrap_or(-1),
                        output: p.output.clone().unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut ports: Vec<Port> = Vec::new();
        if let Some(map) = i.network_settings.as_ref().and_then(|n| n.ports.as_ref()) {
            for (key, bindings) in map {
                let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
                let Ok(container_port) = port.parse::<u16>() else {
                    continue;
                };
                match bindings.as_ref().filter(|b| !b.is_empty()) {
                    Some(bs) => {
                        for b in bs {
                            let host_port = b.host_port.as_deref().and_then(|p| p.parse().ok());
                            // The engine lists IPv4 and IPv6 bindings separately; show one.
                            if ports.iter().any(|p| {
                                p.container_port == container_port
                                    && p.host_port == host_port
                                    && p.protocol == proto
                            }) {
                                continue;
                            }
                            ports.push(Port {
                                host_ip: b.host_ip.clone().filter(|ip| !ip.is_empty()),
                                host_port,
                                container_port,
                                protocol: proto.to_string(),
                            });
                        }
                    }
                    None => ports.push(Port {
                        host_ip: None,
                        host_port: None,
                        container_port,
                        protocol: proto.to_string(),
                    }),
                }
            }
        }
        ports.sort_by_key(|p| (p.container_port, p.host_port));
        let mounts = i
            .mounts
            .as_ref()
            .map(|ms| {
                ms.iter()
                    .map(|m| Mount {
                        kind: m.typ.as_ref().map(|t| t.to_string()).unwrap_or_default(),
                        source: m
                            .name
                            .clone()
                            .filter(|n| !n.is_empty())
                            .or(m.source.clone())
                            .unwrap_or_default(),
                        destination: m.destination.clone().unwrap_or_default(),
                        read_write: m.rw.unwrap_or(true),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut networks: Vec<NetworkAttachment> = i
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .map(|nets| {
                nets.iter()
                    .map(|(name, e)| NetworkAttachment {
                        network: name.clone(),
                        ip: e.ip_address.clone().unwrap_or_default(),
                        aliases: e.aliases.clone().unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        networks.sort_by(|a, b| a.network.cmp(&b.network));
        let state_v = status.unwrap_or(State::Unknown);
        let (project, service) = project_and_service(&labels);
        Container {
            id: i.id.clone().unwrap_or_default(),
            name: i
                .name
                .as_deref()
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string(),
            project,
            service,
            number: compose_label(&labels, LABEL_NUMBER).and_then(|n| n.parse().ok()),
            state: state_v,
            health,
            exit_code: state.and_then(|s| s.exit_code).filter(|_| !state_v.is_up()),
            oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
            error: state
                .and_then(|s| s.error.clone())
                .filter(|e| !e.is_empty()),
            created: parse_time(i.created.as_deref()),
            started_at: parse_time(state.and_then(|s| s.started_at.as_deref())),
            finished_at: parse_time(state.and_then(|s| s.finished_at.as_deref())),
            restart_count: i.restart_count.unwrap_or(0),
            restart_policy: i
                .host_config
                .as_ref()
                .and_then(|h| h.restart_policy.as_ref())
                .and_then(|r| r.name)
                .map(|n| n.to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "no".into()),
            image: config.and_then(|c| c.image.clone()).unwrap_or_default(),
            image_id: i.image.clone().unwrap_or_default(),
            command: config.and_then(|c| c.cmd.clone()).unwrap_or_default(),
            entrypoint: config
                .and_then(|c| c.entrypoint.clone())
                .unwrap_or_default(),
            ports,
            env: config.and_then(|c| c.env.clone()).unwrap_or_default(),
            mounts,
            networks,
            health_log,
            has_healthcheck: config
                .and_then(|c| c.healthcheck.as_ref())
                .and_then(|h| h.test.as_ref())
                .is_some_and(|t| t.first().is_some_and(|f| f != "NONE")),
            stop_timeout: config.and_then(|c| c.stop_timeout),
            labels,
        }
    }
}

/// Splits an image reference into repository and tag: `reg:5000/app:v1` → (`reg:5000/app`, `v1`).
pub fn split_image(image: &str) -> (&str, &str) {
    if let Some((repo, _digest)) = image.split_once('@') {
        return (repo, "<digest>");
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

/// Environment variable names that hold secrets.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "KEY",
        "PRIVATE",
        "CREDENTIAL",
        "AUTH",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// `NAME=value` with the value masked when the name looks secret or the value is a URL with a password.
pub fn mask_env(entry: &str) -> String {
    let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
    if is_secret_name(name) && !value.is_empty() {
        return format!("{name}=••••••••");
    }
    if let Some(masked) = mask_url_password(value) {
        return format!("{name}={masked}");
    }
    entry.to_string()
}

/// Database clients whose `-p X` (or `-pX`) is a password; `redis-cli -a X` too.
const DB_CLIENTS: &[&str] = &[
    "psql",
    "pg_dump",
    "pg_dumpall",
    "pg_restore",
    "mysql",
    "mysqldump",
    "mysqladmin",
    "mariadb",
    "mariadb-dump",
    "mongo",
    "mongosh",
    "mongodump",
    "mongorestore",
    "redis-cli",
    "clickhouse-client",
    "sqlcmd",
];

/// A command line as it may be shown, audited or posted: the rules of [`mask_env`] for each
/// word (`KEY=value` with a secret-looking name, a URL with a password), the value of an option
/// whose name looks secret (`--password X`, `--api-token=X`), a database client's `-p X` (or
/// `-pX`; `redis-cli -a X`), and the same again inside a quoted script (`sh -c '…'`). The line
/// keeps its own quoting: only the secrets' characters are replaced.
pub fn mask_command(command: &str) -> String {
    let words: Vec<String> = shlex::split(command)
        .unwrap_or_else(|| command.split_whitespace().map(String::from).collect());
    let mut secrets = Vec::new();
    secrets_in(&words, &mut secrets);
    secrets.retain(|s| !s.is_empty());
    if secrets.is_empty() {
        return command.to_string();
    }
    // Longest first: a secret inside another is hidden with it.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    let hide = |text: &str| {
        secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), MASK))
    };
    if secrets.iter().all(|s| command.contains(s.as_str())) {
        return hide(command);
    }
    // A secret written with escapes is not in the text as such: the words, masked, quoted again.
    let masked: Vec<String> = words.iter().map(|w| hide(w)).collect();
    shlex::try_join(masked.iter().map(String::as_str)).unwrap_or_else(|_| masked.join(" "))
}

const MASK: &str = "••••••••";

/// The secrets among a command's words (see [`mask_command`]).
fn secrets_in(words: &[String], out: &mut Vec<String>) {
    let is_assignment = |w: &str| {
        !w.starts_with('-')
            && w.split_once('=')
                .is_some_and(|(k, _)| !k.is_empty() && !k.contains(char::is_whitespace))
    };
    // The program the options belong to: the first word that is no `KEY=value`, without its path.
    let mut program: Option<&str> = None;
    let mut hide_next = false;
    for w in words {
        if std::mem::take(&mut hide_next) {
            out.push(w.clone());
            continue;
        }
        let db = program.is_some_and(|p| DB_CLIENTS.contains(&p));
        if let Some(opt) = w.strip_prefix("--") {
            match opt.split_once('=') {
                Some((name, value)) if is_secret_name(name) => out.push(value.to_string()),
                Some((_, value)) => out.extend(url_password(value).map(String::from)),
                None => hide_next = !opt.is_empty() && is_secret_name(opt),
            }
        } else if db && matches!(w.as_str(), "-p" | "-a" | "-P") {
            hide_next = true;
        } else if db && w.len() > 2 && (w.starts_with("-p") || w.starts_with("-a")) {
            out.push(w[2..].to_string());
        } else if w.contains(char::is_whitespace) {
            // A script in one word: `sh -c 'PGPASSWORD=x psql …'`.
            let inner: Vec<String> =
                shlex::split(w).unwrap_or_else(|| w.split_whitespace().map(String::from).collect());
            secrets_in(&inner, out);
        } else if is_assignment(w) {
            let (name, value) = w.split_once('=').unwrap_or_default();
            if is_secret_name(name) {
                out.push(value.to_string());
            } else {
                out.extend(url_password(value).map(String::from));
            }
        } else {
            out.extend(url_password(w).map(String::from));
        }
        if program.is_none() && !is_assignment(w) {
            program = Some(w.rsplit('/').next().unwrap_or(w));
        }
    }
}

/// The password of `scheme://user:pass@host…`, where the value is such a URL.
fn url_password(value: &str) -> Option<&str> {
    let (_, rest) = value.split_once("://")?;
    let userinfo = &rest[..rest.find('@')?];
    if userinfo.contains('/') {
        return None;
    }
    userinfo
        .split_once(':')
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty())
}

/// `scheme://user:pass@host` → `scheme://user:••••@host`.
pub fn mask_url_password(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once("://")?;
    let at = rest.find('@')?;
    let userinfo = &rest[..at];
    if userinfo.contains('/') {
        return None;
    }
    let (user, pass) = userinfo.split_once(':')?;
    if pass.is_empty() {
        return None;
    }
    Some(format!("{scheme}://{user}:••••{}", &rest[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets() {
        assert_eq!(mask_env("DB_PASSWORD=hunter2"), "DB_PASSWORD=••••••••");
        assert_eq!(mask_env("API_TOKEN=abc"), "API_TOKEN=••••••••");
        assert_eq!(mask_env("PATH=/usr/bin"), "PATH=/usr/bin");
        assert_eq!(
            mask_env("DATABASE_URL=postgres://app:s3cret@db:5432/app"),
            "DATABASE_URL=postgres://app:••••@db:5432/app"
        );
        assert_eq!(
            mask_env("HOME_URL=https://example.com/a@b"),
            "HOME_URL=https://example.com/a@b"
        );
        assert_eq!(mask_env("EMPTY_SECRET="), "EMPTY_SECRET=");
    }

    #[test]
    fn masks_command_lines() {
        let cases = [
            (
                "psql postgres://u:PLANTED@db/x -c 'select 1'",
                "psql postgres://u:••••••••@db/x -c 'select 1'",
            ),
            (
                "tool --password PLANTED2 --verbose",
                "tool --password •••••••• --verbose",
            ),
            (
                "tool --api-token=PLANTED --x=1",
                "tool --api-token=•••••••• --x=1",
            ),
            (
                "mysql -u root -pPLANTED app",
                "mysql -u root -p•••••••• app",
            ),
            (
                "/usr/bin/psql -h db -p PLANTED",
                "/usr/bin/psql -h db -p ••••••••",
            ),
            ("redis-cli -a PLANTED ping", "redis-cli -a •••••••• ping"),
            (
                "DB_PASSWORD=PLANTED alembic upgrade head",
                "DB_PASSWORD=•••••••• alembic upgrade head",
            ),
            (
                "sh -c 'PGPASSWORD=PLANTED psql -c \"select 1\"'",
                "sh -c 'PGPASSWORD=•••••••• psql -c \"select 1\"'",
            ),
            // Not a database client: `-p` is whatever the tool says (a port, a path).
            ("rails db:migrate -p 3000", "rails db:migrate -p 3000"),
            ("alembic upgrade head", "alembic upgrade head"),
            // Escaped in the line: hidden all the same.
            ("tool --password PLAN\\ TED", "tool --password '••••••••'"),
        ];
        for (given, shown) in cases {
            assert_eq!(mask_command(given), shown, "{given}");
            assert!(!mask_command(given).contains("PLANTED"), "{given}");
        }
    }

    #[test]
    fn splits_images() {
        assert_eq!(split_image("nginx"), ("nginx", "latest"));
        assert_eq!(split_image("reg:5000/app:v1"), ("reg:5000/app", "v1"));
        assert_eq!(split_image("reg:5000/app"), ("reg:5000/app", "latest"));
        assert_eq!(split_image("app@sha256:abc"), ("app", "<digest>"));
    }

    #[test]
    fn times() {
        assert!(parse_time(Some("0001-01-01T00:00:00Z")).is_none());
        assert!(parse_time(Some("2026-11-24T09:00:00.123456789Z")).is_some());
        assert!(parse_time(Some("garbage")).is_none());
    }

    fn inspected(name: &str, labels: &[(&str, &str)], image: &str) -> Container {
        let i = ContainerInspectResponse {
            name: Some(format!("/{name}")),
            config: Some(bollard::models::ContainerConfig {
                image: Some(image.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        Container::from_inspect(&i)
    }

    #[test]
    fn kamal_containers_are_app_and_role() {
        let web = inspected(
            "shop-web-production-9f3c2a1",
            &[
                ("service", "shop"),
                ("role", "web"),
                ("destination", "production"),
            ],
            "reg/shop:9f3c2a1",
        );
        assert_eq!(web.project.as_deref(), Some("shop"));
        assert_eq!(web.service.as_deref(), Some("web"));
        assert!(web.is_kamal() && !web.is_compose());
        assert_eq!(web.kamal_version().as_deref(), Some("9f3c2a1"));
        assert_eq!(web.list_name(), "web-production-9f3c2a1");
        assert_eq!(web.kamal_destination(), Some("production"));
        // No destination; a container Kamal set aside falls back to the image tag.
        let job = inspected("shop-job-abc", &[("service", "shop"), ("role", "job")], "x");
        assert_eq!(job.kamal_version().as_deref(), Some("abc"));
        let old = inspected(
            "shop-web-abc_replaced_0123",
            &[("service", "shop"), ("role", "web")],
            "reg/shop:abc",
        );
        assert_eq!(old.kamal_version().as_deref(), Some("abc"));
        // Compose's labels win; a lone `service` label (an accessory, anyone's) is not Kamal.
        let both = inspected(
            "shop-web-1",
            &[
                (LABEL_PROJECT, "shop"),
                (LABEL_SERVICE, "web"),
                ("service", "x"),
                ("role", "y"),
            ],
            "x",
        );
        assert!(both.is_compose() && !both.is_kamal());
        assert_eq!(both.service.as_deref(), Some("web"));
        let lone = inspected("shop-db", &[("service", "shop-db")], "x");
        assert_eq!((lone.project, lone.service), (None, None));
    }
}
