//! Verifying that a container serves after a change: its HEALTHCHECK (or plain running when it has
//! none) and an optional HTTP endpoint, reached through a [`Dialer`] (local TCP, or an SSH
//! `direct-tcpip` channel the ssh module provides), N tries × interval.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{HealthSettings, Runner};
use crate::engine::Engine;
use crate::engine::model::{Health, State};

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type DialFuture<'a> = Pin<Box<dyn Future<Output = std::io::Result<Box<dyn Io>>> + Send + 'a>>;

/// Opens a byte stream to `host:port` as seen from the server.
pub trait Dialer: Send + Sync {
    fn dial<'a>(&'a self, host: &'a str, port: u16) -> DialFuture<'a>;
}

/// The engine is on this machine: a plain TCP connection.
pub struct LocalDialer;

impl Dialer for LocalDialer {
    fn dial<'a>(&'a self, host: &'a str, port: u16) -> DialFuture<'a> {
        Box::pin(async move {
            let s = tokio::net::TcpStream::connect((host, port)).await?;
            Ok(Box::new(s) as Box<dyn Io>)
        })
    }
}

/// Through the SSH session: a `direct-tcpip` channel, so the probe sees what the server sees and
/// nothing needs installing there.
struct SshDialer(Arc<crate::ssh::SshSession>);

impl Dialer for SshDialer {
    fn dial<'a>(&'a self, host: &'a str, port: u16) -> DialFuture<'a> {
        Box::pin(async move {
            let s = self
                .0
                .direct_tcpip(host, port)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(Box::new(s) as Box<dyn Io>)
        })
    }
}

/// How HTTP probes reach the engine's host: locally, or through the engine's SSH session.
pub fn dialer_for(engine: &crate::engine::Engine) -> Arc<dyn Dialer> {
    match &engine.ssh {
        Some(session) => Arc::new(SshDialer(session.clone())),
        None => Arc::new(LocalDialer),
    }
}

/// `http://host:port/path` → (host, port, path).
pub fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("health_url '{url}' must start with http:// (it is probed through the tunnel)")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("health_url '{url}': bad port '{p}'"))?,
        ),
        None => (authority, 80),
    };
    if host.is_empty() {
        return Err(format!("health_url '{url}': the host is empty"));
    }
    Ok((
        host.trim_matches(|c| c == '[' || c == ']').to_string(),
        port,
        path.to_string(),
    ))
}

/// A minimal HTTP/1.1 GET; returns the status code.
pub async fn http_get(dialer: &dyn Dialer, url: &str, timeout: Duration) -> Result<u16, String> {
    let (host, port, path) = parse_url(url)?;
    let work = async {
        let mut s = dialer
            .dial(&host, port)
            .await
            .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: berth\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 256];
        // The status line is all we need; read until it is complete, bounded.
        while !buf.contains(&b'\n') && buf.len() < 4096 {
            let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let line = String::from_utf8_lossy(&buf);
        let code = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| "no HTTP status line in the answer".to_string())?;
        Ok(code)
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no answer within {} ms", timeout.as_millis()))?
}

