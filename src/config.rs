//! The TOML config: servers, theme, key bindings, log and stats settings, and per-service runbook
//! settings, with their defaults. No file is fine; reading and checking one is `file.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

pub mod file;
pub mod notify;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Server opened when none is named.
    pub default_server: Option<String>,
    /// Theme name or path to a theme file.
    pub theme: Option<String>,
    /// Disable every mutating action on every server.
    pub read_only: bool,
    pub servers: BTreeMap<String, ServerConfig>,
    /// Action name → key or list of keys, e.g. `quit = ["q", "ctrl-c"]`.
    pub keys: BTreeMap<String, KeyList>,
    pub logs: LogsConfig,
    pub stats: StatsConfig,
    pub runbook: RunbookConfig,
    /// Per-service settings, keyed by `service` or `project/service`.
    pub services: BTreeMap<String, ServiceConfig>,
    pub fleet: FleetConfig,
    /// Servers acted on together: `[groups.app] servers = ["app-1", "app-2"]` or `pattern = "app-*"`.
    pub groups: BTreeMap<String, GroupConfig>,
    /// `[[notify]]`: webhooks told when a runbook run starts and ends.
    pub notify: Vec<notify::NotifyEntry>,
    /// `[backup]`: where database dumps are written on the server and how many are kept.
    pub backup: BackupConfig,
}

/// `[backup] dir = "/var/backups/berth"`, `keep = 7` (per service).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// On the server; each service's dumps go to `<dir>/<project>/<service>/`.
    pub dir: Option<String>,
    /// Dumps kept per service; the oldest beyond are removed after a new one.
    pub keep: Option<usize>,
}

/// A group of configured servers: `berth -s GROUP restart web` runs on each, one at a time.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GroupConfig {
    /// Configured server names, in the order a group action visits them.
    pub servers: Vec<String>,
    /// A pattern over configured server names (`*` any run, `?` one character), in name order
    /// after the listed ones.
    pub pattern: Option<String>,
}

impl GroupConfig {
    /// The group's servers: the listed ones, then those the pattern matches, each once.
    pub fn members(&self, servers: &BTreeMap<String, ServerConfig>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in &self.servers {
            if !out.contains(name) {
                out.push(name.clone());
            }
        }
        if let Some(p) = &self.pattern {
            for name in servers.keys().filter(|n| glob_matches(p, n)) {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
        }
        out
    }
}

/// `*` matches any run of characters, `?` one; everything else itself.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Classic two-pointer wildcard match with backtracking to the last `*`.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

impl Config {
    /// The members of group `name`, when it names a group.
    pub fn group(&self, name: &str) -> Option<Vec<String>> {
        self.groups.get(name).map(|g| g.members(&self.servers))
    }

    /// Every group with its members, in name order.
    pub fn group_list(&self) -> Vec<(String, Vec<String>)> {
        self.groups
            .iter()
            .map(|(name, g)| (name.clone(), g.members(&self.servers)))
            .collect()
    }
}

/// How many servers are connected to at once unless the config says otherwise.
pub const DEFAULT_PARALLEL: usize = 16;
/// How long a server has to answer (SSH, auth, the engine, the listing) unless configured.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the fleet's sessions stay open while its view is not shown, unless configured.
pub const DEFAULT_IDLE_CLOSE: Duration = Duration::from_secs(300);

/// The fleet (`berth fleet`, `:fleet`): how servers are probed together.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// How long a server has to answer before it shows unreachable: `10s` (the default), `3s`.
    pub connect_timeout: Option<String>,
    /// Servers connected to at once (default 16).
    pub parallel: Option<usize>,
    /// How long the console keeps a server's fleet session open while nobody looks at it (the
    /// fleet view not shown, its console not open): `5m` (the default); after that it closes,
    /// and reopens when the fleet is shown again.
    pub idle_close: Option<String>,
}

impl FleetConfig {
    /// Between 500 ms and 300 s, like every interval in the config.
    pub fn connect_timeout(&self) -> Result<Duration, String> {
        match &self.connect_timeout {
            None => Ok(DEFAULT_CONNECT_TIMEOUT),
            Some(text) => parse_interval(text).map_err(|e| format!("[fleet] connect_timeout: {e}")),
        }
    }

