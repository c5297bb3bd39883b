//! The fleet's watch over a real sshd in front of the real engine: one session per server and one
//! events stream. With the host read only once an hour, a container started and then removed from
//! a shell still changes the server's row: its events did it, not a periodic re-list. Cancelling
//! closes the session. Connecting lists a server's containers once: the watcher starts from the
//! list the first reading made (counted by a relay in front of the real engine's socket).

use crate::common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth::fleet::{ProbeOptions, ServerRow};
use common::sshd::{ClientHome, Sshd, SshdOptions, trusted_pair};
use common::{Scope, wait_until};
use tokio::sync::mpsc;

/// The options every watch here uses: the client's keys, 20 s to connect, 4 servers at once.
fn options(home: &ClientHome) -> ProbeOptions {
    ProbeOptions {
        ssh: home.options(),
        connect_timeout: Duration::from_secs(20),
        parallel: 4,
        audit: Default::default(),
    }
}

/// The fleet's watch over `target` alone, its host read every `host_every`: its rows, the token
/// that ends it, and its task.
fn watch(
    home: &ClientHome,
    target: berth::target::Target,
    host_every: Duration,
) -> (
    mpsc::Receiver<ServerRow>,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rows) = mpsc::channel(64);
    let cancel = tokio_util::sync::CancellationToken::new();
    let watching = tokio::spawn(berth::fleet::watch(
        vec![target],
        options(home),
        host_every,
        tx,
        cancel.clone(),
    ));
    (rows, cancel, watching)
}

/// The next row for which `wanted` holds, within `within`.
async fn row_where(
    rows: &mut mpsc::Receiver<ServerRow>,
    within: Duration,
    mut wanted: impl FnMut(&ServerRow) -> bool,
) -> Option<ServerRow> {
    let deadline = Instant::now() + within;
    // Bounded: every row is a change on one server; a few hundred is far beyond this test's.
    for _ in 0..500 {
        let left = deadline.saturating_duration_since(Instant::now());
        let row = tokio::time::timeout(left, rows.recv()).await.ok()??;
        if wanted(&row) {
            return Some(row);
        }
    }
    None
}

/// The tests here count a server's containers: one at a time, so neither sees the other's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn lists(row: &ServerRow, name: &str) -> bool {
    row.listing.iter().any(|c| c.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_update_a_row_without_a_re_list() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let scope = Scope::new("fleetwatch");
    let (sshd, home) = trusted_pair();
    let target = home.box_target(&sshd, "");
    let hour = Duration::from_secs(3600);
    let (mut rows, cancel, watching) = watch(&home, target, hour);

    let first = row_where(&mut rows, Duration::from_secs(30), |_| true)
        .await
        .expect("a first row");
    assert_eq!(first.reachable, Some(true), "{first:?}");
    assert!(
        first.cpu_percent.is_some(),
        "the first reading has the host"
    );
    let name = scope.name("late");
    assert!(!lists(&first, &name));

    let started = scope.run("late", &["berth-test/web:v1"]);
    let row = row_where(&mut rows, Duration::from_secs(20), |r| lists(r, &name))
        .await
        .expect("the started container's event updates the row");
    assert_eq!(row.reachable, Some(true));
    // The engine is shared with the other test binaries: their containers come and go too, so
    // the count is checked against the row's own listing, not against the first row's.
    assert_eq!(
        row.containers.total,
        row.listing.iter().filter(|c| !c.is_kept()).count(),
        "the count (berth's kept containers and run journals aside) follows the listing the event updated: {row:?}"
    );
    assert_eq!(sshd.sessions(), 1, "one session for the server");

    common::docker(&["rm", "-f", &started]);
    row_where(&mut rows, Duration::from_secs(20), |r| !lists(r, &name))
        .await
        .expect("the removal's event updates the row");

    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), watching).await;
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            sshd.sessions() == 0
        }),
        "cancelling closes the session"
    );
}

