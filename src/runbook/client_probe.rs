//! The downtime a client sees during a switch: a probe of the service's published port (or its
//! `health_url`) every 50 ms from where berth runs its checks (through the SSH tunnel when the
//! engine is remote), measuring the longest stretch without an answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::ContainerInspectResponse;
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::health::{Dialer, http_get, parse_url};

/// How often a client is imitated.
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(50);
/// A probe that takes longer than this counts as no answer (a client would have given up too).
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a connection to a published port must stay open to count as served.
const HELD_OPEN: Duration = Duration::from_millis(100);

/// What is probed: a TCP connect to a published port, or an HTTP GET that must answer 2xx.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ProbeTarget {
    Port { host: String, port: u16 },
    Url(String),
}

impl ProbeTarget {
    /// The health URL when configured (it says what "answering" means), else the first published
    /// TCP host port of the container.
    pub(crate) fn for_container(
        url: Option<&str>,
        inspect: &ContainerInspectResponse,
    ) -> Option<ProbeTarget> {
        if let Some(u) = url
            && parse_url(u).is_ok()
        {
            return Some(ProbeTarget::Url(u.to_string()));
        }
        let bindings = inspect.host_config.as_ref()?.port_bindings.as_ref()?;
        let mut ports: Vec<(&String, _)> = bindings
            .iter()
            .filter(|(k, _)| k.ends_with("/tcp"))
            .collect();
        ports.sort_by_key(|(k, _)| (*k).clone());
        ports.into_iter().find_map(|(_, v)| {
            v.as_ref()?.iter().find_map(|b| {
                let port = b.host_port.as_deref()?.parse::<u16>().ok()?;
                (port != 0).then(|| ProbeTarget::Port {
                    // A wildcard bind answers on loopback; a specific address only there.
                    host: match b.host_ip.as_deref() {
                        None | Some("") | Some("0.0.0.0") => "127.0.0.1".into(),
                        Some("::") => "::1".into(),
                        Some(ip) => ip.to_string(),
                    },
                    port,
                })
            })
        })
    }

    /// The figure's name: where it was measured.
    fn describe(&self) -> String {
        match self {
            ProbeTarget::Port { port, .. } => format!(":{port}"),
            ProbeTarget::Url(u) => u.clone(),
        }
    }
}

/// What the probe saw between start and stop.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Seen {
    pub probes: u64,
    pub failed: u64,
    /// The longest stretch from a probe without answer to the next answered one (or to the end).
    pub longest_gap: Duration,
    pub answered_once: bool,
}

/// A running probe; [`ClientProbe::stop`] ends it and returns what it saw.
pub(crate) struct ClientProbe {
    target: ProbeTarget,
    stop: watch::Sender<bool>,
    task: JoinHandle<Seen>,
}

impl ClientProbe {
    pub(crate) fn start(dialer: Arc<dyn Dialer>, target: ProbeTarget) -> ClientProbe {
        let (stop, mut stopped) = watch::channel(false);
        let t = target.clone();
        let task = tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut down_since: Option<Instant> = None;
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let asked = Instant::now();
                let ok = tokio::select! {
                    ok = answers(dialer.as_ref(), &t) => ok,
                    _ = stopped.changed() => break,
                };
                seen.probes += 1;
                if ok {
                    seen.answered_once = true;
                    // The gap ends when the answering probe was sent, not when it was judged.
                    if let Some(s) = down_since.take() {
                        seen.longest_gap = seen.longest_gap.max(asked.duration_since(s));
                    }
                } else {
                    seen.failed += 1;
                    down_since.get_or_insert(asked);
                }
            }
            if let Some(s) = down_since {
                seen.longest_gap = seen.longest_gap.max(s.elapsed());
            }
            seen
        });
        ClientProbe { target, stop, task }
    }

    /// Ends the probe; the line for the final message and the audit, and what was seen.
    pub(crate) async fn stop(self) -> (String, Seen) {
        let _ = self.stop.send(true);
        let seen = self.task.await.unwrap_or_default();
        (figure(&self.target, &seen), seen)
    }
}

async fn answers(dialer: &dyn Dialer, target: &ProbeTarget) -> bool {
    match target {
        ProbeTarget::Port { host, port } => {
            let Ok(Ok(mut conn)) =
                tokio::time::timeout(PROBE_TIMEOUT, dialer.dial(host, *port)).await
            else {
                return false;
            };
            // Accepted is not served: docker-proxy accepts on the published port while the app
            // behind it is not listening (stopping, or not yet up), then closes at once. Something
            // serves when the connection stays open for a moment (a server waiting for its
            // client) or speaks first.
            let mut byte = [0u8; 1];
            match tokio::time::timeout(HELD_OPEN, conn.read(&mut byte)).await {
                Err(_) => true,
                Ok(Ok(n)) => n > 0,
                Ok(Err(_)) => false,
            }
        }
        ProbeTarget::Url(u) => http_get(dialer, u, PROBE_TIMEOUT)
            .await
            .is_ok_and(|code| (200..300).contains(&code)),
    }
}