    pub fn parallel(&self) -> usize {
        self.parallel.unwrap_or(DEFAULT_PARALLEL).max(1)
    }

    /// Between 1 s and 24 h.
    pub fn idle_close(&self) -> Result<Duration, String> {
        match &self.idle_close {
            None => Ok(DEFAULT_IDLE_CLOSE),
            Some(text) => {
                parse_duration_within(text, Duration::from_secs(1), Duration::from_secs(24 * 3600))
                    .map_err(|e| format!("[fleet] idle_close: {e}"))
            }
        }
    }
}

use crate::keymap::KeyList;

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// ssh alias, user@host[:port], ssh://…, unix://…, tcp://… or context:NAME.
    pub target: String,
    /// production, staging, … (production shows a red banner and asks for typed confirmation).
    pub environment: Option<String>,
    pub read_only: bool,
    /// Docker socket on the server (rootless Docker: /run/user/UID/docker.sock).
    pub socket: Option<String>,
    /// Append audit lines to this file on the server too.
    pub remote_audit: Option<String>,
    /// Allow password and keyboard-interactive authentication.
    pub allow_password: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Lines fetched from the end of each container's log when a view opens.
    pub tail: u64,
    /// Lines kept per log view (the ring buffer's bound). `buffer_lines` is the older name.
    #[serde(alias = "buffer_lines")]
    pub max_lines: usize,
    /// Bytes of line memory kept per log view; whichever of the two bounds comes first wins.
    pub max_bytes: usize,
    /// Show timestamps.
    pub timestamps: bool,
    /// Show times in UTC instead of local time.
    pub utc: bool,
    pub wrap: bool,
}

impl Default for LogsConfig {
    fn default() -> Self {
        Self {
            tail: 1000,
            max_lines: 100_000,
            max_bytes: crate::logs::buffer::DEFAULT_MAX_BYTES,
            timestamps: false,
            utc: false,
            wrap: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// How often stats are sampled, in milliseconds (`interval` wins when both are set).
    pub interval_ms: u64,
    /// How often stats are sampled: "2s", "500ms", "1m".
    pub interval: Option<String>,
    /// Collect stats at all.
    pub enabled: bool,
    /// "auto" (cgroup files where reachable, else the API), "cgroup" or "api".
    pub method: Preference,
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            interval_ms: 2000,
            interval: None,
            enabled: true,
            method: Preference::Auto,
        }
    }
}

impl StatsConfig {
    /// The sampling interval; a bad `interval` is a one-line error.
    pub fn interval(&self) -> Result<std::time::Duration, String> {
        match &self.interval {
            Some(text) => parse_interval(text).map_err(|e| format!("[stats] {e}")),
            None => parse_interval(&format!("{}ms", self.interval_ms))
                .map_err(|e| format!("[stats] interval_ms: {e}")),
        }
    }

