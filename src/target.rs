//! What berth connects to: the local socket, a TCP engine, or an engine on a server reached over SSH,
//! and how a name given by the user (or nothing at all) resolves to one of them.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{Config, ServerConfig};

pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Where the SSH part of a target points. `host` may still be an `~/.ssh/config` alias: the ssh
/// module applies the ssh config when it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// Path of the Docker socket on the server; `None` means [`DEFAULT_SOCKET`].
    pub socket: Option<String>,
}

impl SshSpec {
    pub fn socket_path(&self) -> &str {
        self.socket.as_deref().unwrap_or(DEFAULT_SOCKET)
    }
}

impl fmt::Display for SshSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ssh://")?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(s) = &self.socket {
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
    Ssh(SshSpec),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
            Endpoint::Ssh(s) => s.fmt(f),
        }
    }
}

/// A resolved server: where it is and how carefully to treat it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What the header shows: the config name, the alias, or "local".
    pub name: String,
    pub endpoint: Endpoint,
    /// Environment label from the config: production, staging, …
    pub environment: Option<String>,
    pub read_only: bool,
    /// Path of a file on the server that audit lines are appended to, when set.
    pub remote_audit: Option<String>,
    /// Password and keyboard-interactive authentication allowed for this server.
    pub allow_password: bool,
}

impl Target {
    pub fn local() -> Self {
        Self::from_endpoint("local", Endpoint::Unix(PathBuf::from(DEFAULT_SOCKET)))
    }

    pub fn from_endpoint(name: impl Into<String>, endpoint: Endpoint) -> Self {
        Self {
            name: name.into(),
            endpoint,
            environment: None,
            read_only: false,
            remote_audit: None,
            allow_password: false,
        }
    }

    pub fn is_production(&self) -> bool {
        self.environment
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case("production") || e.eq_ignore_ascii_case("prod"))
    }

    pub fn is_ssh(&self) -> bool {
        matches!(self.endpoint, Endpoint::Ssh(_))
    }
}

/// Where berth looks for the docker CLI's contexts and the user's ssh config.
#[derive(Debug, Clone)]
pub struct Environment {
    pub docker_host: Option<String>,
    pub docker_context: Option<String>,
    pub docker_config_dir: Option<PathBuf>,
    pub ssh_config: Option<PathBuf>,
}

impl Environment {
    pub fn from_process() -> Self {
        let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
        Self {
            docker_host: std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()),
            docker_context: std::env::var("DOCKER_CONTEXT")
                .ok()
                .filter(|s| !s.is_empty()),
            docker_config_dir: std::env::var_os("DOCKER_CONFIG")
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".docker"))),
            ssh_config: home.map(|h| h.join(".ssh").join("config")),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error(
        "unknown server '{0}'{1}: it is not a server in the config, a Host in ~/.ssh/config nor a docker context; use user@host, ssh://host, unix:///path or tcp://host:port, or add it under [servers] in the config"
    )]
    Unknown(String, Suggestion),
    #[error(
        "unsupported scheme in '{0}': use unix:///path/to/docker.sock, tcp://host:port or ssh://user@host[:port]"
    )]
    BadScheme(String),
    #[error("bad address '{0}': {1}")]
    BadAddress(String, String),
    #[error(
        "docker context '{0}' not found in {1}{2}; list contexts with `docker context ls` or name a server instead"
    )]
    UnknownContext(String, String, Suggestion),
}