/// Names the figure for what it measures.
fn figure(target: &ProbeTarget, seen: &Seen) -> String {
    let every = PROBE_EVERY.as_millis();
    let on = target.describe();
    if !seen.answered_once {
        return format!(
            "clients got no answer at all during the switch ({} probe(s) every {every} ms on {on})",
            seen.probes
        );
    }
    format!(
        "clients saw {:.1} s without answer ({} of {} probes every {every} ms on {on} failed)",
        seen.longest_gap.as_secs_f64(),
        seen.failed,
        seen.probes
    )
}

/// berth's own figure when there is nothing a client could reach.
pub(crate) fn own_figure(gap: Option<Duration>) -> String {
    match gap {
        Some(g) => format!(
            "no published port or health_url to probe; berth measured {:.1} s without a running replica",
            g.as_secs_f64()
        ),
        None => {
            "no published port or health_url to probe; replicas were replaced beside the running ones"
                .into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{HostConfig, PortBinding};
    use std::collections::HashMap;
    use tokio::io::AsyncWriteExt;

    fn with_bindings(b: Vec<(&str, &str, &str)>) -> ContainerInspectResponse {
        let mut m = HashMap::new();
        for (k, ip, port) in b {
            m.insert(
                k.to_string(),
                Some(vec![PortBinding {
                    host_ip: Some(ip.into()),
                    host_port: Some(port.into()),
                }]),
            );
        }
        ContainerInspectResponse {
            host_config: Some(HostConfig {
                port_bindings: Some(m),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn target_is_the_health_url_else_the_first_published_tcp_port() {
        let i = with_bindings(vec![("53/udp", "", "5353"), ("80/tcp", "0.0.0.0", "8080")]);
        assert_eq!(
            ProbeTarget::for_container(None, &i),
            Some(ProbeTarget::Port {
                host: "127.0.0.1".into(),
                port: 8080
            })
        );
        assert_eq!(
            ProbeTarget::for_container(Some("http://127.0.0.1:9/h"), &i),
            Some(ProbeTarget::Url("http://127.0.0.1:9/h".into()))
        );
        let only_udp = with_bindings(vec![("53/udp", "", "5353")]);
        assert_eq!(ProbeTarget::for_container(None, &only_udp), None);
        let random = with_bindings(vec![("80/tcp", "", "")]);
        assert_eq!(ProbeTarget::for_container(None, &random), None);
    }

    #[test]
    fn the_figure_names_what_it_measures() {
        let t = ProbeTarget::Port {
            host: "127.0.0.1".into(),
            port: 8080,
        };
        let seen = Seen {
            probes: 60,
            failed: 28,
            longest_gap: Duration::from_millis(1420),
            answered_once: true,
        };
        assert_eq!(
            figure(&t, &seen),
            "clients saw 1.4 s without answer (28 of 60 probes every 50 ms on :8080 failed)"
        );
        assert!(figure(&t, &Seen::default()).starts_with("clients got no answer at all"));
        assert!(own_figure(Some(Duration::from_millis(300))).contains("berth measured 0.3 s"));
    }

    #[tokio::test]
    async fn a_closed_port_is_no_answer_and_an_open_one_answers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let dialer: Arc<dyn Dialer> = Arc::new(super::super::health::LocalDialer);
        let target = ProbeTarget::Port {
            host: "127.0.0.1".into(),
            port,
        };
        assert!(answers(dialer.as_ref(), &target).await);
        drop(listener);
        assert!(!answers(dialer.as_ref(), &target).await);
    }

    #[tokio::test]
    async fn a_port_that_accepts_and_closes_at_once_is_no_answer() {
        // What docker-proxy does while the container's app is not listening.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let closer = tokio::spawn(async move {
            for _ in 0..2 {
                let (conn, _) = listener.accept().await.unwrap();
                drop(conn);
            }
        });
        let dialer: Arc<dyn Dialer> = Arc::new(super::super::health::LocalDialer);
        let target = ProbeTarget::Port {
            host: "127.0.0.1".into(),
            port,
        };
        assert!(!answers(dialer.as_ref(), &target).await);
        assert!(!answers(dialer.as_ref(), &target).await);
        closer.await.unwrap();

        // One that speaks first (an SSH or SMTP server) is served.
        let talker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = talker.local_addr().unwrap().port();
        let greeter = tokio::spawn(async move {
            let (mut conn, _) = talker.accept().await.unwrap();
            conn.write_all(b"220 ready\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        });
        let target = ProbeTarget::Port {
            host: "127.0.0.1".into(),
            port,
        };
        assert!(answers(dialer.as_ref(), &target).await);
        greeter.await.unwrap();
    }
}
