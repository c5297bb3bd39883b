//! The downtime a client sees during a switch: a probe of the service's published port (or its
//! `health_url`) every 50 ms from where berth runs its checks (through the SSH tunnel when the
//! engine is remote), measuring the longest stretch without an answer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::models::ContainerInspectResponse;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    /// The longest stretch from the sending of a probe that got no answer to the arrival of the
    /// next answer (or to the end).
    pub longest_gap: Duration,
    pub answered_once: bool,
    /// The published port answered no request, so a connection held open counted as served.
    pub held_only: bool,
    /// How long berth's own link to the server was down meanwhile: the probes then are left out.
    pub link_down: Option<Duration>,
}

/// How one probe went, with the instant it could be told.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Bytes came back (a published port) or a 2xx (a health URL).
    Answered(Instant),
    /// The connection stayed open, silent, for [`HELD_OPEN`]: docker-proxy does this too while
    /// the container behind it is not reachable yet, so it counts only for a port that never
    /// answers a request.
    Held(Instant),
    /// Connected, and closed without a byte after the request.
    Closed,
    Failed,
}

/// What counts as served, learned from the first probe that connected (the probe starts before
/// the first change, while the old replica serves).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Served {
    Unknown,
    /// Bytes come back: only an answer counts.
    Answers,
    /// The server waits for a request of its own protocol: a connection held open counts.
    /// `request` is false for one that closed on berth's request (it is then sent none).
    HeldOpen {
        request: bool,
    },
}

/// A running probe; [`ClientProbe::stop`] ends it and returns what it saw.
pub(crate) struct ClientProbe {
    target: ProbeTarget,
    stop: watch::Sender<bool>,
    task: JoinHandle<(Vec<(Instant, Outcome)>, Seen)>,
    link: Option<JoinHandle<Vec<Span>>>,
    started: Instant,
}

/// A stretch when berth's own link to the server was down (frozen or dropped): probes go through
/// it, so what a client saw then is not known.
type Span = (Instant, Instant);

/// Probes kept for leaving out the ones a down link failed (a few minutes of switching at one
/// every 50 ms); past that the figure is the plain tally.
const KEPT_PROBES: usize = 20_000;
const KEPT_SPANS: usize = 1_000;

impl ClientProbe {
    /// `link`: the SSH link's status when the engine is remote; while it is not fresh, the probes
    /// through it say nothing about clients.
    pub(crate) fn start(
        dialer: Arc<dyn Dialer>,
        target: ProbeTarget,
        link: Option<watch::Receiver<crate::ssh::LinkStatus>>,
    ) -> ClientProbe {
        let (stop, mut stopped) = watch::channel(false);
        let link = link.map(|rx| tokio::spawn(link_down_spans(rx, stop.subscribe())));
        let t = target.clone();
        let task = tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut kept: Vec<(Instant, Outcome)> = Vec::new();
            // Clients do not wait for each other: a probe goes out every tick whether or not
            // the earlier ones were answered (a silent connection takes up to PROBE_TIMEOUT).
            // At most PROBE_TIMEOUT / PROBE_EVERY + 1 are in flight.
            let mut in_flight = FuturesUnordered::new();
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        let d = dialer.clone();
                        let t = t.clone();
                        let request = tally.sends_request();
                        in_flight.push(async move {
                            let asked = Instant::now();
                            (asked, probe_once(d.as_ref(), &t, request).await)
                        });
                    }
                    Some((asked, outcome)) = in_flight.next() => {
                        tally.add(asked, outcome);
                        if kept.len() < KEPT_PROBES {
                            kept.push((asked, outcome));
                        }
                    }
                    _ = stopped.changed() => break,
                }
            }
            // Probes already sent end within PROBE_TIMEOUT; a client that asked still counts.
            while let Some((asked, outcome)) = in_flight.next().await {
                tally.add(asked, outcome);
                if kept.len() < KEPT_PROBES {
                    kept.push((asked, outcome));
                }
            }
            if kept.len() >= KEPT_PROBES {
                kept.clear();
            }
            (kept, tally.finish(Instant::now()))
        });
        ClientProbe {
            target,
            stop,
            task,
            link,
            started: Instant::now(),
        }
    }

    /// Ends the probe; the line for the final message and the audit, and what was seen.
    pub(crate) async fn stop(self) -> (String, Seen) {
        let _ = self.stop.send(true);
        let end = Instant::now();
        let (kept, mut seen) = self.task.await.unwrap_or_default();
        let started = self.started;
        let spans: Vec<Span> = match self.link {
            Some(l) => l.await.unwrap_or_default(),
            None => Vec::new(),
        }
        .into_iter()
        .map(|(from, to)| (from.max(started), to.min(end)))
        .filter(|(from, to)| to > from)
        .collect();
        if !spans.is_empty() && !kept.is_empty() {
            seen = without_link_down(&kept, &spans, end);
        }
        (figure(&self.target, &seen), seen)
    }
}