/// A Unix socket at `path` that relays every connection to the engine's own socket, counting the
/// container list requests (`GET /vX/containers/json`) that pass through. Not a fake engine: every
/// byte goes to dockerd and back.
fn counting_relay(path: &std::path::Path) -> Arc<AtomicUsize> {
    let lists = Arc::new(AtomicUsize::new(0));
    let listener = UnixListener::bind(path).expect("the relay's socket");
    let counted = lists.clone();
    std::thread::spawn(move || {
        // Bounded: the test opens one session, whose engine connections are a handful.
        for client in listener.incoming().take(64) {
            let Ok(client) = client else { continue };
            let Ok(engine) = UnixStream::connect(berth::target::DEFAULT_SOCKET) else {
                continue;
            };
            let (Ok(mut from_client), Ok(mut to_client)) = (client.try_clone(), client.try_clone())
            else {
                continue;
            };
            let (Ok(mut to_engine), Ok(mut from_engine)) = (engine.try_clone(), engine.try_clone())
            else {
                continue;
            };
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                let mut line = Vec::new();
                while let Ok(n) = from_client.read(&mut buf) {
                    if n == 0 || to_engine.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    line.extend_from_slice(&buf[..n]);
                    while let Some(end) = line.iter().position(|&b| b == b'\n') {
                        let text = String::from_utf8_lossy(&line[..end]).to_string();
                        if text.starts_with("GET ") && text.contains("/containers/json") {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                        line.drain(..=end);
                    }
                    // A request line is short: a long run without a newline is a body.
                    if line.len() > 16 * 1024 {
                        line.clear();
                    }
                }
                let _ = engine.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut from_engine, &mut to_client);
                let _ = client.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    lists
}

/// Connecting a server reads its row (the container list included) and then follows its events:
/// the list is requested once, not a second time by the events watcher as it starts. A container
/// started afterwards reaches the row through its event, with still no second list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_lists_the_containers_once() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let scope = Scope::new("fleetonce");
    let before = scope.name("before");
    scope.run("before", &["berth-test/web:v1"]);
    let (sshd, home) = trusted_pair();
    let relay_dir = tempfile::tempdir().unwrap();
    let relay = relay_dir.path().join("docker.sock");
    let list_requests = counting_relay(&relay);
    let mut target = home.box_target(&sshd, "");
    let berth::target::Endpoint::Ssh(spec) = &mut target.endpoint else {
        panic!("box is an ssh target: {target:?}");
    };
    spec.socket = Some(relay.display().to_string());
    let (mut rows, cancel, watching) = watch(&home, target, Duration::from_secs(3600));
    let first = row_where(&mut rows, Duration::from_secs(30), |_| true)
        .await
        .expect("a first row");
    assert_eq!(first.reachable, Some(true), "{first:?}");
    assert!(
        lists(&first, &before),
        "the first row's list came through the relay"
    );

    // Once this container's event reaches the row, the watcher is following the events stream:
    // any list of its own it made on starting has been made.
    let name = scope.name("after");
    scope.run("after", &["berth-test/web:v1"]);
    row_where(&mut rows, Duration::from_secs(20), |r| lists(r, &name))
        .await
        .expect("the started container's event updates the row");
    assert_eq!(
        list_requests.load(Ordering::SeqCst),
        1,
        "the containers are listed once at connect"
    );

    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), watching).await;
    scope.cleanup();
}

/// Idle close is per server: two servers watched, each with its own token. Cancelling one's
/// closes its session alone; the other keeps its session and its events still reach its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_one_server_leaves_the_other_watched() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let scope = Scope::new("fleetclose");
    let home = ClientHome::new(true);
    let idle = Sshd::start(SshdOptions::default());
    let looked_at = Sshd::start(SshdOptions::default());
    for sshd in [&idle, &looked_at] {
        sshd.authorize(&home.ssh("id_ed25519"));
        home.trust(sshd);
    }
    // Two aliases in one ssh config, one per sshd.
    home.write_config(&format!(
        "Host idle\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n\
         Host seen\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n",
        idle.port, looked_at.port
    ));
    let env = berth::target::Environment {
        docker_host: None,
        docker_context: None,
        docker_config_dir: None,
        ssh_config: Some(home.ssh("config")),
    };
    let resolve = |alias: &str| {
        berth::target::resolve_named(alias, &berth::config::Config::default(), &env)
            .expect("the alias resolves")
    };
    let (idle_target, seen_target) = (resolve("idle"), resolve("seen"));
    let options = options(&home);
    let (tx, mut rows) = mpsc::channel(64);
    let (idle_token, seen_token) = (
        tokio_util::sync::CancellationToken::new(),
        tokio_util::sync::CancellationToken::new(),
    );
    let watching = tokio::spawn(berth::fleet::watch_each(
        vec![
            (idle_target, idle_token.clone()),
            (seen_target, seen_token.clone()),
        ],
        options,
        Duration::from_secs(3600),
        tx,
    ));
    let mut answered = std::collections::BTreeSet::new();
    row_where(&mut rows, Duration::from_secs(30), |r| {
        if r.reachable == Some(true) {
            answered.insert(r.server.clone());
        }
        answered.len() == 2
    })
    .await
    .expect("both servers answer");
    assert_eq!((idle.sessions(), looked_at.sessions()), (1, 1));

    idle_token.cancel();
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            idle.sessions() == 0
        }),
        "the idle server's session closes"
    );
    assert_eq!(looked_at.sessions(), 1, "the other one's stays");
    let name = scope.name("still");
    scope.run("still", &["berth-test/web:v1"]);
    let row = row_where(&mut rows, Duration::from_secs(20), |r| lists(r, &name))
        .await
        .expect("the watched server's events still reach its row");
    assert_eq!(row.server, "seen");

    seen_token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), watching).await;
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            looked_at.sessions() == 0
        }),
        "cancelling the last closes its session and the watch ends"
    );
}