/// Parses an address written with a scheme or as `user@host[:port]`. Returns `Ok(None)` for a bare word,
/// which may be a config server, an ssh alias or a host name.
pub fn parse_address(text: &str) -> Result<Option<Endpoint>, TargetError> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("unix://") {
        if rest.is_empty() {
            return Err(TargetError::BadAddress(
                text.into(),
                "the socket path is empty".into(),
            ));
        }
        return Ok(Some(Endpoint::Unix(PathBuf::from(rest))));
    }
    // `http://` is not a DOCKER_HOST scheme the docker CLI takes either: it falls to BadScheme below.
    if let Some(rest) = text.strip_prefix("tcp://") {
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return Err(TargetError::BadAddress(
                text.into(),
                "the host is empty".into(),
            ));
        }
        let addr = if rest
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            rest.to_string()
        } else {
            format!("{rest}:2375")
        };
        return Ok(Some(Endpoint::Tcp(addr)));
    }
    if let Some(rest) = text.strip_prefix("ssh://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let mut spec = parse_user_host_port(text, authority)?;
        spec.socket = path.filter(|p| *p != "/").map(str::to_string);
        return Ok(Some(Endpoint::Ssh(spec)));
    }
    if let Some((scheme, _)) = text.split_once("://") {
        let _ = scheme;
        return Err(TargetError::BadScheme(text.into()));
    }
    if text.contains('@') {
        return Ok(Some(Endpoint::Ssh(parse_user_host_port(text, text)?)));
    }
    Ok(None)
}

fn parse_user_host_port(whole: &str, authority: &str) -> Result<SshSpec, TargetError> {
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
        Some(_) => {
            return Err(TargetError::BadAddress(
                whole.into(),
                "the user name is empty".into(),
            ));
        }
        None => (None, authority),
    };
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        // [v6]:port
        let (h, after) = inner.split_once(']').ok_or_else(|| {
            TargetError::BadAddress(whole.into(), "missing ']' after IPv6 address".into())
        })?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(whole, p)?),
            None => None,
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), Some(parse_port(whole, p)?)),
            _ => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(TargetError::BadAddress(
            whole.into(),
            "the host is empty".into(),
        ));
    }
    Ok(SshSpec {
        user,
        host,
        port,
        socket: None,
    })
}

fn parse_port(whole: &str, p: &str) -> Result<u16, TargetError> {
    p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
        TargetError::BadAddress(
            whole.into(),
            format!("'{p}' is not a port number (1-65535)"),
        )
    })
}

/// Resolves what the user named (or did not name) into a target.
///
/// `Ok(None)` means "nothing named and the config lists servers": the TUI shows the server picker.
pub fn resolve(
    named: Option<&str>,
    config: &Config,
    env: &Environment,
) -> Result<Option<Target>, TargetError> {
    Ok(resolve_unlabelled(named, config, env)?.map(|t| with_server_settings(t, config, env)))
}

fn resolve_unlabelled(
    named: Option<&str>,
    config: &Config,
    env: &Environment,
) -> Result<Option<Target>, TargetError> {
    if let Some(name) = named {
        return resolve_named_unlabelled(name, config, env).map(Some);
    }
    if let Some(default) = config.default_server.as_deref() {
        return resolve_named_unlabelled(default, config, env).map(Some);
    }
    if let Some(host) = env.docker_host.as_deref() {
        let endpoint =
            parse_address(host)?.ok_or_else(|| TargetError::BadScheme(host.to_string()))?;
        return Ok(Some(Target::from_endpoint(short_name(&endpoint), endpoint)));
    }
    if let Some(ctx) = current_context(env).filter(|c| c != "default") {
        return resolve_context(&ctx, env).map(Some);
    }
    if !config.servers.is_empty() {
        return Ok(None);
    }
    Ok(Some(Target::local()))
}

pub fn resolve_named(
    name: &str,
    config: &Config,
    env: &Environment,
) -> Result<Target, TargetError> {
    resolve_named_unlabelled(name, config, env).map(|t| with_server_settings(t, config, env))
}