/// Waits until container `id` is healthy (or running, with no health check) and, when set, the HTTP
/// endpoint answers 2xx — and stays so for the whole verify window ([`HealthSettings::window`]),
/// seen without a lost answer in between: a container inside a stop's grace period, or one seen
/// once just after a reconnect, is not called healthy. Bounded by `settings.retries × interval`
/// plus the window. Progress goes to step `i`.
pub(crate) async fn wait_healthy(
    engine: &Engine,
    id: &str,
    settings: &HealthSettings,
    run: &Runner,
    i: usize,
) -> Result<String, String> {
    let started = Instant::now();
    let window = settings.window();
    let extra = (window.as_millis() / settings.interval.as_millis().max(1)) as u32 + 1;
    let tries = settings.retries + extra;
    let mut healthy_since: Option<Instant> = None;
    let mut last = String::new();
    for attempt in 1..=tries {
        if run.cancelled() {
            return Err("cancelled while waiting for health".into());
        }
        // The window restarts after anything the link lost: only an unbroken view counts.
        let link_up = engine.ssh.as_ref().is_none_or(|s| {
            matches!(
                *s.status().borrow(),
                crate::ssh::LinkStatus::Connected { .. }
            )
        });
        let c = match engine.inspect(id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err(format!("container {} is gone", super::short(id))),
            Err(e) => {
                healthy_since = None;
                last = format!("no answer from the engine: {e}");
                run.out(i, format!("try {attempt}: {last}")).await;
                if attempt >= settings.retries && attempt < tries {
                    // Out of tries for a first sighting; the window's extra polls are not for this.
                    break;
                }
                pause(settings, run).await?;
                continue;
            }
        };
        if !link_up {
            healthy_since = None;
        }
        let state_ok = match (c.state, c.has_healthcheck, c.health) {
            (State::Exited | State::Dead, ..) => {
                return Err(format!(
                    "{} exited (code {})",
                    c.name,
                    c.exit_code.unwrap_or(-1)
                ));
            }
            (_, true, Health::Unhealthy) => {
                let probe = c
                    .health_log
                    .last()
                    .map(|p| p.output.trim().to_string())
                    .unwrap_or_default();
                return Err(format!(
                    "{} is unhealthy{}",
                    c.name,
                    if probe.is_empty() {
                        String::new()
                    } else {
                        format!(": {probe}")
                    }
                ));
            }
            (State::Running, true, Health::Healthy) => true,
            (State::Running, false, _) => true,
            _ => false,
        };
        let http_ok = match (&settings.url, state_ok) {
            (Some(url), true) => match http_get(
                dialer_for(engine).as_ref(),
                url,
                settings.interval.max(Duration::from_secs(1)),
            )
            .await
            {
                Ok(code) if (200..300).contains(&code) => true,
                Ok(code) => {
                    last = format!("{url} answered {code}");
                    false
                }
                Err(e) => {
                    last = format!("{url}: {e}");
                    false
                }
            },
            _ => state_ok,
        };
        let what = if c.has_healthcheck {
            c.health.as_str()
        } else {
            c.state.as_str()
        };
        run.out(
            i,
            format!(
                "try {attempt}/{}: {} {what}{}",
                settings.retries,
                c.name,
                if last.is_empty() {
                    String::new()
                } else {
                    format!(" ({last})")
                }
            ),
        )
        .await;
        if state_ok && http_ok && link_up {
            let since = *healthy_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= window {
                return Ok(format!(
                    "{} {} after {:.1} s, steadily for {:.1} s",
                    c.name,
                    if c.has_healthcheck {
                        "healthy"
                    } else {
                        "running"
                    },
                    started.elapsed().as_secs_f64(),
                    since.elapsed().as_secs_f64()
                ));
            }
        } else {
            healthy_since = None;
            // The extra polls only complete a window that already began.
            if attempt >= settings.retries {
                break;
            }
        }
        if attempt < tries {
            pause_for(next_look(engine, &c, settings), run).await?;
        }
    }
    Err(format!(
        "not healthy after {} ({}){}",
        settings.describe(),
        super::short(id),
        if last.is_empty() {
            String::new()
        } else {
            format!(": {last}")
        }
    ))
}

async fn pause(settings: &HealthSettings, run: &Runner) -> Result<(), String> {
    pause_for(settings.interval, run).await
}

async fn pause_for(wait: Duration, run: &Runner) -> Result<(), String> {
    tokio::select! {
        _ = tokio::time::sleep(wait) => Ok(()),
        _ = run.cancel.cancelled() => Err("cancelled while waiting for health".into()),
    }
}

/// How long until the next look: one interval, timed, on an engine of this machine (its clock
/// is ours), to just after the container's next health check is due (its last check's start,
/// else its start, plus the interval), so a check that passed is seen at once rather than up to
/// an interval later. Never sooner than a quarter interval, never later than one.
fn next_look(
    engine: &Engine,
    c: &crate::engine::model::Container,
    settings: &HealthSettings,
) -> Duration {
    // The check's own time to run (an exec in the container) before its result is recorded.
    const CHECK_RUNS: Duration = Duration::from_millis(200);
    let every = settings.interval;
    if engine.ssh.is_some() || !c.has_healthcheck || settings.interval_configured {
        return every;
    }
    let Some(last) = c.health_log.last().and_then(|p| p.start).or(c.started_at) else {
        return every;
    };
    let due = last + chrono::Duration::from_std(every + CHECK_RUNS).unwrap_or_default();
    let until = (due - chrono::Utc::now()).to_std().unwrap_or_default();
    until.clamp(every / 4, every)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/health").unwrap(),
            ("127.0.0.1".into(), 8080, "/health".into())
        );
        assert_eq!(
            parse_url("http://web").unwrap(),
            ("web".into(), 80, "/".into())
        );
        assert!(parse_url("https://x").is_err());
        assert!(parse_url("http://x:99999/").is_err());
        assert!(parse_url("http://:80/").is_err());
    }

    #[tokio::test]
    async fn http_get_reads_status() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            for code in ["200 OK", "404 Not Found"] {
                let (mut s, _) = l.accept().await.unwrap();
                let mut b = [0u8; 512];
                let _ = s.read(&mut b).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        let url = format!("http://127.0.0.1:{port}/health");
        assert_eq!(
            http_get(&LocalDialer, &url, Duration::from_secs(5)).await,
            Ok(200)
        );
        assert_eq!(
            http_get(&LocalDialer, &url, Duration::from_secs(5)).await,
            Ok(404)
        );
    }
}