    /// The interval in force: a bad one was refused when the config was read, so the fallback
    /// only covers a config built in code.
    pub fn interval_or_default(&self) -> std::time::Duration {
        self.interval().unwrap_or(std::time::Duration::from_millis(
            StatsConfig::default().interval_ms,
        ))
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunbookConfig {
    /// Images kept per service for rollback by prune, besides the current one.
    pub keep_images: usize,
    /// Health check tries after a change.
    pub health_retries: u32,
    /// Seconds between health check tries.
    pub health_interval_secs: u64,
    /// Milliseconds between health check tries (wins over `health_interval_secs`; for fast checks).
    pub health_interval_ms: Option<u64>,
    /// Earlier releases whose stopped containers a rollback or deploy keeps (the previous one by
    /// default); older kept containers are removed when a run succeeds, and by prune.
    pub keep_old: usize,
}

impl Default for RunbookConfig {
    fn default() -> Self {
        Self {
            keep_images: 3,
            health_retries: 5,
            health_interval_secs: 5,
            health_interval_ms: None,
            keep_old: 1,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Migration command run inside the service's container.
    pub migrate: Option<String>,
    /// Migration status command.
    pub migrate_status: Option<String>,
    /// Migration preset: alembic, django, rails, prisma.
    pub migrate_preset: Option<String>,
    /// Command that prints the migration plan without applying it (default: the preset's, e.g.
    /// Django's `python manage.py migrate --plan`); a line of it saying IRREVERSIBLE is flagged.
    pub migrate_plan: Option<String>,
    /// The service whose database a migration changes, backed up before it (default: the
    /// migrating service itself).
    pub migrate_db: Option<String>,
    /// HTTP endpoint probed after a change, e.g. http://127.0.0.1:8080/health (reached through the SSH tunnel).
    pub health_url: Option<String>,
    pub health_retries: Option<u32>,
    pub health_interval_secs: Option<u64>,
    pub health_interval_ms: Option<u64>,
    /// Images kept for rollback by prune (overrides [runbook] keep_images).
    pub keep_images: Option<usize>,
    /// How long a new replica must be seen healthy, without a lost answer, before it takes
    /// traffic (default: two health intervals, at least 1 s).
    pub health_window_ms: Option<u64>,
    /// Earlier releases kept as stopped containers (overrides [runbook] keep_old).
    pub keep_old: Option<usize>,
    /// The database kind for `berth backup`: postgres, mysql, mariadb, `sqlite:/path/in/container`
    /// or `command: …` (its stdout is the dump); default: from the image.
    pub backup: Option<String>,
    /// `command: …` reading a dump on stdin (required with a `command:` backup).
    pub restore: Option<String>,
}

impl Config {
    /// Settings for a service: `project/service` wins over `service`.
    pub fn service(&self, project: Option<&str>, service: &str) -> Option<&ServiceConfig> {
        project
            .and_then(|p| self.services.get(&format!("{p}/{service}")))
            .or_else(|| self.services.get(service))
    }
}

/// Shortest interval a user may choose: below this the readings are mostly noise and cost.
pub const MIN_INTERVAL: Duration = Duration::from_millis(500);
pub const MAX_INTERVAL: Duration = Duration::from_secs(300);

/// Which method to use; `Auto` prefers cgroups and falls back to the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preference {
    #[default]
    Auto,
    Cgroup,
    Api,
}

/// Parses "2s", "500ms", "1m", "1.5s" or a bare number of seconds.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    parse_duration_within(text, MIN_INTERVAL, MAX_INTERVAL)
}

/// A duration written like an interval (`500ms`, `10s`, `5m`, `2h`) between `min` and `max`.
fn parse_duration_within(text: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("bad interval {text:?}: expected e.g. 2s, 500ms or 1m"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "s" | "sec" | "secs" => value,
        "m" | "min" => value * 60.0,
        "h" if max > MAX_INTERVAL => value * 3600.0,
        other => return Err(format!("bad interval {text:?}: unknown unit {other:?}")),
    };
    let d = Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("bad interval {text:?}: out of range"))?;
    if d < min || d > max {
        return Err(format!(
            "interval {text} is out of range: between {} ms and {} s",
            min.as_millis(),
            max.as_secs()
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod stats_tests {
    #[test]
    fn stats_section() {
        let p = std::path::Path::new("c.toml");
        let c = super::file::parse("[stats]\ninterval = \"5s\"\nmethod = \"api\"\n", p).unwrap();
        assert_eq!(c.stats.interval(), Ok(std::time::Duration::from_secs(5)));
        assert_eq!(c.stats.method, super::Preference::Api);
        let d = super::file::parse("", p).unwrap();
        assert_eq!(d.stats.interval(), Ok(std::time::Duration::from_secs(2)));
        let bad = super::file::parse("[stats]\ninterval = \"1ms\"\n", p).unwrap_err();
        assert!(
            bad.to_string()
                .contains("[stats] interval 1ms is out of range"),
            "{bad}"
        );
        assert!(super::file::parse("[stats]\nmethod = \"magic\"\n", p).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::file::parse;
    use super::*;
    use std::path::Path;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_interval("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_interval("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_interval("10ms").unwrap_err().contains("out of range"));
        assert!(parse_interval("fast").unwrap_err().contains("bad interval"));
        assert!(parse_interval("2h").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn empty_is_default() {
        assert_eq!(parse("", Path::new("c.toml")).unwrap(), Config::default());
    }

    #[test]
    fn full_config() {
        let c = parse(
            r#"
default_server = "prod"
theme = "light"
[servers.prod]
target = "deploy@prod.example.com"
environment = "production"
socket = "/run/user/1000/docker.sock"
[keys]
quit = ["q", "ctrl-c"]
logs = "L"
[logs]
tail = 200
[services."shop/web"]
migrate = "alembic upgrade head"
health_url = "http://127.0.0.1:8080/health"
"#,
            Path::new("c.toml"),
        )
        .unwrap();
        assert_eq!(c.servers["prod"].environment.as_deref(), Some("production"));
        assert_eq!(c.keys["quit"].keys(), vec!["q", "ctrl-c"]);
        assert_eq!(c.logs.tail, 200);
        assert_eq!(c.logs.max_lines, 100_000);
        assert!(c.service(Some("shop"), "web").unwrap().migrate.is_some());
        assert!(c.service(None, "web").is_none());
    }

    #[test]
    fn logs_max_lines_takes_its_older_name_too() {
        let c = parse("[logs]\nmax_lines = 5000\n", Path::new("c.toml")).unwrap();
        assert_eq!(c.logs.max_lines, 5000);
        let c = parse("[logs]\nbuffer_lines = 7000\n", Path::new("c.toml")).unwrap();
        assert_eq!(c.logs.max_lines, 7000);
    }
}

#[cfg(test)]
mod group_tests {
    use super::file::parse;
    use super::*;
    use std::path::Path;

    const SERVERS: &str = "[servers.app-1]\ntarget = \"a1\"\n[servers.app-2]\ntarget = \"a2\"\n[servers.app-3]\ntarget = \"a3\"\n[servers.db]\ntarget = \"d\"\n";

    #[test]
    fn groups_list_servers_or_match_a_pattern() {
        let text = format!(
            "{SERVERS}[groups.web]\nservers = [\"app-2\", \"app-1\"]\n[groups.apps]\npattern = \"app-*\"\n[groups.mixed]\nservers = [\"db\"]\npattern = \"app-?\"\n"
        );
        let c = parse(&text, Path::new("c.toml")).unwrap();
        assert_eq!(
            c.group("web").unwrap(),
            ["app-2", "app-1"],
            "listed order kept"
        );
        assert_eq!(c.group("apps").unwrap(), ["app-1", "app-2", "app-3"]);
        assert_eq!(c.group("mixed").unwrap(), ["db", "app-1", "app-2", "app-3"]);
        assert_eq!(c.group("app-1"), None, "a server is not a group");
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b", "axxbc"));
        assert!(!glob_matches("app-?", "app-10"));
    }

    #[test]
    fn a_group_naming_an_unknown_server_is_an_error_with_its_line() {
        let text = format!("{SERVERS}[groups.web]\nservers = [\n  \"app-1\",\n  \"app-9\",\n]\n");
        let e = parse(&text, Path::new("c.toml")).unwrap_err().to_string();
        // SERVERS is 8 lines; the header is line 9, `servers = [` 10, "app-9" 12.
        assert!(e.starts_with("config c.toml:12:1: "), "{e}");
        assert!(e.contains("[groups.web] names server 'app-9'"), "{e}");
        assert!(!e.contains('\n'));

        let text = format!("{SERVERS}[groups.none]\npattern = \"web-*\"\n");
        let e = parse(&text, Path::new("c.toml")).unwrap_err().to_string();
        assert!(
            e.starts_with("config c.toml:10:1: ") && e.contains("no servers"),
            "{e}"
        );

        let text = format!("{SERVERS}[groups.db]\nservers = [\"app-1\"]\n");
        let e = parse(&text, Path::new("c.toml")).unwrap_err().to_string();
        assert!(
            e.starts_with("config c.toml:9:1: ") && e.contains("ambiguous"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod example_tests {
    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../assets/config.example.toml");
        let c =
            super::file::parse(text, std::path::Path::new("assets/config.example.toml")).unwrap();
        assert_eq!(c.servers["prod"].environment.as_deref(), Some("production"));
    }
}