/// Watches the link until `stopped`: the stretches it was not fresh. A keepalive unanswered
/// reports how long the server has been silent: the stretch starts at the last answer.
async fn link_down_spans(
    mut rx: watch::Receiver<crate::ssh::LinkStatus>,
    mut stopped: watch::Receiver<bool>,
) -> Vec<Span> {
    use crate::ssh::LinkStatus;
    let mut spans = Vec::new();
    let mut open: Option<Instant> = None;
    loop {
        let now = Instant::now();
        match &*rx.borrow_and_update() {
            LinkStatus::Connected { .. } => {
                if let Some(from) = open.take()
                    && spans.len() < KEPT_SPANS
                {
                    spans.push((from, now));
                }
            }
            LinkStatus::Unanswered { silent } => {
                let from = now.checked_sub(*silent).unwrap_or(now);
                open = Some(open.map_or(from, |o| o.min(from)));
            }
            _ => {
                open.get_or_insert(now);
            }
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { break },
            _ = stopped.changed() => break,
        }
    }
    if let Some(from) = open {
        spans.push((from, Instant::now()));
    }
    spans
}

/// The tally again without the probes a down link may have failed (sent from PROBE_TIMEOUT before
/// a stretch to its end); a client gap running into a stretch ends where the stretch starts, as
/// what followed is not known. `link_down` is the stretches' total.
fn without_link_down(kept: &[(Instant, Outcome)], spans: &[Span], end: Instant) -> Seen {
    let mut sorted: Vec<&(Instant, Outcome)> = kept.iter().collect();
    sorted.sort_by_key(|(asked, _)| *asked);
    let mut tally = Tally::default();
    let mut span_done = vec![false; spans.len()];
    for (asked, outcome) in sorted {
        let hit = spans
            .iter()
            .position(|(from, to)| *asked + PROBE_TIMEOUT >= *from && asked <= to);
        match hit {
            Some(k) => {
                if !span_done[k] {
                    span_done[k] = true;
                    if let Some(s) = tally.down_since.take() {
                        tally.gap(s, spans[k].0.max(s));
                    }
                }
            }
            None => tally.add(*asked, *outcome),
        }
    }
    let link_down: Duration = spans
        .iter()
        .map(|(f, t)| t.saturating_duration_since(*f))
        .sum();
    let mut seen = tally.finish(end);
    seen.link_down = Some(link_down);
    seen
}

/// The probes' results, taken as they end (a silent probe ends long after later ones were
/// answered). A probe without answer starts a stretch that the first answer arriving after it
/// was sent ends, whichever probe brought it.
struct Tally {
    seen: Seen,
    served: Served,
    /// When the earliest unanswered probe with no answer after it was sent.
    down_since: Option<Instant>,
    /// Answers of the last [`RECENT`]: a failure, known up to PROBE_TIMEOUT after it was sent,
    /// looks here for an answer that came after it.
    recent: VecDeque<Instant>,
}

/// How long answers are kept for failures still in flight to look back on.
const RECENT: Duration = Duration::from_secs(2);

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            seen: Seen::default(),
            served: Served::Unknown,
            down_since: None,
            recent: VecDeque::new(),
        }
    }
}

impl Tally {
    fn sends_request(&self) -> bool {
        self.served != Served::HeldOpen { request: false }
    }

