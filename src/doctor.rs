//! `berth doctor`: checks each link between this machine and the Docker engine in order (name, TCP,
//! SSH handshake and host key, authentication, Docker socket, engine version, disk) and says how to
//! fix the first thing that is broken.

use std::io::Write;
use std::time::Duration;

use crate::engine;
use crate::ssh::{self, SshError, SshOptions};
use crate::target::{Endpoint, Target};

const STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// Below this much free space on the Docker root, pulls and builds start failing.
const MIN_FREE_BYTES: u64 = 2 << 30;
const MAX_USED_PERCENT: u64 = 90;

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    /// What was checked: "name resolution", "docker socket", …
    pub what: String,
    /// The finding; for a failure, what is wrong and how to fix it.
    pub detail: String,
}

impl Check {
    fn ok(what: &str, detail: impl Into<String>) -> Check {
        Check {
            ok: true,
            what: what.into(),
            detail: detail.into(),
        }
    }
    fn fail(what: &str, detail: impl Into<String>) -> Check {
        Check {
            ok: false,
            what: what.into(),
            detail: detail.into(),
        }
    }
    /// `✓ what: detail` or `✗ what: detail`.
    pub fn line(&self) -> String {
        format!(
            "{} {}: {}",
            if self.ok { "✓" } else { "✗" },
            self.what,
            self.detail
        )
    }
}

/// Runs every check for `target`, printing each line as it completes. Returns true when all passed.
pub async fn run(target: &Target, options: &SshOptions) -> bool {
    let mut all_ok = true;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "berth doctor: {} ({})", target.name, target.endpoint);
    checks(target, options, |c| {
        all_ok &= c.ok;
        // Details quote the server (engine errors, versions): cleaned before the terminal.
        let _ = writeln!(out, "{}", crate::logs::sanitize::plain(&c.line()));
        let _ = out.flush();
    })
    .await;
    all_ok
}

/// Runs the checks, handing each to `report` as soon as it is known. Stops at the first failure that
/// makes the later checks meaningless.
pub async fn checks(target: &Target, options: &SshOptions, mut report: impl FnMut(&Check)) {
    match &target.endpoint {
        Endpoint::Ssh(spec) => ssh_checks(spec, target, options, &mut report).await,
        Endpoint::Unix(path) => {
            let p = path.display().to_string();
            if !path.exists() {
                report(&Check::fail(
                    "docker socket",
                    format!(
                        "no socket at {p}: is Docker installed and running? (`sudo systemctl start docker`)"
                    ),
                ));
                return;
            }
            engine_checks(
                target,
                engine::docker_for(&target.endpoint),
                "docker socket",
                &p,
                &mut report,
            )
            .await;
        }
        Endpoint::Tcp(addr) => {
            match tokio::time::timeout(STEP_TIMEOUT, tokio::net::TcpStream::connect(addr.as_str()))
                .await
            {
                Ok(Ok(_)) => report(&Check::ok("tcp reach", addr.clone())),
                Ok(Err(e)) => {
                    report(&Check::fail(
                        "tcp reach",
                        format!("{addr}: {e}; is dockerd listening on TCP there?"),
                    ));
                    return;
                }
                Err(_) => {
                    report(&Check::fail(
                        "tcp reach",
                        format!("{addr}: no answer within {} s", STEP_TIMEOUT.as_secs()),
                    ));
                    return;
                }
            }
            engine_checks(
                target,
                engine::docker_for(&target.endpoint),
                "docker api",
                addr,
                &mut report,
            )
            .await;
        }
    }
}

async fn engine_checks(
    target: &Target,
    docker: Result<(bollard::Docker, String), engine::EngineError>,
    what: &str,
    where_: &str,
    report: &mut impl FnMut(&Check),
) {
    let docker = match docker {
        Ok((d, _)) => d,
        Err(e) => return report(&Check::fail(what, e.to_string())),
    };
    match engine::check_version(&docker, &target.endpoint.to_string()).await {
        Ok(v) => {
            report(&Check::ok(what, format!("{where_} answers")));
            report(&Check::ok(
                "engine",
                format!("Docker {} (API {}, {}/{})", v.engine, v.api, v.os, v.arch),
            ));
        }
        Err(e @ engine::EngineError::ApiTooOld(..)) => {
            report(&Check::ok(what, format!("{where_} answers")));
            report(&Check::fail("engine", e.to_string()));
        }
        Err(e) => report(&Check::fail(what, e.to_string())),
    }
}

