//! End to end: live stats, the stats pane and the host view in the real `berth` binary, in a
//! pseudo-terminal, against the real engine.

use crate::common;

use std::time::Duration;

use common::Scope;
use common::pty::Session;

/// The container row that mentions `needle`.
fn line_with(s: &Session, needle: &str) -> String {
    s.text()
        .lines()
        .find(|l| l.contains(needle) && l.contains("running"))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn stats_columns_pane_and_host_view() {
    let scope = Scope::new("e2estats");
    scope.run(
        "busy",
        &[
            "--memory",
            "64m",
            "berth-test/logger",
            "sh",
            "-c",
            "while :; do :; done",
        ],
    );
    // Wide enough that the header keeps the host summary beside a long warning about another
    // test's rollback in flight on the shared engine.
    let mut s = Session::sized(40, 400, &[], &[]);
    // Long names are cut in the list: the scope's area is what shows.
    let shown = "e2estat";
    s.expect(shown, Duration::from_secs(20));
    let filter = format!("/{}\r", scope.name("busy"));
    s.type_keys(&filter);
    // A faster pace so the test needs few seconds; rates appear from the second reading.
    s.type_keys(":interval 1s\r");
    let has_cpu = |s: &Session| {
        let row = line_with(s, shown);
        row.split_whitespace().any(|w| {
            w.ends_with('%')
                && w.trim_end_matches('%')
                    .parse::<f64>()
                    .is_ok_and(|v| v > 10.0)
        })
    };
    assert!(
        common::wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            has_cpu(&s)
        }),
        "the busy row shows its CPU%:\n{}",
        s.text()
    );

    s.type_keys("c");
    assert!(
        s.wait_for("read from /sys/fs/cgroup", Duration::from_secs(10)),
        "the pane says how stats are read:\n{}",
        s.text()
    );
    assert!(s.text().contains("every 1s"), "{}", s.text());
    assert!(s.text().contains(" CPU "), "{}", s.text());
    assert!(
        s.text().contains(" / 64.0M"),
        "the memory limit:\n{}",
        s.text()
    );

    s.type_keys("H");
    assert!(
        s.wait_for("Local volumes", Duration::from_secs(60)),
        "system df arrives:\n{}",
        s.text()
    );
    assert!(
        s.wait_for("host cpu", Duration::from_secs(20)),
        "the header sums up the host:\n{}",
        s.text()
    );
    assert!(s.text().contains("read by local /proc"), "{}", s.text());
    s.type_keys("\x1b");
    s.expect("containers ", Duration::from_secs(5));
    s.type_keys("q");
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
    scope.cleanup();
}
