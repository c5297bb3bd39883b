//! The SSH transport against a real OpenSSH server and the real Docker engine.

use crate::common;

use common::{BERTH_TIMEOUT, OutputWithin};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth::config::Config;
use berth::engine;
use berth::ssh::{self, HostKeyDecision, PromptAnswer, PromptRequest, Prompter, Secret, SshError};
use berth::target::{self, Endpoint, SshSpec, Target};
use common::Scope;
use common::sshd::{
    Agent, ClientHome, Sshd, SshdOptions, env_for, spec, trusted_pair, trusted_pair_with,
};
use futures::StreamExt;
use futures::future::BoxFuture;

fn alias_config(sshd: &Sshd, extra: &str) -> String {
    format!(
        "Host box\n  HostName 127.0.0.1\n  Port {}\n  User root\n{extra}",
        sshd.port
    )
}

fn target_for(s: &SshSpec) -> Target {
    Target::from_endpoint(s.host.clone(), Endpoint::Ssh(s.clone()))
}

async fn connect_err(s: &SshSpec, opts: &ssh::SshOptions) -> SshError {
    match tokio::time::timeout(
        Duration::from_secs(60),
        ssh::connect(s, &target_for(s), opts),
    )
    .await
    {
        Ok(Ok(_)) => panic!("connecting to {s} should have failed"),
        Ok(Err(e)) => e,
        Err(_) => panic!("connecting to {s} hung"),
    }
}

/// Answers prompts from a script and records what it was asked.
struct Scripted {
    passphrases: Mutex<Vec<String>>,
    /// The answer to a password question; `None` cancels it.
    password: Mutex<Option<String>>,
    host: HostKeyDecision,
    asked: Mutex<Vec<PromptRequest>>,
}

impl Scripted {
    fn new(passphrases: &[&str], host: HostKeyDecision) -> Arc<Scripted> {
        Arc::new(Scripted {
            passphrases: Mutex::new(passphrases.iter().rev().map(|s| s.to_string()).collect()),
            password: Mutex::new(None),
            host,
            asked: Mutex::new(vec![]),
        })
    }
}

impl Prompter for Scripted {
    fn ask(&self, request: PromptRequest) -> BoxFuture<'static, PromptAnswer> {
        self.asked.lock().unwrap().push(request.clone());
        let answer = match request {
            PromptRequest::Passphrase { .. } => match self.passphrases.lock().unwrap().pop() {
                Some(p) => PromptAnswer::Secret(Secret::new(p)),
                None => PromptAnswer::Cancel,
            },
            PromptRequest::UnknownHost { .. } => PromptAnswer::HostKey(self.host),
            PromptRequest::Password { .. } => match self.password.lock().unwrap().clone() {
                Some(p) => PromptAnswer::Secret(Secret::new(p)),
                None => PromptAnswer::Cancel,
            },
            // The SSH layer never asks for a registry login.
            PromptRequest::RegistryLogin { .. } => PromptAnswer::Cancel,
        };
        Box::pin(async move { answer })
    }
}

