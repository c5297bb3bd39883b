//! Which host, port, user, keys and timeouts a target means once `~/.ssh/config` is applied.

use std::path::PathBuf;
use std::time::Duration;

use super::{SshError, SshOptions};
use crate::ssh_config as config;
use crate::target::SshSpec;

/// Keepalive interval when the ssh config sets none: short enough that a frozen link (TCP open,
/// peer silent) is marked stale within ~4 s and dropped within 10 s (× `ServerAliveCountMax`, 3).
const DEFAULT_ALIVE_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// StrictHostKeyChecking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strict {
    /// Refuse unknown keys.
    Yes,
    /// Ask (the default).
    Ask,
    /// Save unknown keys without asking (`accept-new`, and `no` for unknown keys).
    AcceptNew,
}

/// One host with the ssh config applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub alias: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub identities_only: bool,
    pub proxy_jump: Vec<SshSpec>,
    /// The `ProxyCommand` line as ssh runs it through the shell (`exec …`, tokens expanded).
    pub proxy_command: Option<String>,
    /// Read and written (new keys go to the first).
    pub known_hosts: Vec<PathBuf>,
    /// `GlobalKnownHostsFile`: read, never written.
    pub global_known_hosts: Vec<PathBuf>,
    /// The name host keys are looked up and saved under instead of host:port.
    pub host_key_alias: Option<String>,
    pub strict: Strict,
    pub alive_interval: Duration,
    pub alive_count_max: u32,
    pub connect_timeout: Duration,
    pub agent: Option<PathBuf>,
    /// Save new host keys with hashed names (`HashKnownHosts yes`).
    pub hash_known_hosts: bool,
    /// Options that apply to this host and that berth cannot honour, to be named once.
    pub unhonoured: Vec<config::Unhonoured>,
}

impl Resolved {
    /// One line naming what berth cannot honour for this host, if anything.
    pub fn unhonoured_line(&self) -> Option<String> {
        if self.unhonoured.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .unhonoured
            .iter()
            .map(|u| {
                format!(
                    "{} {} ({}:{})",
                    u.keyword,
                    u.value,
                    u.file.display(),
                    u.line
                )
            })
            .collect();
        Some(format!(
            "{}: berth does not honour {}; ssh would",
            self.alias,
            list.join(", ")
        ))
    }
}

/// The ssh config inputs for `spec` on this machine (user and system files from `options`).
pub fn inputs(spec: &SshSpec, options: &SshOptions) -> config::Inputs {
    let home = options.home_dir();
    let mut i = config::Inputs::local(&spec.host, &home);
    i.user = spec.user.clone();
    i.port = spec.port;
    i.user_config = Some(options.ssh_config_path());
    i.system_config = Some(options.system_config_path());
    i
}

/// Applies the ssh config to `spec` as `ssh -G` does: what [`connect`] will dial. Values given in
/// `spec` win (as ssh's `-l` and `-p`).
pub fn resolve(spec: &SshSpec, options: &SshOptions) -> Result<Resolved, SshError> {
    let c = config::resolve_host(&inputs(spec, options))
        .map_err(|e| SshError::Config(e.to_string()))?;
    let path = |p: &str| {
        c.expand_path(p)
            .map_err(|e| SshError::Config(e.to_string()))
    };
    let identity_files = c
        .identity_files
        .iter()
        .map(|p| path(p))
        .collect::<Result<_, _>>()?;
    let known_hosts = c.user_known_hosts.iter().map(PathBuf::from).collect();
    let global_known_hosts = c
        .global_known_hosts
        .iter()
        .map(|p| config::expand_home(p, &options.home_dir()))
        .collect();
    let strict = match c.strict_host_key_checking.as_str() {
        "true" => Strict::Yes,
        "accept-new" | "false" => Strict::AcceptNew,
        _ => Strict::Ask,
    };
    let proxy_jump = if c.proxy_jump.is_empty() {
        vec![]
    } else {
        parse_jumps(&c.proxy_jump.join(","))?
    };
    let proxy_command = c
        .proxy_command_line()
        .map_err(|e| SshError::Config(format!("{}: {e}", spec.host)))?;
    let agent = if options.no_agent {
        None
    } else if let Some(a) = &options.agent_socket {
        Some(a.clone())
    } else {
        match c.identity_agent.as_deref() {
            Some("none") => None,
            Some(v) if v.starts_with('$') => std::env::var_os(v.trim_start_matches('$'))
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            Some(a) if a != "SSH_AUTH_SOCK" => Some(PathBuf::from(a)),
            _ => std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        }
    };
    Ok(Resolved {
        alias: spec.host.clone(),
        host: c.hostname.clone(),
        port: c.port,
        user: c.user.clone(),
        identity_files,
        identities_only: c.identities_only,
        proxy_jump,
        proxy_command,
        known_hosts,
        global_known_hosts,
        host_key_alias: c.host_key_alias.clone(),
        strict,
        alive_interval: Some(c.server_alive_interval)
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_ALIVE_INTERVAL),
        alive_count_max: c.server_alive_count_max.max(1),
        connect_timeout: c
            .connect_timeout
            .filter(|t| *t > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        agent,
        hash_known_hosts: c.hash_known_hosts,
        unhonoured: c.unhonoured,
    })
}