    fn add(&mut self, asked: Instant, outcome: Outcome) {
        if self.served == Served::Unknown {
            self.served = match outcome {
                Outcome::Answered(_) => Served::Answers,
                Outcome::Held(_) => Served::HeldOpen { request: true },
                Outcome::Closed => Served::HeldOpen { request: false },
                Outcome::Failed => Served::Unknown,
            };
        }
        self.seen.held_only = matches!(self.served, Served::HeldOpen { .. });
        let answered_at = match (self.served, outcome) {
            (_, Outcome::Answered(at)) => Some(at),
            (Served::HeldOpen { .. }, Outcome::Held(at)) => Some(at),
            _ => None,
        };
        self.seen.probes += 1;
        match answered_at {
            Some(at) => {
                self.seen.answered_once = true;
                if let Some(s) = self.down_since.take() {
                    self.gap(s, at);
                }
                while self
                    .recent
                    .front()
                    .is_some_and(|r| at.saturating_duration_since(*r) > RECENT)
                {
                    self.recent.pop_front();
                }
                self.recent.push_back(at);
            }
            None => {
                self.seen.failed += 1;
                match self.recent.iter().filter(|r| **r >= asked).min() {
                    Some(answer) => self.gap(asked, *answer),
                    None => {
                        self.down_since = Some(self.down_since.map_or(asked, |s| s.min(asked)));
                    }
                }
            }
        }
    }

    fn gap(&mut self, from: Instant, to: Instant) {
        self.seen.longest_gap = self
            .seen
            .longest_gap
            .max(to.saturating_duration_since(from));
    }

    fn finish(mut self, end: Instant) -> Seen {
        if let Some(s) = self.down_since {
            self.gap(s, end);
        }
        self.seen
    }
}

/// A request any HTTP server answers (with any status: the app answered); a server that speaks
/// first answers before reading it.
const PORT_REQUEST: &[u8] = b"HEAD / HTTP/1.0\r\n\r\n";

async fn probe_once(dialer: &dyn Dialer, target: &ProbeTarget, request: bool) -> Outcome {
    match target {
        ProbeTarget::Port { host, port } => {
            let Ok(Ok(mut conn)) =
                tokio::time::timeout(PROBE_TIMEOUT, dialer.dial(host, *port)).await
            else {
                return Outcome::Failed;
            };
            // Accepted is not served: docker-proxy accepts on the published port while the app
            // behind it is not listening (it closes at once) or not reachable yet (it holds the
            // connection, silent, until the container's network is up). What serves answers.
            if request && conn.write_all(PORT_REQUEST).await.is_err() {
                return Outcome::Closed;
            }
            let mut byte = [0u8; 1];
            match tokio::time::timeout(HELD_OPEN, conn.read(&mut byte)).await {
                Ok(Ok(n)) if n > 0 => return Outcome::Answered(Instant::now()),
                Ok(_) => return Outcome::Closed,
                Err(_) => {}
            }
            let held = Instant::now();
            if !request {
                return Outcome::Held(held);
            }
            match tokio::time::timeout(PROBE_TIMEOUT - HELD_OPEN, conn.read(&mut byte)).await {
                Ok(Ok(n)) if n > 0 => Outcome::Answered(Instant::now()),
                Ok(_) => Outcome::Closed,
                Err(_) => Outcome::Held(held),
            }
        }
        ProbeTarget::Url(u) => match http_get(dialer, u, PROBE_TIMEOUT).await {
            Ok(code) if (200..300).contains(&code) => Outcome::Answered(Instant::now()),
            _ => Outcome::Failed,
        },
    }
}