/// Reads the events stream until an event about the container named `name` (this test's own; other
/// tests share the engine), within `within`. False on timeout, stream end or error.
async fn event_about<S>(events: &mut S, name: &str, within: Duration) -> bool
where
    S: futures::Stream<Item = Result<bollard::models::EventMessage, bollard::errors::Error>>
        + Unpin,
{
    tokio::time::timeout(within, async {
        for _ in 0..10_000 {
            match events.next().await {
                Some(Ok(ev)) => {
                    let named = ev
                        .actor
                        .and_then(|a| a.attributes)
                        .and_then(|a| a.get("name").cloned());
                    if named.as_deref() == Some(name) {
                        return true;
                    }
                }
                _ => return false,
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_containers_through_an_alias() {
    let (sshd, home) = trusted_pair();
    home.write_config(&alias_config(
        &sshd,
        "  IdentityFile ~/.ssh/id_ed25519\n  ServerAliveInterval 5\n",
    ));
    let scope = Scope::new("ssh");
    scope.run("web", &["berth-test/web:v1"]);

    let t =
        target::resolve_named("box", &Config::default(), &env_for(&home)).expect("alias resolves");
    assert!(t.is_ssh());
    let eng = engine::connect(&t, &home.options())
        .await
        .expect("connects over ssh");
    assert_eq!(eng.transport, "ssh streamlocal");
    let names: Vec<String> = eng
        .containers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(names.contains(&scope.name("web")), "{names:?}");

    // The session API: exec, direct-tcpip, status.
    let s = ssh::connect(&spec("box"), &t, &home.options())
        .await
        .unwrap();
    assert!(
        s.auth_method().contains("id_ed25519"),
        "{}",
        s.auth_method()
    );
    assert!(
        s.host_key_status().starts_with("known"),
        "{}",
        s.host_key_status()
    );
    let out = s.exec("echo out; echo err >&2; exit 3").await.unwrap();
    // The account's login shell runs its startup files first (root's bashrc on this machine
    // runs pyenv, whose rehash can print a line to stderr when two logins race): the command's
    // own stderr is what ends the stream.
    assert!(
        out.stderr.ends_with(b"err\n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        (out.stdout.as_slice(), out.exit_code),
        (&b"out\n"[..], Some(3))
    );
    let audit = home.path().join("remote-audit.log");
    let cmd = format!("cat >> '{}'", audit.display());
    let out = s
        .exec_with_input(&cmd, b"line with 'quotes' and $VARS\n")
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(
        std::fs::read_to_string(&audit).unwrap(),
        "line with 'quotes' and $VARS\n"
    );
    let h = ssh::health::read(&s, &["/", "/var/lib/docker"])
        .await
        .unwrap();
    assert!(h.mem_total > 0 && h.mem_available <= h.mem_total, "{h:?}");
    assert_eq!(h.disks.len(), 2, "{h:?}");
    assert!(
        h.disks.iter().all(|d| d.total > 0 && d.used_percent <= 100),
        "{h:?}"
    );
    let mut tcp = s.direct_tcpip("127.0.0.1", sshd.port).await.unwrap();
    let mut banner = [0u8; 4];
    tokio::io::AsyncReadExt::read_exact(&mut tcp, &mut banner)
        .await
        .unwrap();
    assert_eq!(&banner, b"SSH-");
    assert!(matches!(
        *s.status().borrow(),
        ssh::LinkStatus::Connected { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_url_form_with_default_key() {
    let (sshd, home) = trusted_pair();
    let t = target::resolve_named(
        &format!("ssh://root@127.0.0.1:{}", sshd.port),
        &Config::default(),
        &env_for(&home),
    )
    .unwrap();
    let eng = engine::connect(&t, &home.options())
        .await
        .expect("connects with ~/.ssh/id_ed25519");
    assert!(!eng.version.api.is_empty());
    // Streaming through the tunnel: a few JSON events arrive.
    let scope = Scope::new("sshurl");
    let mut events = eng
        .docker
        .events(None::<bollard::query_parameters::EventsOptions>);
    scope.run("ev", &["berth-test/web:v1"]);
    assert!(
        event_about(&mut events, &scope.name("ev"), Duration::from_secs(20)).await,
        "the test's own container's events arrive through the tunnel"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_authentication() {
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(false);
    // Neither a default name nor an IdentityFile: only the agent can offer it.
    let key = home.keygen("agent_only", "ecdsa", "");
    sshd.authorize(&key);
    home.trust(&sshd);
    home.write_config(&alias_config(&sshd, ""));
    let agent = Agent::start();
    agent.add(&key);
    let mut opts = home.options();
    opts.no_agent = false;
    opts.agent_socket = Some(agent.socket.clone());
    let s = ssh::connect(&spec("box"), &target_for(&spec("box")), &opts)
        .await
        .expect("agent auth");
    assert!(s.auth_method().contains("agent"), "{}", s.auth_method());
    // Without the agent the same setup is refused with a message naming what was tried.
    let e = connect_err(&spec("box"), &home.options()).await;
    assert!(matches!(e, SshError::Auth { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_key_asks_for_its_passphrase() {
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(false);
    let key = home.keygen("id_rsa", "rsa", "correct horse");
    sshd.authorize(&key);
    home.trust(&sshd);
    home.write_config(&alias_config(&sshd, ""));

    let p = Scripted::new(&["wrong", "correct horse"], HostKeyDecision::Refuse);
    let mut opts = home.options();
    opts.batch = false;
    opts.prompter = Some(p.clone());
    let s = ssh::connect(&spec("box"), &target_for(&spec("box")), &opts)
        .await
        .expect("rsa key with passphrase");
    assert!(s.auth_method().contains("id_rsa"));
    assert_eq!(
        p.asked.lock().unwrap().len(),
        2,
        "asked again after a wrong passphrase"
    );

    let p = Scripted::new(&["a", "b", "c"], HostKeyDecision::Refuse);
    opts.prompter = Some(p);
    let e = connect_err(&spec("box"), &opts).await;
    assert!(matches!(e, SshError::WrongPassphrase { .. }), "{e}");

    // Batch mode never asks: it says which key needed a passphrase.
    let e = connect_err(&spec("box"), &home.options()).await;
    assert!(e.to_string().contains("id_rsa (encrypted"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_host_key_is_refused() {
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    let other = home.keygen("not_the_host", "ed25519", "");
    std::fs::write(
        home.ssh("known_hosts"),
        format!(
            "# first line\n[127.0.0.1]:{} {}\n",
            sshd.port,
            common::sshd::pub_key(&other)
        ),
    )
    .unwrap();
    home.write_config(&alias_config(&sshd, ""));
    // Even a prompter that would accept anything is never asked.
    let p = Scripted::new(&[], HostKeyDecision::AcceptAndSave);
    let mut opts = home.options();
    opts.batch = false;
    opts.prompter = Some(p.clone());
    let t = target::resolve_named("box", &Config::default(), &env_for(&home)).unwrap();
    let e = match engine::connect(&t, &opts).await {
        Ok(_) => panic!("a changed host key must not connect"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"), "{e}");
    // The fix is valid to paste: the bracketed name is quoted for the shell.
    assert!(
        e.contains(&format!("`ssh-keygen -R '[127.0.0.1]:{}'`", sshd.port)),
        "{e}"
    );
    assert!(
        e.contains(&format!("{}:2", home.ssh("known_hosts").display())),
        "{e}"
    );
    assert!(p.asked.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_host_key_strict_batch_and_accept() {
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.write_config(&alias_config(
        &sshd,
        "  StrictHostKeyChecking yes\nHost ask\n  HostName 127.0.0.1\n  User root\n",
    ));
    let fp = {
        let out = std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(sshd.host_key_path())
            .output_within(BERTH_TIMEOUT)
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let e = connect_err(&spec("box"), &home.options()).await;
    assert!(matches!(e, SshError::HostKeyUnknown { .. }), "{e}");
    assert!(e.to_string().contains("StrictHostKeyChecking"), "{e}");
    // The suggested command is valid to paste (not `ssh [127.0.0.1]:PORT`).
    assert!(
        e.to_string()
            .contains(&format!("`ssh -p {} root@127.0.0.1`", sshd.port)),
        "{e}"
    );
    assert!(
        e.to_string().contains(&fp),
        "the fingerprint is in the message: {e}"
    );

    let mut ask = spec("ask");
    ask.port = Some(sshd.port);
    let e = connect_err(&ask, &home.options()).await;
    assert!(
        e.to_string().contains(&fp),
        "batch mode fails with the fingerprint: {e}"
    );

    let p = Scripted::new(&[], HostKeyDecision::AcceptAndSave);
    let mut opts = home.options();
    opts.batch = false;
    opts.prompter = Some(p.clone());
    ssh::connect(&ask, &target_for(&ask), &opts)
        .await
        .expect("accepted and saved");
    match &p.asked.lock().unwrap()[0] {
        PromptRequest::UnknownHost {
            fingerprint,
            key_type,
            ..
        } => {
            assert_eq!(fingerprint, &fp);
            assert_eq!(key_type, "ssh-ed25519");
        }
        other => panic!("asked {other:?}"),
    }
    // Saved: the strict alias now connects without asking.
    ssh::connect(&spec("box"), &target_for(&spec("box")), &home.options())
        .await
        .expect("known after saving");
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_jump_through_a_second_sshd() {
    let jump = Sshd::start(SshdOptions {
        log_level: "DEBUG1",
        ..Default::default()
    });
    let inner = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    jump.authorize(&home.ssh("id_ed25519"));
    inner.authorize(&home.ssh("id_ed25519"));
    home.trust(&jump);
    home.trust(&inner);
    home.write_config(&format!(
        "Host bastion\n  HostName 127.0.0.1\n  Port {}\n  User root\nHost inner\n  HostName 127.0.0.1\n  Port {}\n  User root\n  ProxyJump bastion\n",
        jump.port, inner.port
    ));
    let scope = Scope::new("sshjump");
    scope.run("web", &["berth-test/web:v1"]);
    let t = target::resolve_named("inner", &Config::default(), &env_for(&home)).unwrap();
    let eng = engine::connect(&t, &home.options())
        .await
        .expect("through the jump host");
    let names: Vec<String> = eng
        .containers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(names.contains(&scope.name("web")));
    let log = jump.log();
    assert!(
        log.contains(&format!("port {}", inner.port)) && log.contains("direct-tcpip"),
        "jump log: {log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dial_stdio_when_streamlocal_is_refused() {
    let (mut sshd, home) = trusted_pair_with(SshdOptions {
        stream_local_forwarding: false,
        ..Default::default()
    });
    home.write_config(&alias_config(&sshd, "  ServerAliveInterval 1\n"));
    let scope = Scope::new("sshstdio");
    scope.run("web", &["berth-test/web:v1"]);
    let t = target::resolve_named("box", &Config::default(), &env_for(&home)).unwrap();
    let eng = engine::connect(&t, &home.options())
        .await
        .expect("falls back to dial-stdio");
    assert_eq!(eng.transport, "ssh dial-stdio");
    let names: Vec<String> = eng
        .containers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert!(names.contains(&scope.name("web")));

    // A burst right after the list: the started-ahead channels serve it (and more are opened).
    let docker = eng.docker.clone();
    let burst = |docker: bollard::Docker| async move {
        futures::stream::iter(0..6)
            .map(|_| {
                let d = docker.clone();
                async move { d.version().await.is_ok() }
            })
            .buffer_unordered(6)
            .collect::<Vec<bool>>()
            .await
    };
    assert!(burst(docker.clone()).await.iter().all(|ok| *ok));

    // Channels started on a link that is gone are never handed out: after the cut and the
    // reconnect, requests succeed on the new link.
    let session = eng.ssh.clone().expect("an ssh engine");
    let wait_for = |want: fn(&ssh::LinkStatus) -> bool| {
        let mut status = session.status();
        async move {
            tokio::time::timeout(Duration::from_secs(40), async {
                loop {
                    if want(&status.borrow_and_update()) {
                        return;
                    }
                    if status.changed().await.is_err() {
                        return;
                    }
                }
            })
            .await
            .is_ok()
        }
    };
    sshd.stop();
    assert!(
        wait_for(|s| matches!(s, ssh::LinkStatus::Reconnecting { .. })).await,
        "the cut is noticed"
    );
    sshd.restart();
    assert!(
        wait_for(|s| matches!(s, ssh::LinkStatus::Connected { .. })).await,
        "the link comes back"
    );
    // The very first request on the new link works: nothing started on the old one is used.
    assert!(
        docker.version().await.is_ok(),
        "first request after the reconnect"
    );
    assert!(burst(docker).await.iter().all(|ok| *ok), "and a burst too");
}

/// Without socket forwarding, a configured socket is still the one reached (the docker CLI is
/// pointed at it), and a missing one is named, not replaced by the server's default engine.
#[tokio::test(flavor = "multi_thread")]
async fn dial_stdio_reaches_the_configured_socket() {
    let (sshd, home) = trusted_pair_with(SshdOptions {
        stream_local_forwarding: false,
        ..Default::default()
    });
    home.write_config(&alias_config(&sshd, ""));
    let mut missing = spec("box");
    missing.socket = Some("/nonexistent/docker.sock".into());
    let e = connect_err(&missing, &home.options()).await;
    assert!(matches!(e, SshError::SocketMissing { .. }), "{e}");

    // Another path to the engine's socket: reached through it.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("engine.sock");
    std::os::unix::fs::symlink(berth::target::DEFAULT_SOCKET, &link).unwrap();
    let mut other = spec("box");
    other.socket = Some(link.display().to_string());
    let s = ssh::connect(&other, &target_for(&other), &home.options())
        .await
        .expect("connects through the configured socket");
    assert_eq!(s.transport_name(), "ssh dial-stdio");
    assert!(s.docker().version().await.is_ok());
}

/// The dial-stdio processes a session keeps on the server are bounded, and one whose docker CLI
/// died is dropped, not handed to the next request.
#[tokio::test(flavor = "multi_thread")]
async fn dial_stdio_channels_are_bounded_and_dead_ones_dropped() {
    const DIAL: &str = "system dial-stdio";
    // berth's bound on live dial-stdio channels (`MAX_DIAL_STDIO` in the transport).
    const BOUND: usize = 8;
    let (sshd, home) = trusted_pair_with(SshdOptions {
        stream_local_forwarding: false,
        ..Default::default()
    });
    home.write_config(&alias_config(&sshd, ""));
    let scope = Scope::new("sshdead");
    scope.run("web", &["berth-test/web:v1"]);
    let t = target::resolve_named("box", &Config::default(), &env_for(&home)).unwrap();
    let eng = engine::connect(&t, &home.options())
        .await
        .expect("connects");
    assert_eq!(eng.transport, "ssh dial-stdio");
    assert!(!eng.containers().await.unwrap().is_empty());
    let docker = eng.docker.clone();

    // The channels started ahead come up (one after another) and the session goes quiet: the
    // same count for a second. Then every docker CLI of the session is killed.
    let (mut last, mut same) = (0, 0);
    let quiet = common::wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let now = sshd.processes(DIAL).len();
        same = if now == last { same + 1 } else { 0 };
        last = now;
        now >= 2 && same >= 10
    });
    assert!(quiet, "channels started ahead: {:?}", sshd.processes(DIAL));
    assert!(sshd.kill_processes(DIAL) >= 2);
    assert!(
        common::wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
            sshd.processes(DIAL).is_empty()
        }),
        "the killed docker CLIs are gone"
    );
    // At once, before the channels' close can have reached berth: a request that lands on a
    // dead pooled connection is sent again on the next one.
    for i in 0..3 {
        let v = docker.version().await;
        assert!(v.is_ok(), "request {i} after the kill: {v:?}");
    }

    // As many streams held open as the bound: that many docker CLIs, and one more request waits
    // for a channel to come free instead of starting another. A stream counts as open once an
    // event has reached it (a docker CLI alone may be a channel started ahead, not yet taken).
    let (opened, mut opened_rx) = tokio::sync::mpsc::unbounded_channel();
    let streams: Vec<_> = (0..BOUND)
        .map(|i| {
            let d = docker.clone();
            let opened = opened.clone();
            tokio::spawn(async move {
                let mut events = d.events(None::<bollard::query_parameters::EventsOptions>);
                if events.next().await.is_some() {
                    let _ = opened.send(i);
                }
                while events.next().await.is_some() {}
            })
        })
        .collect();
    let tag = format!("berth-test/web:{}-event", scope.prefix);
    let mut open_streams = std::collections::BTreeSet::new();
    for _ in 0..60 {
        common::docker(&["tag", "berth-test/web:v1", &tag]);
        common::docker(&["rmi", &tag]);
        tokio::time::sleep(Duration::from_millis(500)).await;
        while let Ok(i) = opened_rx.try_recv() {
            open_streams.insert(i);
        }
        if open_streams.len() == BOUND {
            break;
        }
    }
    assert_eq!(open_streams.len(), BOUND, "streams open: {open_streams:?}");
    assert_eq!(
        sshd.processes(DIAL).len(),
        BOUND,
        "every stream has its docker CLI"
    );
    let one_more = tokio::spawn({
        let d = docker.clone();
        async move { d.version().await.map(|_| ()).map_err(|e| e.to_string()) }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!one_more.is_finished(), "a request past the bound waits");
    let live = sshd.processes(DIAL).len();
    assert_eq!(live, BOUND, "docker CLIs at the bound");
    streams[0].abort();
    let answered = tokio::time::timeout(Duration::from_secs(40), one_more).await;
    assert!(
        matches!(answered, Ok(Ok(Ok(())))),
        "answered once a stream ended: {answered:?}"
    );
    for s in &streams {
        s.abort();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reconnects_after_sshd_restarts() {
    let (mut sshd, home) = trusted_pair();
    home.write_config(&alias_config(&sshd, "  ServerAliveInterval 1\n"));
    let s = ssh::connect(&spec("box"), &target_for(&spec("box")), &home.options())
        .await
        .unwrap();
    let docker = s.docker();
    let mut status = s.status();
    let mut events = docker.events(None::<bollard::query_parameters::EventsOptions>);
    // Make sure the stream is live before cutting the link: the request goes out on the first poll.
    let scope = Scope::new("sshre");
    let _ = tokio::time::timeout(Duration::from_millis(1500), events.next()).await;
    scope.run("before", &["berth-test/web:v1"]);
    assert!(
        event_about(&mut events, &scope.name("before"), Duration::from_secs(20)).await,
        "the stream carries this test's events before the cut"
    );

    sshd.stop();
    // The open stream ends (error or end of stream) once the link is gone.
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.next().await {
                None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the events stream noticed the dead link");
    let saw_reconnecting = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if matches!(
                *status.borrow_and_update(),
                ssh::LinkStatus::Reconnecting { .. }
            ) {
                return true;
            }
            // The sender went away without the state ever being seen: that is a failure too.
            if status.changed().await.is_err() {
                return false;
            }
        }
    })
    .await;
    assert_eq!(saw_reconnecting, Ok(true), "status went to Reconnecting");

    sshd.restart();
    let name = scope.name("after");
    // Re-issue the stream, as the lead's event task does after an error; it waits for the reconnect.
    let mut events = docker.events(None::<bollard::query_parameters::EventsOptions>);
    let first = tokio::time::timeout(Duration::from_secs(40), async {
        // The request is only sent once polled; start the container a moment later.
        let starter = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            common::docker(&["run", "-d", "--name", &name, "berth-test/web:v1"]);
        });
        let got = loop {
            match events.next().await {
                Some(Ok(ev)) => {
                    if ev
                        .actor
                        .and_then(|a| a.attributes)
                        .and_then(|a| a.get("name").cloned())
                        == Some(scope.name("after"))
                    {
                        break true;
                    }
                }
                _ => break false,
            }
        };
        let _ = starter.await;
        got
    })
    .await;
    assert_eq!(
        first,
        Ok(true),
        "the re-issued events stream saw the new container"
    );
    assert!(matches!(
        *s.status().borrow(),
        ssh::LinkStatus::Connected { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gives_one_clear_line() {
    let (sshd, home) = trusted_pair();
    let closed = common::free_port();
    home.write_config(&format!(
        "{}Host wronguser\n  HostName 127.0.0.1\n  Port {}\n  User nosuchuser\nHost closed\n  HostName 127.0.0.1\n  Port {closed}\n\
         Host nowhere\n  HostName no-such-host.invalid\n",
        alias_config(&sshd, ""),
        sshd.port
    ));
    let opts = home.options();
    let mut lines = Vec::new();
    let e = connect_err(&spec("nowhere"), &opts).await;
    assert!(matches!(e, SshError::Resolve { .. }), "{e}");
    lines.push(e.to_string());
    let e = connect_err(&spec("closed"), &opts).await;
    assert!(
        matches!(e, SshError::Connect { .. }) && e.to_string().contains("refused"),
        "{e}"
    );
    lines.push(e.to_string());
    let e = connect_err(&spec("wronguser"), &opts).await;
    assert!(
        matches!(e, SshError::Auth { .. }) && e.to_string().contains("nosuchuser@"),
        "{e}"
    );
    lines.push(e.to_string());
    let mut missing = spec("box");
    missing.socket = Some("/nonexistent/docker.sock".into());
    let e = connect_err(&missing, &opts).await;
    assert!(matches!(e, SshError::SocketMissing { .. }), "{e}");
    lines.push(e.to_string());
    for l in &lines {
        assert!(!l.contains('\n'), "one line: {l}");
    }
    assert!(target::resolve_named("no-such-alias", &Config::default(), &env_for(&home)).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn follows_logs_and_attaches_exec_through_the_tunnel() {
    use bollard::exec::{CreateExecOptions, StartExecResults};
    use bollard::query_parameters::LogsOptions;
    use tokio::io::AsyncWriteExt;

    let (sshd, home) = trusted_pair();
    home.write_config(&alias_config(&sshd, ""));
    let scope = Scope::new("sshstream");
    let logger = scope.run(
        "logger",
        &["-e", "LOG_INTERVAL=0.05", "berth-test/logger:latest"],
    );
    let web = scope.run("web", &["berth-test/web:v1"]);
    let s = ssh::connect(&spec("box"), &target_for(&spec("box")), &home.options())
        .await
        .unwrap();
    let docker = s.docker();

    // A followed log stream keeps delivering lines (more than were written when it started).
    let mut logs = docker.logs(
        &logger,
        Some(LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            tail: "0".into(),
            ..Default::default()
        }),
    );
    let mut seqs = Vec::new();
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        while seqs.len() < 20 {
            match logs.next().await {
                Some(Ok(line)) => {
                    let text = line.to_string();
                    if let Some(n) = text
                        .split("seq=")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                    {
                        seqs.push(n.parse::<u64>().unwrap());
                    }
                }
                _ => break,
            }
        }
    })
    .await;
    assert!(got.is_ok() && seqs.len() >= 20, "lines: {seqs:?}");
    assert!(
        seqs.windows(2).all(|w| w[1] >= w[0]),
        "in order, live: {seqs:?}"
    );

    // exec with stdin: the connection is hijacked (HTTP upgrade) and carries both directions.
    let exec = docker
        .create_exec(
            &web,
            CreateExecOptions {
                cmd: Some(vec!["cat"]),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = docker.start_exec(&exec.id, None).await.unwrap()
    else {
        panic!("exec not attached")
    };
    input.write_all(b"through the tunnel\n").await.unwrap();
    input.flush().await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(20), output.next())
        .await
        .expect("echo within 20 s");
    assert_eq!(echoed.unwrap().unwrap().to_string(), "through the tunnel\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_link_is_caught_by_keepalives() {
    let (sshd, home) = trusted_pair();
    home.write_config(&alias_config(
        &sshd,
        "  ServerAliveInterval 1\n  ServerAliveCountMax 2\n",
    ));
    let s = ssh::connect(&spec("box"), &target_for(&spec("box")), &home.options())
        .await
        .unwrap();
    let docker = s.docker();
    docker.ping().await.unwrap();
    let mut status = s.status();
    let scope = Scope::new("sshfreeze");
    let mut events = docker.events(None::<bollard::query_parameters::EventsOptions>);
    let _ = tokio::time::timeout(Duration::from_millis(1500), events.next()).await;
    scope.run("before", &["berth-test/web:v1"]);
    assert!(
        event_about(&mut events, &scope.name("before"), Duration::from_secs(20)).await,
        "the stream carries this test's events before the freeze"
    );
    sshd.freeze_sessions();
    // No reset comes: only the unanswered keepalives tell. The supervisor drops the link and dials
    // again; the listener is still up, so it comes back on its own.
    let back = tokio::time::timeout(Duration::from_secs(30), async {
        let mut left = false;
        loop {
            match &*status.borrow_and_update() {
                ssh::LinkStatus::Connected { .. } if left => return true,
                ssh::LinkStatus::Connected { .. } => {}
                _ => left = true,
            }
            if status.changed().await.is_err() {
                return false;
            }
        }
    })
    .await;
    assert_eq!(
        back,
        Ok(true),
        "went through Reconnecting and back to Connected"
    );
    let v = tokio::time::timeout(Duration::from_secs(30), docker.version()).await;
    assert!(
        matches!(v, Ok(Ok(_))),
        "requests work on the new link: {v:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_jump_through_two_hops() {
    let first = Sshd::start(SshdOptions {
        log_level: "DEBUG1",
        ..Default::default()
    });
    let second = Sshd::start(SshdOptions {
        log_level: "DEBUG1",
        ..Default::default()
    });
    let inner = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    for s in [&first, &second, &inner] {
        s.authorize(&home.ssh("id_ed25519"));
        home.trust(s);
    }
    home.write_config(&format!(
        "Host hop1\n  HostName 127.0.0.1\n  Port {}\nHost hop2\n  HostName 127.0.0.1\n  Port {}\n\
         Host deep\n  HostName 127.0.0.1\n  Port {}\n  ProxyJump hop1,hop2\nHost *\n  User root\n",
        first.port, second.port, inner.port
    ));
    let s = ssh::connect(&spec("deep"), &target_for(&spec("deep")), &home.options())
        .await
        .expect("two hops");
    s.docker().ping().await.unwrap();
    // hop1 forwarded to hop2, and hop2 to the target.
    assert!(
        first.log().contains(&format!("port {}", second.port)),
        "hop1 log: {}",
        first.log()
    );
    assert!(
        second.log().contains(&format!("port {}", inner.port)),
        "hop2 log: {}",
        second.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_forwarding_and_no_docker_cli_says_so() {
    // The server forbids socket forwarding and its sessions find no docker CLI: nothing can work.
    let (sshd, home) = trusted_pair_with(SshdOptions {
        stream_local_forwarding: false,
        extra_config: "SetEnv PATH=/nonexistent\n",
        ..Default::default()
    });
    home.write_config(&alias_config(&sshd, ""));
    let e = connect_err(&spec("box"), &home.options()).await;
    assert!(e.to_string().contains("no docker CLI"), "{e}");
    assert!(e.to_string().contains("AllowStreamLocalForwarding"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_requests_share_the_session() {
    let (sshd, home) = trusted_pair();
    home.write_config(&alias_config(&sshd, ""));
    let s = ssh::connect(&spec("box"), &target_for(&spec("box")), &home.options())
        .await
        .unwrap();
    let docker = s.docker();
    // 64 at once: more than the open cap, each needing its own connection (channel).
    let results: Vec<bool> = futures::stream::iter(0..64)
        .map(|_| {
            let d = docker.clone();
            async move { d.version().await.is_ok() }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert_eq!(results.iter().filter(|ok| **ok).count(), 64);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_accepted_once_that_changes_on_reconnect_is_refused() {
    let mut sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    home.write_config(&alias_config(&sshd, "  ServerAliveInterval 1\n"));
    let p = Scripted::new(&[], HostKeyDecision::AcceptOnce);
    let mut opts = home.options();
    opts.batch = false;
    opts.prompter = Some(p.clone());
    let s = ssh::connect(&spec("box"), &target_for(&spec("box")), &opts)
        .await
        .expect("accepted once");
    assert_eq!(p.asked.lock().unwrap().len(), 1);
    assert!(
        !home.ssh("known_hosts").exists(),
        "accept once saves nothing"
    );

    sshd.new_host_key();
    sshd.restart();
    let mut status = s.status();
    let failed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let ssh::LinkStatus::Failed { error } = &*status.borrow_and_update() {
                return error.clone();
            }
            if status.changed().await.is_err() {
                return String::new();
            }
        }
    })
    .await
    .expect("the reconnect gives up");
    assert!(
        failed.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{failed}"
    );
    assert_eq!(
        p.asked.lock().unwrap().len(),
        1,
        "not asked again about the impostor key"
    );
    let e = s
        .docker()
        .ping()
        .await
        .expect_err("requests fail once the link has failed");
    assert!(e.to_string().contains("CHANGED"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_session_closes_the_connection() {
    let (sshd, home) = trusted_pair();
    home.write_config(&alias_config(&sshd, ""));
    let t = target::resolve_named("box", &Config::default(), &env_for(&home)).unwrap();
    let eng = engine::connect(&t, &home.options()).await.unwrap();
    eng.containers().await.unwrap();
    assert_eq!(sshd.sessions(), 1, "one ssh connection for all requests");
    // Switching servers drops the engine (and with it the session, the pool, the supervisor).
    drop(eng);
    let closed = tokio::task::spawn_blocking(move || {
        let ok = common::wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            sshd.sessions() == 0
        });
        (ok, sshd)
    })
    .await
    .unwrap();
    assert!(closed.0, "the server saw the connection close");
}

#[tokio::test(flavor = "multi_thread")]
async fn reconnecting_does_not_ask_for_the_passphrase_again() {
    let mut sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(false);
    let key = home.keygen("id_ed25519", "ed25519", "once only");
    sshd.authorize(&key);
    home.trust(&sshd);
    home.write_config(&alias_config(&sshd, ""));
    let p = Scripted::new(&["once only"], HostKeyDecision::Refuse);
    let mut opts = home.options();
    opts.batch = false;
    opts.prompter = Some(p.clone());
    let s = ssh::connect(&spec("box"), &target_for(&spec("box")), &opts)
        .await
        .unwrap();
    sshd.restart();
    let v = tokio::time::timeout(Duration::from_secs(40), async {
        // The first request may hit the dead link; the next one waits for the new one.
        match s.docker().version().await {
            Ok(v) => Ok(v),
            Err(_) => s.docker().version().await,
        }
    })
    .await;
    assert!(matches!(v, Ok(Ok(_))), "{v:?}");
    assert_eq!(
        p.asked.lock().unwrap().len(),
        1,
        "the decrypted key was kept in memory"
    );
}

/// Sets a fresh password on one of the local accounts scripts/ensure-deps.sh creates.
fn set_password(user: &str) -> String {
    // The same for every test of this run: tests that run at once must not change it under
    // each other.
    let password = format!("pw-{}", std::process::id());
    let mut child = std::process::Command::new("chpasswd")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("chpasswd runs (the tests run as root)");
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{user}:{password}").unwrap();
    assert!(
        child.wait().unwrap().success(),
        "chpasswd {user}: is the account there? run scripts/ensure-deps.sh as root"
    );
    password
}

fn user_spec(sshd: &Sshd, user: &str) -> SshSpec {
    SshSpec {
        user: Some(user.into()),
        host: "127.0.0.1".into(),
        port: Some(sshd.port),
        socket: None,
    }
}

/// Passwords are asked (masked, by the prompter) only where the server config allows them.
#[tokio::test(flavor = "multi_thread")]
async fn password_only_where_the_config_allows_it() {
    let sshd = Sshd::start(SshdOptions {
        password_auth: true,
        ..Default::default()
    });
    let home = ClientHome::new(false);
    home.trust(&sshd);
    let password = set_password("berth-ssh-pw");
    let spec = user_spec(&sshd, "berth-ssh-pw");

    // Not allowed: no question, and the error says how to allow it.
    let prompter = Scripted::new(&[], HostKeyDecision::Refuse);
    *prompter.password.lock().unwrap() = Some(password.clone());
    let opts = ssh::SshOptions {
        batch: false,
        prompter: Some(prompter.clone()),
        ..home.options()
    };
    let err = match engine::connect(&target_for(&spec), &opts).await {
        Ok(_) => panic!("connected without any allowed method"),
        Err(e) => e.to_string(),
    };
    assert!(
        prompter.asked.lock().unwrap().is_empty(),
        "asked: {:?}",
        prompter.asked.lock().unwrap()
    );
    assert!(err.contains("allow_password"), "{err}");

    // Allowed: asked once, and the engine answers as that user (in the docker group).
    let mut target = target_for(&spec);
    target.allow_password = true;
    let eng = match engine::connect(&target, &opts).await {
        Ok(e) => e,
        Err(e) => panic!("password login: {e}\nsshd log:\n{}", sshd.log()),
    };
    assert!(eng.containers().await.is_ok());
    let asked = prompter.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert!(matches!(asked[0], PromptRequest::Password { .. }));
    let s = eng.ssh.as_ref().unwrap();
    assert_eq!(s.auth_method(), "password");

    // A wrong password fails with one line naming the user and host.
    *prompter.password.lock().unwrap() = Some("not-the-password".into());
    let err = match engine::connect(&target, &opts).await {
        Ok(_) => panic!("a wrong password logged in"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("permission denied for berth-ssh-pw@127.0.0.1") && err.contains("password"),
        "{err}"
    );
}

/// A user outside the docker group: the socket is refused and berth says how to fix it.
#[tokio::test(flavor = "multi_thread")]
async fn docker_socket_permission_denied_over_ssh_names_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start(SshdOptions::default());
    let home = ClientHome::new(true);
    sshd.authorize(&home.ssh("id_ed25519"));
    // sshd reads authorized_keys as the user logging in.
    std::fs::set_permissions(sshd.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        sshd.dir.path().join("authorized_keys"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    home.trust(&sshd);
    let spec = user_spec(&sshd, "berth-ssh-nodocker");
    let err = match engine::connect(&target_for(&spec), &home.options()).await {
        Ok(_) => panic!("a user outside the docker group reached the engine"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("docker") && err.contains("group"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .args([
            "doctor",
            "-s",
            &format!("ssh://berth-ssh-nodocker@127.0.0.1:{}", sshd.port),
        ])
        .env("HOME", home.path())
        .env(
            "BERTH_SSH_SYSTEM_CONFIG",
            home.path().join("etc_ssh_config"),
        )
        .env("SSH_AUTH_SOCK", "")
        .env_remove("DOCKER_HOST")
        .stdin(std::process::Stdio::null())
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("usermod -aG docker"), "{text}");
}

/// Keyboard-interactive through PAM (no password method offered): the same masked question, each
/// hidden PAM prompt answered with it.
#[tokio::test(flavor = "multi_thread")]
async fn keyboard_interactive_through_pam() {
    let sshd = Sshd::start(SshdOptions {
        keyboard_interactive: true,
        ..Default::default()
    });
    let home = ClientHome::new(false);
    home.trust(&sshd);
    let password = set_password("berth-ssh-pw");
    let prompter = Scripted::new(&[], HostKeyDecision::Refuse);
    *prompter.password.lock().unwrap() = Some(password);
    let opts = ssh::SshOptions {
        batch: false,
        prompter: Some(prompter.clone()),
        ..home.options()
    };
    let mut target = target_for(&user_spec(&sshd, "berth-ssh-pw"));
    target.allow_password = true;
    let eng = match engine::connect(&target, &opts).await {
        Ok(e) => e,
        Err(e) => panic!("keyboard-interactive login: {e}\nsshd log:\n{}", sshd.log()),
    };
    assert!(eng.containers().await.is_ok());
    assert_eq!(prompter.asked.lock().unwrap().len(), 1);
}