async fn ssh_checks(
    spec: &crate::target::SshSpec,
    target: &Target,
    options: &SshOptions,
    report: &mut impl FnMut(&Check),
) {
    let r = match ssh::resolve(spec, options) {
        Ok(r) => r,
        Err(e) => return report(&Check::fail("ssh config", e.to_string())),
    };
    let via = if r.proxy_jump.is_empty() {
        String::new()
    } else {
        format!(
            " via {}",
            r.proxy_jump
                .iter()
                .map(|j| j.host.clone())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let via = match &r.proxy_command {
        Some(c) => format!("{via} via ProxyCommand {}", c.trim_start_matches("exec ")),
        None => via,
    };
    report(&Check::ok(
        "ssh config",
        format!("{} → {}@{}:{}{via}", spec.host, r.user, r.host, r.port),
    ));
    // Named, not failed: ssh would connect the same way unless the server needs that option.
    if let Some(line) = r.unhonoured_line() {
        report(&Check::ok("ssh config", line));
    }

    if r.proxy_jump.is_empty() && r.proxy_command.is_none() {
        let addrs = match tokio::time::timeout(
            STEP_TIMEOUT,
            tokio::net::lookup_host((r.host.as_str(), r.port)),
        )
        .await
        {
            Ok(Ok(a)) => a.collect::<Vec<_>>(),
            Ok(Err(e)) => {
                return report(&Check::fail(
                    "name resolution",
                    format!(
                        "cannot resolve '{}' ({e}): check the name, or set HostName in ~/.ssh/config",
                        r.host
                    ),
                ));
            }
            Err(_) => {
                return report(&Check::fail(
                    "name resolution",
                    format!("resolving '{}' timed out", r.host),
                ));
            }
        };
        let shown: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
        report(&Check::ok(
            "name resolution",
            format!("{} → {}", r.host, shown.join(", ")),
        ));
        let mut reached = None;
        let mut last = String::new();
        for a in &addrs {
            match tokio::time::timeout(STEP_TIMEOUT, tokio::net::TcpStream::connect(a)).await {
                Ok(Ok(_)) => {
                    reached = Some(*a);
                    break;
                }
                Ok(Err(e)) => last = e.to_string().to_lowercase(),
                Err(_) => last = format!("no answer within {} s", STEP_TIMEOUT.as_secs()),
            }
        }
        match reached {
            Some(a) => report(&Check::ok("tcp reach", a.to_string())),
            None => {
                return report(&Check::fail(
                    "tcp reach",
                    format!(
                        "{}:{}: {last}; is sshd running, is the port right, does a firewall block it?",
                        r.host, r.port
                    ),
                ));
            }
        }
    } else {
        report(&Check::ok(
            "name resolution",
            format!("{} is resolved by the jump host", r.host),
        ));
    }

    let session = match ssh::establish(spec, target, options).await {
        Ok(s) => s,
        Err(e) => {
            let step = match &e {
                SshError::Auth { .. } | SshError::WrongPassphrase { .. } => {
                    report(&Check::ok("ssh handshake", "host key accepted"));
                    "authentication"
                }
                SshError::Resolve { .. } => "name resolution",
                SshError::Connect { .. } | SshError::Timeout { .. } => "tcp reach",
                _ => "ssh handshake",
            };
            return report(&Check::fail(step, e.to_string()));
        }
    };
    report(&Check::ok(
        "ssh handshake",
        format!("host key {}", session.host_key_status()),
    ));
    report(&Check::ok("authentication", session.auth_method()));

    if let Err(e) = session.probe_docker().await {
        return report(&Check::fail("docker socket", e.to_string()));
    }
    report(&Check::ok(
        "docker socket",
        format!(
            "{} on {} ({})",
            spec.socket_path(),
            spec.host,
            session.transport_name()
        ),
    ));
    let docker = session.docker();
    match engine::check_version(&docker, &target.endpoint.to_string()).await {
        Ok(v) => report(&Check::ok(
            "engine",
            format!("Docker {} (API {}, {}/{})", v.engine, v.api, v.os, v.arch),
        )),
        Err(e) => return report(&Check::fail("engine", e.to_string())),
    }
    report(&disk_check(&session, &docker).await);
}

async fn disk_check(session: &ssh::SshSession, docker: &bollard::Docker) -> Check {
    let root = match tokio::time::timeout(STEP_TIMEOUT, docker.info()).await {
        Ok(Ok(i)) => i
            .docker_root_dir
            .unwrap_or_else(|| "/var/lib/docker".into()),
        Ok(Err(e)) => return Check::fail("disk", format!("cannot read the engine's info: {e}")),
        Err(_) => return Check::fail("disk", "the engine's info did not come within 15 s"),
    };
    let cmd = format!("df -P '{}'", root.replace('\'', "'\\''"));
    let out = match session.exec(&cmd).await {
        Ok(o) if o.exit_code == Some(0) => o,
        Ok(o) => {
            return Check::fail(
                "disk",
                format!(
                    "`{cmd}` failed on the server: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            );
        }
        Err(e) => return Check::fail("disk", e.to_string()),
    };
    match parse_df(&String::from_utf8_lossy(&out.stdout)) {
        Some((avail, total, used_pct)) => {
            let text = format!(
                "{} free of {} ({used_pct}% used) on {root}",
                human(avail),
                human(total)
            );
            if avail < MIN_FREE_BYTES || used_pct >= MAX_USED_PERCENT {
                Check::fail(
                    "disk",
                    format!("{text}: free space with `berth prune` or `docker system prune`"),
                )
            } else {
                Check::ok("disk", text)
            }
        }
        None => Check::fail("disk", format!("cannot read the output of `{cmd}`")),
    }
}

/// `df -P` output → (available bytes, total bytes, used percent).
pub fn parse_df(text: &str) -> Option<(u64, u64, u64)> {
    let line = text.lines().nth(1)?;
    let f: Vec<&str> = line.split_whitespace().collect();
    // The file system name may contain spaces: count fields from the end.
    let n = f.len();
    if n < 6 {
        return None;
    }
    let total: u64 = f[n - 5].parse().ok()?;
    let avail: u64 = f[n - 3].parse().ok()?;
    let pct: u64 = f[n - 2].trim_end_matches('%').parse().ok()?;
    Some((avail * 1024, total * 1024, pct))
}

fn human(bytes: u64) -> String {
    let gib = bytes as f64 / (1u64 << 30) as f64;
    if gib >= 1.0 {
        format!("{gib:.1} GiB")
    } else {
        format!("{:.0} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_df() {
        let t = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n/dev/sda1 10485760 5242880 5242880 50% /\n";
        assert_eq!(
            super::parse_df(t),
            Some((5242880 * 1024, 10485760 * 1024, 50))
        );
        assert_eq!(super::parse_df("garbage"), None);
        assert_eq!(super::human(3 << 30), "3.0 GiB");
    }
}