/// Every configured server resolved, in the config's order, with the settings of servers at the
/// same place merged as [`resolve_named`] merges them. Each place is worked out once, so a fleet
/// of hundreds of servers costs a pass over them, not one per pair.
pub fn resolve_servers(
    config: &Config,
    env: &Environment,
) -> Vec<(String, Result<Target, TargetError>)> {
    let mut resolved: Vec<(String, Result<Target, TargetError>)> = config
        .servers
        .iter()
        .map(|(name, server)| (name.clone(), from_server_config(name, server, env)))
        .collect();
    let places: Vec<Option<(String, u16)>> = resolved
        .iter()
        .map(|(_, t)| t.as_ref().ok().and_then(|t| place(&t.endpoint, env)))
        .collect();
    let mut at_place: std::collections::HashMap<&(String, u16), Vec<usize>> =
        std::collections::HashMap::new();
    for (i, p) in places.iter().enumerate() {
        if let Some(p) = p {
            at_place.entry(p).or_default().push(i);
        }
    }
    let originals: Vec<Option<Target>> = resolved
        .iter()
        .map(|(_, t)| t.as_ref().ok().cloned())
        .collect();
    for (i, (_, target)) in resolved.iter_mut().enumerate() {
        let (Ok(target), Some(here)) = (target, places[i].as_ref()) else {
            continue;
        };
        if target.environment.is_some() {
            continue;
        }
        for &j in &at_place[here] {
            let Some(same) = &originals[j] else { continue };
            target.read_only |= same.read_only;
            if target.remote_audit.is_none() {
                target.remote_audit = same.remote_audit.clone();
            }
            if target.environment.is_none() || same.is_production() {
                target.environment = same.environment.clone().or(target.environment.take());
            }
        }
    }
    resolved
}

/// Production and read-only follow the server, not the name it was reached by: a target that is
/// not a config entry itself (an ssh alias, `user@host`, `ssh://`, a docker context, `DOCKER_HOST`)
/// takes the environment label, `read_only` and `remote_audit` of every configured server at the
/// same place (host and port after ssh_config, or the same socket). Production wins over any other
/// label; read-only from any of them holds.
fn with_server_settings(mut target: Target, config: &Config, env: &Environment) -> Target {
    if config.servers.contains_key(&target.name) && target.environment.is_some() {
        return target;
    }
    let Some(here) = place(&target.endpoint, env) else {
        return target;
    };
    for (name, server) in &config.servers {
        let Ok(same) = from_server_config(name, server, env) else {
            continue;
        };
        if place(&same.endpoint, env).as_ref() != Some(&here) {
            continue;
        }
        target.read_only |= same.read_only;
        if target.remote_audit.is_none() {
            target.remote_audit = same.remote_audit.clone();
        }
        if target.environment.is_none() || same.is_production() {
            target.environment = same.environment.clone().or(target.environment.take());
        }
    }
    target
}

/// Where an endpoint really leads, for telling two names of one server apart: the host name (after
/// ssh_config's `HostName`, lowercased) and port, or the unix socket path.
/// Where an endpoint really is: host and port after ssh_config, or the socket's path.
pub fn place(endpoint: &Endpoint, env: &Environment) -> Option<(String, u16)> {
    match endpoint {
        Endpoint::Unix(path) => Some((format!("unix:{}", path.display()), 0)),
        Endpoint::Tcp(addr) => {
            let (host, port) = addr.rsplit_once(':')?;
            Some((
                host.trim_matches(['[', ']']).to_lowercase(),
                port.parse().ok()?,
            ))
        }
        Endpoint::Ssh(spec) => {
            // Only the user's file, and no `Match exec`: telling two names apart must not run
            // the user's commands.
            let resolved = env.ssh_config.as_deref().and_then(|path| {
                let home = path
                    .parent()
                    .and_then(Path::parent)
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                let mut i = crate::ssh_config::Inputs::local(&spec.host, &home);
                i.user_config = Some(path.to_path_buf());
                i.port = spec.port;
                i.run_exec = false;
                crate::ssh_config::resolve_host(&i).ok()
            });
            let (host, port) = match resolved {
                Some(r) => (r.hostname, r.port),
                None => (spec.host.clone(), spec.port.unwrap_or(22)),
            };
            let host = host.trim_matches(['[', ']']).to_lowercase();
            let host = if host == "localhost" {
                "127.0.0.1".to_string()
            } else {
                host
            };
            Some((host, port))
        }
    }
}

