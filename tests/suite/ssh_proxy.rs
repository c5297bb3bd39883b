//! ProxyCommand against real OpenSSH servers and the real engine: through `ssh -W %h:%p` via a jump
//! sshd and through `nc`, and each way a proxy command can go wrong.

use crate::common;

use std::time::Duration;

use berth::config::Config;
use berth::engine;
use berth::ssh::{self, SshError};
use berth::target::{self, Endpoint, Target};
use common::Scope;
use common::sshd::{ClientHome, Sshd, SshdOptions, env_for, spec, trusted_pair};

async fn container_names(home: &ClientHome, host: &str) -> Vec<String> {
    let t = target::resolve_named(host, &Config::default(), &env_for(home)).unwrap();
    let eng = tokio::time::timeout(
        Duration::from_secs(60),
        engine::connect(&t, &home.options()),
    )
    .await
    .expect("connecting hung")
    .expect("connects through the proxy command");
    eng.containers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect()
}

async fn proxy_error(home: &ClientHome, host: &str) -> (String, String) {
    let s = spec(host);
    let t = Target::from_endpoint(s.host.clone(), Endpoint::Ssh(s.clone()));
    match tokio::time::timeout(
        Duration::from_secs(60),
        ssh::connect(&s, &t, &home.options()),
    )
    .await
    {
        Ok(Ok(_)) => panic!("connecting to {host} should have failed"),
        Ok(Err(e @ SshError::Proxy { .. })) => {
            let SshError::Proxy { reason, .. } = &e else {
                unreachable!()
            };
            (reason.clone(), e.to_string())
        }
        Ok(Err(e)) => panic!("expected a ProxyCommand error, got: {e}"),
        Err(_) => panic!("connecting to {host} hung past the ConnectTimeout"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_command_through_ssh_w_via_a_jump_sshd() {
    let jump = Sshd::start(SshdOptions {
        log_level: "DEBUG1",
        ..Default::default()
    });
    let (inner, home) = trusted_pair();
    jump.authorize(&home.ssh("id_ed25519"));
    home.trust(&jump);
    // The ssh that runs as the proxy reads the same file for `bastion`; paths are absolute
    // because its ~ is the real home.
    home.write_config(&format!(
        "Host inner\n  HostName 127.0.0.1\n  Port {}\n  User root\n  \
         ProxyCommand ssh -F {cfg} -W %h:%p bastion\n\
         Host bastion\n  HostName 127.0.0.1\n  Port {}\n  User root\n  BatchMode yes\n  \
         IdentityFile {key}\n  UserKnownHostsFile {kh}\n  GlobalKnownHostsFile none\n",
        inner.port,
        jump.port,
        cfg = home.ssh("config").display(),
        key = home.ssh("id_ed25519").display(),
        kh = home.ssh("known_hosts").display(),
    ));
    let scope = Scope::new("sshpxw");
    scope.run("web", &["berth-test/web:v1"]);
    let names = container_names(&home, "inner").await;
    assert!(names.contains(&scope.name("web")), "{names:?}");
    let log = jump.log();
    assert!(
        log.contains(&format!("port {}", inner.port)) && log.contains("direct-tcpip"),
        "the jump sshd carried it: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_command_through_nc_with_tokens() {
    let (sshd, home) = trusted_pair();
    let seen = home.path().join("seen");
    home.write_config(&format!(
        "Host box\n  HostName 127.0.0.1\n  Port {}\n  User root\n  \
         ProxyCommand sh -c 'echo %h:%p:%r:%n > {}; exec nc %h %p'\n",
        sshd.port,
        seen.display()
    ));
    let scope = Scope::new("sshpxnc");
    scope.run("web", &["berth-test/web:v1"]);
    let names = container_names(&home, "box").await;
    assert!(names.contains(&scope.name("web")), "{names:?}");
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap().trim(),
        format!("127.0.0.1:{}:root:box", sshd.port),
        "the command ran through the shell with ssh's tokens"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_command_none_and_proxy_jump_none_are_honoured() {
    let (sshd, home) = trusted_pair();
    home.write_config(&format!(
        "Host box\n  HostName 127.0.0.1\n  Port {}\n  User root\n  ProxyCommand none\n  \
         ProxyJump none\nHost *\n  ProxyCommand false\n",
        sshd.port
    ));
    let scope = Scope::new("sshpxnone");
    scope.run("web", &["berth-test/web:v1"]);
    let names = container_names(&home, "box").await;
    assert!(names.contains(&scope.name("web")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_command_that_fails_prints_garbage_or_hangs_is_a_clear_error() {
    let home = ClientHome::new(true);
    home.write_config(
        "Host exits\n  ProxyCommand sh -c 'echo no route to the bastion >&2; exit 3'\n\
         Host garbage\n  ConnectTimeout 3\n  ProxyCommand sh -c 'echo HTTP/1.1 400 Bad Request; sleep 30'\n\
         Host hangs\n  ConnectTimeout 2\n  ProxyCommand sleep 60\n\
         Host missing\n  ProxyCommand no-such-proxy-berth %h\n",
    );
    let (reason, line) = proxy_error(&home, "exits").await;
    assert!(
        reason.contains("exited with status 3") && reason.contains("no route to the bastion"),
        "{line}"
    );
    assert!(!line.contains('\n'), "one line: {line}");
    let (reason, line) = proxy_error(&home, "garbage").await;
    assert!(reason.contains("HTTP/1.1 400 Bad Request"), "{line}");
    let (reason, line) = proxy_error(&home, "hangs").await;
    assert!(reason.contains("within 2 s"), "{line}");
    let (reason, line) = proxy_error(&home, "missing").await;
    assert!(
        reason.contains("exited with status 127") && reason.contains("not found"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_command_that_asks_for_a_password_fails_without_the_terminal() {
    let jump = Sshd::start(SshdOptions {
        password_auth: true,
        ..Default::default()
    });
    let home = ClientHome::new(true);
    // No key for the jump: the proxy's ssh would ask for a password on the terminal; berth runs it
    // without one, so it fails and says why instead of reading the console's keys.
    home.write_config(&format!(
        "Host inner\n  HostName 127.0.0.1\n  Port 22\n  \
         ProxyCommand ssh -F none -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
         -o PubkeyAuthentication=no -p {} -W %h:%p berth-ssh-pw@127.0.0.1\n",
        jump.port
    ));
    let (reason, line) = proxy_error(&home, "inner").await;
    assert!(reason.contains("exited with status 255"), "{line}");
    assert!(reason.contains("Permission denied"), "{line}");
}

#[test]
fn options_berth_cannot_honour_are_named_once_in_one_line() {
    let (sshd, home) = trusted_pair();
    home.write_box_config(
        &sshd,
        "  PKCS11Provider /usr/lib/opensc-pkcs11.so\n  CanonicalizeHostname yes\n  GSSAPIAuthentication no\n",
    );
    let scope = Scope::new("sshunhon");
    scope.run("web", &["berth-test/web:v1"]);
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    common::isolate(&mut c, home.path());
    let out = c
        .args(["-s", "box", "ps", "--all"])
        .output()
        .expect("berth runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains(&scope.name("web")),
        "it still connects: {stdout}"
    );
    let named: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("does not honour"))
        .collect();
    assert_eq!(named.len(), 1, "one line: {stderr}");
    let line = named[0];
    assert!(line.starts_with("berth: box: "), "{line}");
    assert!(
        line.contains("PKCS11Provider /usr/lib/opensc-pkcs11.so")
            && line.contains("CanonicalizeHostname yes")
            && !line.contains("GSSAPI"),
        "{line}"
    );
}