/// A loopback port relayed to `to`, which the test can cut (the listener closed and every relayed
/// connection shut: what a server whose sshd died looks like from the client, refused included)
/// and restore on the same port. Killing the sshd itself races its listener against berth's
/// instant reconnect, which can land on a session that outlives the kill.
struct CuttableRelay {
    port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
}

impl CuttableRelay {
    fn start(to: u16) -> CuttableRelay {
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::AtomicBool;
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let cutting = cut.clone();
        std::thread::spawn(move || {
            let mut listener = Some(first);
            let mut open: Vec<TcpStream> = Vec::new();
            // Bounded: the test lasts well under this.
            let deadline = Instant::now() + Duration::from_secs(240);
            while Instant::now() < deadline {
                if cutting.load(Ordering::SeqCst) {
                    listener = None;
                    for s in open.drain(..) {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let Some(l) = listener.as_ref() else {
                    listener = TcpListener::bind(("127.0.0.1", port)).ok();
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                l.set_nonblocking(true).unwrap();
                match l.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                            continue;
                        };
                        for (mut from, mut into) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server.try_clone().unwrap(), client.try_clone().unwrap()),
                        ] {
                            std::thread::spawn(move || {
                                let _ = std::io::copy(&mut from, &mut into);
                                let _ = into.shutdown(Shutdown::Write);
                            });
                        }
                        open.extend([client, server]);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        CuttableRelay { port, cut }
    }

    fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}

/// A server whose link dies while it is watched (its port refuses, its connections are gone):
/// its row turns unreachable with the refusal, keeps its last reading's time (its figures are
/// stale, not current), shows no round trip, and its reason follows each reconnect attempt; once
/// the port answers again the row is live and its round trip is a keepalive's, not the length of
/// the outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_link_marks_the_row_stale_and_follows_each_attempt() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (sshd, home) = trusted_pair();
    let relay = CuttableRelay::start(sshd.port);
    home.write_config(&format!(
        "Host box\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile ~/.ssh/id_ed25519\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n",
        relay.port
    ));
    let env = berth::target::Environment {
        docker_host: None,
        docker_context: None,
        docker_config_dir: None,
        ssh_config: Some(home.ssh("config")),
    };
    let target = berth::target::resolve_named("box", &berth::config::Config::default(), &env)
        .expect("the alias resolves");
    // The relay's port is another host key entry than sshd's own.
    let known = home.ssh("known_hosts");
    let mut text = std::fs::read_to_string(&known).unwrap_or_default();
    text.push_str(
        &sshd
            .known_hosts_line()
            .replace(&format!("]:{} ", sshd.port), &format!("]:{} ", relay.port)),
    );
    std::fs::write(&known, text).unwrap();
    let (mut rows, cancel, watching) = watch(&home, target, Duration::from_secs(1));
    let mut seen = Vec::new();
    let first = row_where(&mut rows, Duration::from_secs(30), |r| {
        seen.push(format!("{:?} {:?}", r.reachable, r.error_detail));
        r.reachable == Some(true) && r.rtt_ms.is_some()
    })
    .await
    .unwrap_or_else(|| panic!("a first row with its round trip: {seen:#?}"));
    let read_before = first.read_at.expect("a reading has its time");

    relay.cut(true);
    let down_at = Instant::now();
    let mut reasons = std::collections::BTreeSet::new();
    let down = row_where(&mut rows, Duration::from_secs(60), |r| {
        if r.reachable == Some(false) {
            reasons.extend(r.error_detail.clone());
        }
        r.reachable == Some(false)
            && r.error.as_deref() == Some("refused")
            && reasons.len() >= 2
            && down_at.elapsed() > Duration::from_secs(6)
    })
    .await
    .unwrap_or_else(|| panic!("the lost link's rows, each attempt's reason: {reasons:?}"));
    assert_eq!(
        down.rtt_ms, None,
        "no round trip while the link is down: {down:?}"
    );
    assert!(down.stale(), "the last figures are kept as stale: {down:?}");
    assert!(
        down.read_at
            .is_some_and(|t| t >= read_before && t <= chrono::Utc::now()),
        "the last reading's time: {down:?}"
    );

    relay.cut(false);
    let mut seen = Vec::new();
    let back = row_where(&mut rows, Duration::from_secs(60), |r| {
        seen.push(format!(
            "{:?} {:?} {:?}",
            r.reachable, r.rtt_ms, r.error_detail
        ));
        r.reachable == Some(true) && r.rtt_ms.is_some()
    })
    .await
    .unwrap_or_else(|| panic!("the row is live again with a round trip: {seen:#?}"));
    let outage = down_at.elapsed().as_millis() as u64;
    assert!(
        back.rtt_ms.unwrap() < 5_000 && back.rtt_ms.unwrap() < outage,
        "the round trip is a keepalive's, not the {outage} ms outage: {back:?}"
    );

    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), watching).await;
}