fn resolve_named_unlabelled(
    name: &str,
    config: &Config,
    env: &Environment,
) -> Result<Target, TargetError> {
    if name == "local" && !config.servers.contains_key("local") {
        return Ok(Target::local());
    }
    if let Some(server) = config.servers.get(name) {
        return from_server_config(name, server, env);
    }
    if let Some(ctx) = name.strip_prefix("context:") {
        return resolve_context(ctx, env);
    }
    if let Some(endpoint) = parse_address(name)? {
        return Ok(Target::from_endpoint(short_name(&endpoint), endpoint));
    }
    let known_alias = env
        .ssh_config
        .as_deref()
        .is_some_and(|p| ssh_config_hosts(p).iter().any(|h| h == name));
    let ssh_host = |name: &str| {
        let spec = SshSpec {
            user: None,
            host: name.to_string(),
            port: None,
            socket: None,
        };
        Ok(Target::from_endpoint(name, Endpoint::Ssh(spec)))
    };
    if known_alias {
        return ssh_host(name);
    }
    // The picker lists docker contexts; `-s NAME` takes the name it shows without `context:`.
    if docker_contexts(env).iter().any(|(n, _)| n == name) {
        return resolve_context(name, env);
    }
    if looks_like_host(name) {
        return ssh_host(name);
    }
    Err(TargetError::Unknown(
        name.to_string(),
        Suggestion(suggest(name, config, env)),
    ))
}

/// A near name for an unknown one, shown as ` (did you mean NAME?)`; empty when nothing is close.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Suggestion(pub Option<String>);

impl fmt::Display for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(s) => write!(f, " (did you mean {s}?)"),
            None => Ok(()),
        }
    }
}

/// The known name closest to `name`: config servers, ssh aliases and docker contexts (as
/// `context:NAME`), within a couple of typos, ignoring case and a mistyped `context:` prefix.
fn suggest(name: &str, config: &Config, env: &Environment) -> Option<String> {
    let mut known: Vec<(String, String)> = config
        .servers
        .keys()
        .map(|k| (k.clone(), k.clone()))
        .collect();
    if let Some(p) = env.ssh_config.as_deref() {
        known.extend(ssh_config_hosts(p).into_iter().map(|h| (h.clone(), h)));
    }
    for (ctx, _) in docker_contexts(env) {
        known.push((ctx.clone(), format!("context:{ctx}")));
        known.push((format!("context:{ctx}"), format!("context:{ctx}")));
    }
    let wanted = name.to_lowercase();
    let bare = wanted.split_once(':').map_or(wanted.as_str(), |(_, b)| b);
    known
        .into_iter()
        .filter_map(|(key, shown)| {
            let key = key.to_lowercase();
            let d = edit_distance(&wanted, &key).min(edit_distance(bare, &key) + 1);
            let limit = (key.chars().count() / 4).clamp(1, 3);
            (d <= limit).then_some((d, shown))
        })
        .min()
        .map(|(_, shown)| shown)
}

/// Edit distance over chars, a swap of two neighbours counting as one edit (`prdo` → `prod`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

fn from_server_config(
    name: &str,
    server: &ServerConfig,
    env: &Environment,
) -> Result<Target, TargetError> {
    let mut endpoint = match parse_address(&server.target)? {
        Some(e) => e,
        None => resolve_named_unlabelled(&server.target, &Config::default(), env)?.endpoint,
    };
    if let (Endpoint::Ssh(spec), Some(sock)) = (&mut endpoint, &server.socket) {
        spec.socket = Some(sock.clone());
    }
    Ok(Target {
        name: name.to_string(),
        endpoint,
        environment: server.environment.clone(),
        read_only: server.read_only,
        remote_audit: server.remote_audit.clone(),
        allow_password: server.allow_password,
    })
}

/// A dotted name or an IP address is a host even when no ssh config mentions it (a Tailscale
/// MagicDNS name such as `box.tail1234.ts.net` or a `100.x` address included).
fn looks_like_host(name: &str) -> bool {
    name.parse::<std::net::IpAddr>().is_ok()
        || (name.contains('.')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && !name.starts_with('.')
            && !name.ends_with('.'))
}