pub(super) fn parse_jumps(text: &str) -> Result<Vec<SshSpec>, SshError> {
    text.split(',')
        .map(|hop| {
            let hop = hop.trim();
            let addr = if hop.starts_with("ssh://") {
                hop.to_string()
            } else {
                format!("ssh://{hop}")
            };
            match crate::target::parse_address(&addr) {
                Ok(Some(crate::target::Endpoint::Ssh(s))) => Ok(s),
                _ => Err(SshError::BadJump(text.to_string())),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(home: &std::path::Path) -> SshOptions {
        SshOptions {
            batch: true,
            home: Some(home.to_path_buf()),
            system_config: Some(home.join("no-system-config")),
            no_agent: true,
            ..Default::default()
        }
    }

    #[test]
    fn resolve_applies_the_ssh_config() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(
            home.join(".ssh/config"),
            "Host prod\n  HostName %h.example.com\n  User deploy\n  Port 2200\n  IdentityFile ~/.ssh/%r_%h\n  \
             IdentitiesOnly yes\n  ProxyJump ops@bastion:2222,jump2\n  UserKnownHostsFile ~/.ssh/kh_a /etc/kh_b\n  \
             StrictHostKeyChecking accept-new\n  ServerAliveInterval 5\n  IdentityAgent none\n\
             Host *\n  User fallback\n  ConnectTimeout 3\n",
        )
        .unwrap();
        let spec = SshSpec {
            user: None,
            host: "prod".into(),
            port: None,
            socket: None,
        };
        let r = resolve(
            &spec,
            &SshOptions {
                no_agent: false,
                ..opts(home)
            },
        )
        .unwrap();
        assert_eq!(
            (r.host.as_str(), r.user.as_str(), r.port),
            ("prod.example.com", "deploy", 2200)
        );
        assert_eq!(
            r.identity_files,
            vec![home.join(".ssh/deploy_prod.example.com")]
        );
        assert!(r.identities_only);
        assert_eq!(r.proxy_jump.len(), 2);
        assert_eq!(
            (
                r.proxy_jump[0].user.as_deref(),
                r.proxy_jump[0].host.as_str(),
                r.proxy_jump[0].port
            ),
            (Some("ops"), "bastion", Some(2222))
        );
        assert_eq!(
            r.known_hosts,
            vec![home.join(".ssh/kh_a"), PathBuf::from("/etc/kh_b")]
        );
        assert_eq!(r.strict, Strict::AcceptNew);
        assert_eq!(r.alive_interval, Duration::from_secs(5));
        assert_eq!(r.connect_timeout, Duration::from_secs(3));
        assert_eq!(r.agent, None, "IdentityAgent none");

        // What the user typed wins over the config.
        let spec = SshSpec {
            user: Some("me".into()),
            host: "prod".into(),
            port: Some(22),
            socket: None,
        };
        let r = resolve(&spec, &opts(home)).unwrap();
        assert_eq!((r.user.as_str(), r.port), ("me", 22));

        let spec = SshSpec {
            user: None,
            host: "10.1.2.3".into(),
            port: None,
            socket: None,
        };
        let r = resolve(&spec, &opts(home)).unwrap();
        assert_eq!(
            (r.host.as_str(), r.user.as_str(), r.port, r.strict),
            ("10.1.2.3", "fallback", 22, Strict::Ask)
        );
        assert_eq!(
            r.known_hosts,
            vec![
                home.join(".ssh/known_hosts"),
                home.join(".ssh/known_hosts2")
            ]
        );
    }
}