/// Names the figure for what it measures.
fn figure(target: &ProbeTarget, seen: &Seen) -> String {
    let every = PROBE_EVERY.as_millis();
    let on = target.describe();
    let unknown = seen
        .link_down
        .map(|d| {
            format!(
                "; unknown (link down {:.1} s): berth's own link to the server was down, what clients saw then was not measured",
                d.as_secs_f64()
            )
        })
        .unwrap_or_default();
    if !seen.answered_once {
        return format!(
            "clients got no answer at all during the switch ({} probe(s) every {every} ms on {on}){unknown}",
            seen.probes
        );
    }
    let held = if seen.held_only {
        "; the port answers no request, so a connection held open counted as an answer"
    } else {
        ""
    };
    format!(
        "clients saw {:.1} s without answer ({} of {} probes every {every} ms on {on} failed{held}){unknown}",
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
    fn probes_a_down_link_failed_are_left_out_and_said_apart() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // Answers every 50 ms, a real 300 ms outage at 1 s, then the link frozen 3-6 s (every
        // probe through it failed) and answers again after.
        let mut kept = Vec::new();
        for ms in (0..8000).step_by(50) {
            let failed = (1000..1300).contains(&ms) || (2900..6000).contains(&ms);
            kept.push((
                at(ms),
                if failed {
                    Outcome::Failed
                } else {
                    Outcome::Answered(at(ms + 5))
                },
            ));
        }
        let seen = without_link_down(&kept, &[(at(3000), at(6000))], at(8000));
        assert_eq!(seen.longest_gap, Duration::from_millis(305));
        assert_eq!(seen.link_down, Some(Duration::from_secs(3)));
        let t = ProbeTarget::Port {
            host: "127.0.0.1".into(),
            port: 8080,
        };
        let line = figure(&t, &seen);
        assert!(
            line.starts_with("clients saw 0.3 s without answer")
                && line.contains("unknown (link down 3.0 s)"),
            "{line}"
        );
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
            held_only: false,
            link_down: None,
        };
        assert_eq!(
            figure(&t, &seen),
            "clients saw 1.4 s without answer (28 of 60 probes every 50 ms on :8080 failed)"
        );
        assert!(figure(&t, &Seen::default()).starts_with("clients got no answer at all"));
        assert!(own_figure(Some(Duration::from_millis(300))).contains("berth measured 0.3 s"));
    }

    fn local() -> Arc<dyn Dialer> {
        Arc::new(super::super::health::LocalDialer)
    }

    fn port(port: u16) -> ProbeTarget {
        ProbeTarget::Port {
            host: "127.0.0.1".into(),
            port,
        }
    }

    #[tokio::test]
    async fn a_closed_port_fails_and_an_answering_one_answers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 64];
            let _ = conn.read(&mut req).await;
            conn.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await.unwrap();
        });
        let o = probe_once(local().as_ref(), &port(p), true).await;
        assert!(matches!(o, Outcome::Answered(_)), "{o:?}");
        server.await.unwrap();
        let o = probe_once(local().as_ref(), &port(p), true).await;
        assert!(matches!(o, Outcome::Failed), "{o:?}");
    }

    #[tokio::test]
    async fn accepted_and_closed_or_held_silent_is_told_apart_from_an_answer() {
        // docker-proxy accepts while the container's app is not listening (closes at once) or
        // its network is not up yet (holds the connection, silent).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (conn, _) = listener.accept().await.unwrap();
            drop(conn);
            let (held, _) = listener.accept().await.unwrap();
            tokio::time::sleep(PROBE_TIMEOUT + Duration::from_millis(200)).await;
            drop(held);
        });
        let o = probe_once(local().as_ref(), &port(p), true).await;
        assert!(matches!(o, Outcome::Closed), "{o:?}");
        let o = probe_once(local().as_ref(), &port(p), true).await;
        assert!(matches!(o, Outcome::Held(_)), "{o:?}");
        server.await.unwrap();

        // One that speaks first (an SSH or SMTP server) answers.
        let talker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = talker.local_addr().unwrap().port();
        let greeter = tokio::spawn(async move {
            let (mut conn, _) = talker.accept().await.unwrap();
            conn.write_all(b"220 ready\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        });
        let o = probe_once(local().as_ref(), &port(p), true).await;
        assert!(matches!(o, Outcome::Answered(_)), "{o:?}");
        greeter.await.unwrap();
    }

    /// A server that answers every connection except those numbered in `silent`, which it
    /// accepts and holds without a word (as docker-proxy does while the new container's network
    /// is not up). Returns the port and, per connection, the instant it was accepted.
    async fn server_silent_for(
        silent: std::ops::Range<usize>,
        total: usize,
    ) -> (u16, JoinHandle<Vec<Instant>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut accepted = Vec::new();
            let mut held = Vec::new();
            for n in 0..total {
                let Ok(Ok((mut conn, _))) =
                    tokio::time::timeout(Duration::from_secs(10), listener.accept()).await
                else {
                    break;
                };
                accepted.push(Instant::now());
                if silent.contains(&n) {
                    held.push(conn);
                    continue;
                }
                tokio::spawn(async move {
                    let mut req = [0u8; 64];
                    let _ = conn.read(&mut req).await;
                    let _ = conn.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await;
                });
            }
            drop(held);
            accepted
        });
        (p, task)
    }

    #[tokio::test]
    async fn connections_held_silent_are_downtime_and_the_gap_covers_them() {
        // Connections 5..15 are held without an answer: ten clients in a row got nothing.
        // (The old probe counted a connection held 100 ms as served, and reported no gap.)
        let (p, server) = server_silent_for(5..15, 20).await;
        let probe = ClientProbe::start(local(), port(p), None);
        let accepted = server.await.unwrap();
        assert_eq!(accepted.len(), 20, "the probe made 20 connections");
        let (line, seen) = probe.stop().await;
        assert_eq!(seen.failed, 10, "{line}");
        assert!(seen.probes >= 20, "{line}");
        assert!(!seen.held_only, "{line}");
        // The gap runs from the first silent connection to the answer after the last one, so it
        // covers every silent connection's arrival (the probes are sent in this order).
        let silent_span = accepted[15].duration_since(accepted[5]);
        assert!(
            seen.longest_gap >= silent_span.saturating_sub(Duration::from_millis(5)),
            "gap {:?} shorter than the silent stretch {silent_span:?}: {line}",
            seen.longest_gap
        );
    }

    #[tokio::test]
    async fn a_slow_probe_does_not_delay_the_next_one() {
        // Every connection after the first is held silent, so each of those probes waits
        // PROBE_TIMEOUT; clients keep arriving meanwhile, and so must the probes: the next
        // connection comes while the silent one is still open (the old probe waited for it).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = listener.local_addr().unwrap().port();
        let probe = ClientProbe::start(local(), port(p), None);
        let (mut first, _) = listener.accept().await.unwrap();
        let mut req = [0u8; 64];
        let _ = first.read(&mut req).await;
        first.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await.unwrap();
        let (mut silent, _) = listener.accept().await.unwrap();
        let _ = silent.read(&mut req).await;
        let next = tokio::time::timeout(Duration::from_secs(10), listener.accept());
        let mut eof = [0u8; 1];
        let closed_by_probe = silent.read(&mut eof);
        let came_first = tokio::select! {
            biased;
            r = next => r.is_ok_and(|a| a.is_ok()),
            _ = closed_by_probe => false,
        };
        let (line, seen) = probe.stop().await;
        assert!(
            came_first,
            "the next probe waited for the silent one: {line}"
        );
        assert!(seen.failed >= 1 && seen.answered_once, "{line}");
    }

    #[test]
    fn a_gap_ends_at_the_first_answer_to_arrive_not_the_next_one_sent() {
        // docker-proxy holds a connection made before the new container was reachable and may
        // answer it late, after later connections were answered at once.
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut tally = Tally::default();
        tally.add(ms(0), Outcome::Answered(ms(1)));
        tally.add(ms(100), Outcome::Answered(ms(101)));
        // Sent at 150 and 200; the first one held and answered at 660; the one at 250 answered at
        // 251; 150's failure is known last, at its timeout.
        tally.add(ms(250), Outcome::Answered(ms(251)));
        tally.add(ms(200), Outcome::Answered(ms(660)));
        tally.add(ms(150), Outcome::Failed);
        let seen = tally.finish(ms(1000));
        assert_eq!(seen.failed, 1);
        assert_eq!(seen.probes, 5);
        assert_eq!(seen.longest_gap, Duration::from_millis(101));

        // Still down at the end: the stretch runs to the end.
        let mut tally = Tally::default();
        tally.add(ms(0), Outcome::Answered(ms(1)));
        tally.add(ms(100), Outcome::Failed);
        tally.add(ms(50), Outcome::Failed);
        assert_eq!(
            tally.finish(ms(400)).longest_gap,
            Duration::from_millis(350)
        );
    }
}