fn short_name(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Unix(p) if p == Path::new(DEFAULT_SOCKET) => "local".into(),
        Endpoint::Unix(p) => p.display().to_string(),
        Endpoint::Tcp(a) => a.clone(),
        Endpoint::Ssh(s) => s.host.clone(),
    }
}

/// `Host` patterns of an ssh config that are plain aliases (no wildcards), following `Include`.
/// A server the picker offers.
#[derive(Debug, Clone, PartialEq)]
pub struct KnownServer {
    pub name: String,
    pub detail: String,
    pub environment: Option<String>,
}

/// The servers known without reading a file: the local engine and the config's servers.
pub fn configured_servers(config: &Config) -> Vec<KnownServer> {
    let mut out = vec![KnownServer {
        name: "local".into(),
        detail: "local engine".into(),
        environment: None,
    }];
    for (name, s) in &config.servers {
        out.push(KnownServer {
            name: name.clone(),
            detail: s.target.clone(),
            environment: s.environment.clone(),
        });
    }
    out
}

/// Every server berth knows of: the configured ones, then `~/.ssh/config` hosts and docker
/// contexts. Reads files: the console calls it off its loop.
pub fn known_servers(config: &Config, env: &Environment) -> Vec<KnownServer> {
    let mut out = configured_servers(config);
    if let Some(p) = &env.ssh_config {
        for h in ssh_config_hosts(p) {
            if !out.iter().any(|e| e.name == h) {
                out.push(KnownServer {
                    name: h,
                    detail: "ssh config".into(),
                    environment: None,
                });
            }
        }
    }
    for (name, host) in docker_contexts(env) {
        out.push(KnownServer {
            name: format!("context:{name}"),
            detail: host,
            environment: None,
        });
    }
    out
}

/// The host aliases of an ssh config (relative includes start in its directory, `~/.ssh`).
pub fn ssh_config_hosts(path: &Path) -> Vec<String> {
    crate::ssh_config::hosts(path, path.parent().unwrap_or(Path::new(".")))
}

/// The docker CLI's current context: `DOCKER_CONTEXT`, else `currentContext` in `config.json`.
pub fn current_context(env: &Environment) -> Option<String> {
    if let Some(c) = &env.docker_context {
        return Some(c.clone());
    }
    let dir = env.docker_config_dir.as_ref()?;
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("currentContext")?
        .as_str()
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

/// All docker contexts as (name, docker host).
pub fn docker_contexts(env: &Environment) -> Vec<(String, String)> {
    let Some(dir) = env.docker_config_dir.as_ref() else {
        return vec![];
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir.join("contexts").join("meta"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(text) = std::fs::read_to_string(entry.path().join("meta.json")) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let name = v.get("Name").and_then(|n| n.as_str());
        let host = v.pointer("/Endpoints/docker/Host").and_then(|h| h.as_str());
        if let (Some(n), Some(h)) = (name, host) {
            out.push((n.to_string(), h.to_string()));
        }
    }
    out.sort();
    out
}

fn resolve_context(name: &str, env: &Environment) -> Result<Target, TargetError> {
    if name == "default" {
        return Ok(Target::local());
    }
    let (_, host) = docker_contexts(env)
        .into_iter()
        .find(|(n, _)| n == name)
        .ok_or_else(|| {
            let dir = env
                .docker_config_dir
                .as_ref()
                .map(|d| d.join("contexts").display().to_string())
                .unwrap_or_else(|| "~/.docker/contexts".into());
            TargetError::UnknownContext(
                name.to_string(),
                dir,
                Suggestion(suggest(&format!("context:{name}"), &Config::default(), env)),
            )
        })?;
    let endpoint = parse_address(&host)?.ok_or_else(|| TargetError::BadScheme(host.clone()))?;
    Ok(Target::from_endpoint(format!("context:{name}"), endpoint))
}

#[cfg(test)]
#[path = "target_tests.rs"]
mod tests;
