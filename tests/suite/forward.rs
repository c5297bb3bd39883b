//! `berth forward`: a container's port on this machine, carried over a real sshd to a real
//! container that publishes no port; through an sshd restart; a port nothing listens on.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::sshd::trusted_pair;
use common::{Scope, free_port, http_get, wait_until};

struct Running {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward(home: &std::path::Path, args: &[&str]) -> Running {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    common::isolate(&mut c, home);
    let mut child = c
        .args(["-s", "box", "forward"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("berth runs");
    let stdout = common::lines_of(child.stdout.take().unwrap());
    let stderr = common::lines_of(child.stderr.take().unwrap());
    Running {
        child,
        stdout,
        stderr,
    }
}

fn first_line(r: &Running) -> String {
    match r.stdout.recv_timeout(Duration::from_secs(60)) {
        Ok(l) => l,
        Err(_) => {
            let err: Vec<String> = r.stderr.try_iter().collect();
            panic!("berth forward printed nothing within 60 s; stderr: {err:?}")
        }
    }
}

#[test]
fn forward_reaches_an_unpublished_container_port_across_an_sshd_restart() {
    let (mut sshd, home) = trusted_pair();
    home.write_box_config(&sshd, "  ServerAliveInterval 1\n");
    let scope = Scope::new("fwd");
    scope.run("web", &["berth-test/web:v1"]);
    let name = scope.name("web");
    assert_eq!(
        common::docker(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", &name]),
        "{\"8080/tcp\":null}",
        "the container publishes no port"
    );
    let local = free_port();
    let local_s = local.to_string();
    let run = forward(home.path(), &[&name, "--local", &local_s]);
    let line = first_line(&run);
    assert!(
        line.starts_with(&format!(
            "Forwarding http://127.0.0.1:{local} → {name}:8080"
        )),
        "{line}"
    );
    // What the container itself serves, read inside it.
    let served = common::docker(&[
        "exec",
        &name,
        "wget",
        "-qO-",
        "http://127.0.0.1:8080/version",
    ]);
    assert!(!served.is_empty());
    assert_eq!(http_get(local, "/version").as_deref(), Some(served.trim()));

    sshd.restart();
    let mut after = None;
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(300), || {
            after = http_get(local, "/version");
            after.is_some()
        }),
        "the forward answers again after the sshd restart"
    );
    assert_eq!(after.as_deref(), Some(served.trim()));
    drop(run);
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            std::net::TcpStream::connect(("127.0.0.1", local)).is_err()
        }),
        "the port closes when berth exits"
    );
}

#[test]
fn a_port_nothing_listens_on_fails_each_connection_and_the_forward_stays_up() {
    let (sshd, home) = trusted_pair();
    home.write_box_config(&sshd, "");
    let scope = Scope::new("fwdnone");
    scope.run("web", &["berth-test/web:v1"]);
    let name = scope.name("web");
    let local = free_port();
    let local_s = local.to_string();
    let run = forward(home.path(), &[&name, "9", "--local", &local_s]);
    first_line(&run);
    for attempt in 1..=2 {
        assert_eq!(
            http_get(local, "/version"),
            None,
            "attempt {attempt}: nothing answers"
        );
        let err = run
            .stderr
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("attempt {attempt}: no error line"));
        assert!(
            err.contains("failed")
                && err.contains(&format!("{name}:9"))
                && err.contains("stays up"),
            "{err}"
        );
    }
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", local)).is_ok(),
        "still listening"
    );
}

/// The console's `f` on a container: the forward is a task of the console over the same SSH
/// session, shown in the header and stopped from the `T` panel.
#[test]
fn console_forwards_a_port_with_f_over_ssh_and_stops_it_from_the_panel() {
    let (mut sshd, home) = trusted_pair();
    home.write_box_config(&sshd, "  ServerAliveInterval 1\n");
    let scope = Scope::new("fwdui");
    scope.run("web", &["berth-test/web:v1"]);
    let name = scope.name("web");
    let served = common::docker(&[
        "exec",
        &name,
        "wget",
        "-qO-",
        "http://127.0.0.1:8080/version",
    ]);
    assert!(!served.trim().is_empty());
    let home_dir = home.path().display().to_string();
    let envs = [("HOME", home_dir.as_str()), ("SSH_AUTH_SOCK", "")];
    // Wide enough for the header to hold the forward beside another test's warnings.
    let mut s = common::pty::Session::sized(40, 400, &["-s", "box"], &envs);
    s.expect(&name, Duration::from_secs(30));
    s.type_keys(&format!("/{name}\r"));
    s.expect(&format!("filter “{name}”"), Duration::from_secs(5));
    s.type_keys("f");
    let opened = regex::Regex::new(r"forwarding http://127\.0\.0\.1:(\d+) → ").unwrap();
    let mut port = None;
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            port = opened
                .captures(&s.text())
                .and_then(|c| c[1].parse::<u16>().ok());
            port.is_some()
        }),
        "the forward says where it listens:\n{}",
        s.text()
    );
    let port = port.unwrap();
    let header = s.text().lines().next().unwrap_or_default().to_string();
    assert!(
        header.contains(&format!("⇄ {port}→{name}:8080")),
        "the header shows the forward: {header}"
    );
    // What the container serves, fetched on this machine through the console's forward.
    assert_eq!(http_get(port, "/version").as_deref(), Some(served.trim()));

    // The link drops: the console's session reconnects and the forward carries on.
    sshd.restart();
    let mut after = None;
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(300), || {
            after = http_get(port, "/version");
            after.is_some()
        }),
        "the forward answers again after the sshd restart:\n{}",
        s.text()
    );
    assert_eq!(after.as_deref(), Some(served.trim()));

    s.type_keys("T");
    s.expect("Port forwards", Duration::from_secs(5));
    assert!(
        s.text().contains(&format!("http://127.0.0.1:{port}")),
        "{}",
        s.text()
    );
    s.type_keys("d");
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        }),
        "the stopped forward's port closes"
    );
    s.expect(
        &format!("forward {port}→{name}:8080 stopped"),
        Duration::from_secs(5),
    );
    assert!(!s.text().lines().next().unwrap_or_default().contains('⇄'));
    s.type_keys("\x1b");
    assert!(
        wait_until(Duration::from_secs(5), Duration::from_millis(50), || !s
            .text()
            .contains("Port forwards")),
        "{}",
        s.text()
    );
    s.quit_ok();
}
