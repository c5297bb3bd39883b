//! The fleet's watch over a real sshd in front of the real engine: one session per server and one
//! events stream. With the host read only once an hour, a container started and then removed from
//! a shell still changes the server's row: its events did it, not a periodic re-list. Cancelling
//! closes the session.

mod common;

use std::time::{Duration, Instant};

use berth::fleet::{ProbeOptions, ServerRow};
use common::sshd::{ClientHome, Sshd, SshdOptions};
use common::{Scope, wait_until};
use tokio::sync::mpsc;

/// The next row for which `wanted` holds, within `within`.
async fn row_where(
    rows: &mut mpsc::Receiver<ServerRow>,
    within: Duration,
    wanted: impl Fn(&ServerRow) -> bool,
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

fn lists(row: &ServerRow, name: &str) -> bool {
    row.listing.iter().any(|c| c.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_update_a_row_without_a_re_list() {
    let scope = Scope::new("fleetwatch");
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.trust(&sshd);
    let target = home.box_target(&sshd, "");
    let options = ProbeOptions {
        ssh: home.options(),
        connect_timeout: Duration::from_secs(20),
        parallel: 4,
        audit: Default::default(),
    };
    let (tx, mut rows) = mpsc::channel(64);
    let cancel = tokio_util::sync::CancellationToken::new();
    let hour = Duration::from_secs(3600);
    let watching = tokio::spawn(berth::fleet::watch(
        vec![target],
        options,
        hour,
        tx,
        cancel.clone(),
    ));

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
    assert_eq!(
        row.containers.total,
        first.containers.total + 1,
        "one more container: {row:?}"
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
