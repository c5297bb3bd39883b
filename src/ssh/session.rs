//! One SSH session to a server: dialling (through jump hosts), authenticating, and the
//! [`SshSession`] handed out, whose channels carry the Docker API, commands and tunnels.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use russh::client;
use tokio::sync::{Mutex, Semaphore, watch};

use super::hostkey::{Client, ClientHandle, Trusted};
use super::link::{LinkStatus, UNANSWERED_AFTER, ping_handle};
use super::{
    ExecOutput, PromptAnswer, PromptRequest, Prompter, Resolved, SshError, SshOptions, SshStream,
    auth, known_hosts, open_reason, proxy, resolve, transport,
};
use crate::target::{SshSpec, Target};

/// How long a request waits for a lost link to come back before it fails.
pub(super) const RECONNECT_WINDOW: Duration = Duration::from_secs(30);
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// sshd refuses channel opens at once when the remote socket's backlog is full: open a few at a time.
const MAX_CONCURRENT_OPENS: usize = 8;
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);
const EXEC_MAX_OUTPUT: usize = 16 << 20;

/// Marks the time spent waiting on the user, which no network timeout should count.
struct Asking {
    inner: Arc<dyn Prompter>,
    count: Arc<AtomicUsize>,
}

impl Prompter for Asking {
    fn ask(&self, request: PromptRequest) -> futures::future::BoxFuture<'static, PromptAnswer> {
        let count = self.count.clone();
        count.fetch_add(1, Ordering::SeqCst);
        let fut = self.inner.ask(request);
        Box::pin(async move {
            let answer = fut.await;
            count.fetch_sub(1, Ordering::SeqCst);
            answer
        })
    }
}

/// Awaits `fut`, failing after `limit` of network time; time the user spends answering a prompt
/// does not count.
async fn within<F: std::future::Future>(
    limit: Duration,
    asking: &AtomicUsize,
    fut: F,
) -> Option<F::Output> {
    tokio::pin!(fut);
    let mut waited = Duration::ZERO;
    let step = Duration::from_millis(250);
    loop {
        match tokio::time::timeout(step, &mut fut).await {
            Ok(v) => return Some(v),
            Err(_) if asking.load(Ordering::SeqCst) > 0 => {}
            Err(_) => {
                waited += step;
                if waited >= limit {
                    return None;
                }
            }
        }
    }
}

pub(super) struct Link {
    pub(super) handle: Arc<ClientHandle>,
    /// Jump-host sessions the main one tunnels through; dropping them would cut the link.
    pub(super) _jumps: Vec<ClientHandle>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Mode {
    Streamlocal = 0,
    DialStdio = 1,
}

pub(super) struct Inner {
    pub(super) resolved: Resolved,
    pub(super) jumps: Vec<Resolved>,
    pub(super) socket: String,
    pub(super) options: SshOptions,
    pub(super) allow_password: bool,
    pub(super) link: Mutex<Option<Link>>,
    pub(super) status: watch::Sender<LinkStatus>,
    pub(super) mode: AtomicU8,
    /// A streamlocal channel opened once: later "connect failed" answers are transient, not a refusal.
    pub(super) streamlocal_worked: AtomicBool,
    pub(super) trusted: Trusted,
    /// What the last successful authentication used; tried first on reconnect, so nobody is asked twice.
    pub(super) auth_memory: auth::Memory,
    pub(super) info: StdMutex<ConnInfo>,
    pub(super) fatal: StdMutex<Option<SshError>>,
    pub(super) opens: Semaphore,
    pub(super) asking: Arc<AtomicUsize>,
    /// dial-stdio channels started ahead of need (see the transport).
    pub(super) warm: transport::WarmPool,
}

#[derive(Debug, Clone, Default)]
pub(super) struct ConnInfo {
    pub(super) auth_method: String,
    pub(super) host_key: String,
}

/// A connected server. Cheap to keep; the link is watched and re-established in the background while
/// this (or a `Docker` from [`SshSession::docker`]) lives.
pub struct SshSession {
    inner: Arc<Inner>,
    docker: Docker,
}

impl SshSession {
    /// A Docker client whose every HTTP connection is a channel of this session.
    pub fn docker(&self) -> Docker {
        self.docker.clone()
    }

    /// "ssh streamlocal" or "ssh dial-stdio".
    pub fn transport_name(&self) -> &str {
        match self.inner.mode() {
            Mode::Streamlocal => "ssh streamlocal",
            Mode::DialStdio => "ssh dial-stdio",
        }
    }

    pub fn status(&self) -> watch::Receiver<LinkStatus> {
        self.inner.status.subscribe()
    }

    /// dial-stdio connections started ahead whose docker CLI has answered: a request can have
    /// one now, without waiting for a login shell and a docker CLI to start.
    pub fn dial_stdio_ready(&self) -> usize {
        self.inner.warm.len()
    }

    /// The host, port and user actually dialled (ssh config applied).
    pub fn resolved(&self) -> &Resolved {
        &self.inner.resolved
    }

    /// e.g. "publickey (agent: me@laptop)" or "publickey (/home/me/.ssh/id_ed25519)".
    pub fn auth_method(&self) -> String {
        self.inner
            .info
            .lock()
            .map(|i| i.auth_method.clone())
            .unwrap_or_default()
    }

    /// e.g. "known (/home/me/.ssh/known_hosts:3)".
    pub fn host_key_status(&self) -> String {
        self.inner
            .info
            .lock()
            .map(|i| i.host_key.clone())
            .unwrap_or_default()
    }

    /// Runs a (read-only) command on the server and collects its output, at most 16 MiB of each stream.
    pub async fn exec(&self, cmd: &str) -> Result<ExecOutput, SshError> {
        self.inner.exec(cmd, None).await
    }

    /// Like [`SshSession::exec`], feeding `stdin` to the command (then end of file): e.g. appending
    /// audit lines to a file on the server without quoting them into the command line.
    pub async fn exec_with_input(&self, cmd: &str, stdin: &[u8]) -> Result<ExecOutput, SshError> {
        self.inner.exec(cmd, Some(stdin)).await
    }

    /// A long-lived command whose stdin and stdout are one stream (its stderr is dropped): e.g. a
    /// shell that runs a read-only command every interval, without a new session — and a new
    /// login shell with its startup files — each time.
    pub async fn exec_stream(&self, cmd: &str) -> Result<SshStream, SshError> {
        let h = self.inner.handle().await?;
        let chan_err = |e: russh::Error| SshError::Channel {
            host: self.inner.host(),
            reason: open_reason(&e),
        };
        let ch = h.channel_open_session().await.map_err(chan_err)?;
        ch.exec(true, cmd).await.map_err(chan_err)?;
        Ok(ch.into_stream())
    }

    /// A TCP connection from the server to `host:port` (e.g. a health URL on the server's loopback).
    pub async fn direct_tcpip(&self, host: &str, port: u16) -> Result<SshStream, SshError> {
        let h = self.inner.handle().await?;
        let limit = self.inner.resolved.connect_timeout;
        let ch = tokio::time::timeout(
            limit,
            h.channel_open_direct_tcpip(host, port as u32, "127.0.0.1", 0),
        )
        .await
        .map_err(|_| SshError::Timeout {
            what: format!("opening a tunnel to {host}:{port}"),
            secs: limit.as_secs(),
        })?
        .map_err(|e| SshError::Channel {
            host: self.inner.resolved.alias.clone(),
            reason: open_reason(&e),
        })?;
        Ok(ch.into_stream())
    }

    /// Checks that the engine answers `/_ping` through the tunnel, choosing streamlocal or dial-stdio;
    /// a missing socket or one the user may not open comes back as a clear error.
    pub async fn probe_docker(&self) -> Result<(), SshError> {
        transport::probe(&self.inner).await
    }

    /// Measures one round trip now (an SSH keepalive and its answer).
    pub async fn ping(&self) -> Result<Duration, SshError> {
        self.inner.ping().await
    }
}

/// Connects to the server of `spec` (ssh config applied), authenticates, and checks that the Docker
/// socket answers. Errors say what to do; nothing here waits longer than the connect timeout per step.
pub async fn connect(
    spec: &SshSpec,
    target: &Target,
    options: &SshOptions,
) -> Result<SshSession, SshError> {
    let session = establish(spec, target, options).await?;
    session.probe_docker().await?;
    Ok(session)
}

/// Like [`connect`] without checking the Docker socket: the SSH part alone (for `berth doctor`,
/// which reports each step). Call [`SshSession::probe_docker`] before using [`SshSession::docker`].
pub async fn establish(
    spec: &SshSpec,
    target: &Target,
    options: &SshOptions,
) -> Result<SshSession, SshError> {
    // `Match exec` runs the user's commands: off the async workers.
    let (resolved, jumps) = {
        let (spec, options) = (spec.clone(), options.clone());
        tokio::task::spawn_blocking(move || -> Result<_, SshError> {
            let resolved = resolve(&spec, &options)?;
            let mut jumps = Vec::new();
            for hop in &resolved.proxy_jump {
                let mut r = resolve(hop, &options)?;
                r.proxy_jump.clear();
                jumps.push(r);
            }
            Ok((resolved, jumps))
        })
        .await
        .map_err(|e| SshError::Other(format!("reading the ssh config failed: {e}")))??
    };
    let (status, _) = watch::channel(LinkStatus::Connecting);
    let inner = Arc::new(Inner {
        resolved,
        jumps,
        socket: spec.socket_path().to_string(),
        options: options.clone(),
        allow_password: target.allow_password,
        link: Mutex::new(None),
        status,
        mode: AtomicU8::new(Mode::Streamlocal as u8),
        streamlocal_worked: AtomicBool::new(false),
        trusted: Arc::new(StdMutex::new(Vec::new())),
        auth_memory: auth::Memory::default(),
        info: StdMutex::new(ConnInfo::default()),
        fatal: StdMutex::new(None),
        opens: Semaphore::new(MAX_CONCURRENT_OPENS),
        asking: Arc::new(AtomicUsize::new(0)),
        warm: transport::WarmPool::default(),
    });
    let link = inner.dial().await?;
    *inner.link.lock().await = Some(link);
    let rtt = inner.ping().await.unwrap_or_default();
    inner.status.send_replace(LinkStatus::Connected { rtt });
    let docker = transport::docker(inner.clone())?;
    tokio::spawn(supervise(Arc::downgrade(&inner)));
    Ok(SshSession { inner, docker })
}

impl Inner {
    pub(super) fn mode(&self) -> Mode {
        if self.mode.load(Ordering::Relaxed) == Mode::DialStdio as u8 {
            Mode::DialStdio
        } else {
            Mode::Streamlocal
        }
    }

    pub(super) fn set_mode(&self, m: Mode) {
        self.mode.store(m as u8, Ordering::Relaxed);
    }

    pub(super) fn host(&self) -> String {
        self.resolved.alias.clone()
    }

    fn prompter(&self) -> Option<Arc<dyn Prompter>> {
        let inner = self.options.prompter()?;
        Some(Arc::new(Asking {
            inner,
            count: self.asking.clone(),
        }))
    }

    /// A live session handle, reconnecting (with backoff, for up to [`RECONNECT_WINDOW`]) if needed.
    pub(super) async fn handle(&self) -> Result<Arc<ClientHandle>, SshError> {
        // The window runs from when this caller asked: the time it waited behind another caller's
        // reconnect counts, so a dead server costs a request one window, not one more for each
        // caller that was reconnecting ahead of it (after the wait, one dial is still tried).
        let start = Instant::now();
        let mut guard = self.link.lock().await;
        if let Some(l) = guard.as_ref()
            && !l.handle.is_closed()
        {
            return Ok(l.handle.clone());
        }
        *guard = None;
        if let Some(e) = self.fatal.lock().ok().and_then(|f| f.clone()) {
            return Err(e);
        }
        let mut backoff = Duration::from_millis(250);
        let mut attempt = 0;
        let mut last_error = String::from("the connection was lost");
        loop {
            attempt += 1;
            self.status.send_replace(LinkStatus::Reconnecting {
                attempt,
                last_error: last_error.clone(),
            });
            match self.dial().await {
                Ok(link) => {
                    let h = link.handle.clone();
                    *guard = Some(link);
                    let rtt = ping_handle(&h, self.resolved.connect_timeout)
                        .await
                        .unwrap_or_default();
                    self.status.send_replace(LinkStatus::Connected { rtt });
                    return Ok(h);
                }
                Err(e) if e.is_fatal() => {
                    if let Ok(mut f) = self.fatal.lock() {
                        *f = Some(e.clone());
                    }
                    self.status.send_replace(LinkStatus::Failed {
                        error: e.to_string(),
                    });
                    return Err(e);
                }
                Err(e) => {
                    last_error = e.to_string();
                    self.status.send_replace(LinkStatus::Reconnecting {
                        attempt,
                        last_error: last_error.clone(),
                    });
                    if start.elapsed() + backoff > RECONNECT_WINDOW {
                        return Err(e);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    pub(super) async fn ping(&self) -> Result<Duration, SshError> {
        let h = self.handle().await?;
        ping_handle(&h, self.resolved.connect_timeout).await
    }

    /// Dials the server (through its jump hosts), verifies its key and authenticates.
    pub(super) async fn dial(&self) -> Result<Link, SshError> {
        let mut jumps: Vec<ClientHandle> = Vec::new();
        for hop in &self.jumps {
            let h = match jumps.last() {
                None => self.dial_one(hop, None).await?,
                Some(prev) => self.dial_one(hop, Some(prev)).await?,
            };
            jumps.push(h);
        }
        let handle = self.dial_one(&self.resolved, jumps.last()).await?;
        Ok(Link {
            handle: Arc::new(handle),
            _jumps: jumps,
        })
    }

    async fn dial_one(
        &self,
        r: &Resolved,
        via: Option<&ClientHandle>,
    ) -> Result<ClientHandle, SshError> {
        let addr = format!("{}:{}", r.host, r.port);
        let secs = r.connect_timeout.as_secs().max(1);
        let timeout = |what: &str| SshError::Timeout {
            what: format!("{what} {addr}"),
            secs,
        };
        let verdict = Arc::new(StdMutex::new(None));
        // HostKeyAlias: keys are looked up and saved under the alias, without a port (as ssh).
        let (key_host, key_port) = match &r.host_key_alias {
            Some(a) => (a.clone(), 22),
            None => (r.host.clone(), r.port),
        };
        let handler = Client {
            host: key_host,
            port: key_port,
            user: r.user.clone(),
            known_hosts: r.known_hosts.clone(),
            global_known_hosts: r.global_known_hosts.clone(),
            strict: r.strict,
            hash_known_hosts: r.hash_known_hosts,
            prompter: self.prompter(),
            trusted: self.trusted.clone(),
            verdict: verdict.clone(),
        };
        let config = Arc::new(client_config(r));
        let result = match via {
            Some(jump) => {
                let ch = tokio::time::timeout(
                    r.connect_timeout,
                    jump.channel_open_direct_tcpip(r.host.clone(), r.port as u32, "127.0.0.1", 0),
                )
                .await
                .map_err(|_| timeout("opening a tunnel to"))?
                .map_err(|e| SshError::Connect {
                    addr: addr.clone(),
                    reason: format!("the jump host could not reach it ({})", open_reason(&e)),
                })?;
                within(
                    r.connect_timeout,
                    &self.asking,
                    client::connect_stream(config, ch.into_stream(), handler),
                )
                .await
                .ok_or_else(|| timeout("ssh handshake with"))?
            }
            None => match &r.proxy_command {
                Some(line) => {
                    let proxy_err = |reason: String| SshError::Proxy {
                        host: r.alias.clone(),
                        command: line.trim_start_matches("exec ").to_string(),
                        reason,
                    };
                    let (stream, report) = proxy::spawn(line)
                        .map_err(|e| proxy_err(format!("it could not be started ({e})")))?;
                    let handshake = within(
                        r.connect_timeout,
                        &self.asking,
                        client::connect_stream(config, stream, handler),
                    )
                    .await;
                    match handshake {
                        None => {
                            return Err(proxy_err(proxy::describe(
                                &report,
                                &format!(
                                    "no SSH server answered through it within {secs} s (ConnectTimeout)"
                                ),
                            )));
                        }
                        Some(Err(e)) if verdict.lock().map(|v| v.is_none()).unwrap_or(true) => {
                            proxy::settle(&report).await;
                            return Err(proxy_err(proxy::describe(&report, &e.to_string())));
                        }
                        Some(other) => other,
                    }
                }
                None => {
                    let stream = QuickAck(tcp_connect(r).await?);
                    within(
                        r.connect_timeout,
                        &self.asking,
                        client::connect_stream(config, stream, handler),
                    )
                    .await
                    .ok_or_else(|| timeout("ssh handshake with"))?
                }
            },
        };
        let verdict = verdict.lock().ok().and_then(|mut v| v.take());
        let mut handle = match (result, verdict) {
            (Ok(h), Some(Ok(status))) => {
                if r == &self.resolved
                    && let Ok(mut i) = self.info.lock()
                {
                    i.host_key = status;
                }
                h
            }
            (_, Some(Err(e))) => return Err(e),
            (Ok(_), None) => {
                return Err(SshError::Handshake {
                    addr,
                    reason: "no host key checked".into(),
                });
            }
            (Err(e), _) => {
                return Err(SshError::Handshake {
                    addr,
                    reason: e.to_string(),
                });
            }
        };
        let home = self.options.home_dir();
        let auth = auth::authenticate(
            &mut handle,
            r,
            &home,
            self.prompter(),
            self.allow_password,
            &self.auth_memory,
        );
        let method = within(r.connect_timeout, &self.asking, auth)
            .await
            .ok_or_else(|| timeout("ssh authentication with"))??;
        if r == &self.resolved
            && let Ok(mut i) = self.info.lock()
        {
            i.auth_method = method;
        }
        Ok(handle)
    }

    pub(super) async fn exec(
        &self,
        cmd: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SshError> {
        let h = self.handle().await?;
        let chan_err = |e: russh::Error| SshError::Channel {
            host: self.host(),
            reason: open_reason(&e),
        };
        // The whole exchange is bounded, not only the wait for output: a link that dies while
        // the channel opens or the input is sent (a window that never opens) must not hold a
        // run's step forever.
        let work = async {
            let mut ch = h.channel_open_session().await.map_err(chan_err)?;
            ch.exec(true, cmd).await.map_err(chan_err)?;
            if let Some(input) = stdin {
                ch.data(input).await.map_err(chan_err)?;
            }
            // Commands that read stdin must see its end, or they wait forever.
            ch.eof().await.map_err(chan_err)?;
            let mut out = ExecOutput::default();
            while let Some(msg) = ch.wait().await {
                match msg {
                    russh::ChannelMsg::Data { data } if out.stdout.len() < EXEC_MAX_OUTPUT => {
                        out.stdout.extend_from_slice(&data)
                    }
                    russh::ChannelMsg::ExtendedData { data, ext: 1 }
                        if out.stderr.len() < EXEC_MAX_OUTPUT =>
                    {
                        out.stderr.extend_from_slice(&data)
                    }
                    russh::ChannelMsg::ExitStatus { exit_status } => {
                        out.exit_code = Some(exit_status)
                    }
                    russh::ChannelMsg::Close => break,
                    _ => {}
                }
            }
            Ok(out)
        };
        tokio::time::timeout(EXEC_TIMEOUT, work)
            .await
            .map_err(|_| SshError::Timeout {
                what: format!("`{cmd}` on {}", self.host()),
                secs: EXEC_TIMEOUT.as_secs(),
            })?
    }
}

fn client_config(r: &Resolved) -> client::Config {
    let mut c = client::Config {
        // Our own supervisor sends keepalives and measures them; russh's timer would race it.
        keepalive_interval: None,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    };
    // Ask first for a host key type we already know for this host, as OpenSSH does, so a server
    // with several keys is not reported as unknown.
    let (host, port) = match &r.host_key_alias {
        Some(a) => (a.as_str(), 22),
        None => (r.host.as_str(), r.port),
    };
    let files: Vec<std::path::PathBuf> = r
        .known_hosts
        .iter()
        .chain(&r.global_known_hosts)
        .cloned()
        .collect();
    let known = known_hosts::known_algorithms(&files, host, port);
    if !known.is_empty() {
        let mut keys: Vec<russh::keys::Algorithm> = known.clone();
        for k in c.preferred.key.iter() {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        c.preferred.key = keys.into();
    }
    c
}

/// sshd sets TCP_NODELAY only for interactive (pty) sessions, so its small packets wait for our
/// ACK (Nagle), and Linux delays that ACK up to 40 ms: the first answer on a fresh channel took
/// ~40 ms. Asking for an immediate ACK after each read removes the stall; the flag does not stick.
struct QuickAck(tokio::net::TcpStream);

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let r = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(r, std::task::Poll::Ready(Ok(()))) {
            #[cfg(target_os = "linux")]
            let _ = socket2::SockRef::from(&self.0).set_tcp_quickack(true);
        }
        r
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

async fn tcp_connect(r: &Resolved) -> Result<tokio::net::TcpStream, SshError> {
    let secs = r.connect_timeout.as_secs().max(1);
    let addrs: Vec<std::net::SocketAddr> = tokio::time::timeout(
        r.connect_timeout,
        tokio::net::lookup_host((r.host.as_str(), r.port)),
    )
    .await
    .map_err(|_| SshError::Timeout {
        what: format!("resolving {}", r.host),
        secs,
    })?
    .map_err(|e| SshError::Resolve {
        host: r.host.clone(),
        reason: e.to_string(),
    })?
    .collect();
    let mut last = String::from("no address");
    for a in &addrs {
        match tokio::time::timeout(r.connect_timeout, tokio::net::TcpStream::connect(a)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => last = e.to_string().to_lowercase(),
            Err(_) => last = format!("no answer within {secs} s"),
        }
    }
    Err(SshError::Connect {
        addr: format!("{}:{}", r.host, r.port),
        reason: last,
    })
}

// Keeping the session honest (see `link.rs` for the status it reports): keepalives, and a
// lost link dropped and re-established in the background.

impl Inner {
    /// Marks the current link dead (a keepalive went unanswered) so the next use reconnects.
    pub(super) async fn drop_link(&self, why: &str) {
        let dead = self.link.lock().await.take();
        self.status.send_replace(LinkStatus::Reconnecting {
            attempt: 0,
            last_error: why.to_string(),
        });
        if let Some(l) = dead {
            // The peer is silent: say goodbye without waiting on it. Dropping the handle ends the
            // session task, which closes every channel, so open streams fail now, not at TCP timeout.
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    l.handle.disconnect(
                        russh::Disconnect::ByApplication,
                        "keepalive timeout",
                        "en",
                    ),
                )
                .await;
            });
        }
    }
}

/// How often the supervisor looks at the link: the resolution of "stale for N s".
const TICK: Duration = Duration::from_millis(500);

/// Keepalives and reconnects for as long as the session lives. A keepalive runs beside the loop, so
/// a silent peer is reported while its answer is awaited: `Unanswered` once it has been silent for
/// longer than the keepalive interval, the link dropped (and redialled) after
/// `ServerAliveCountMax` intervals without an answer.
pub(super) async fn supervise(weak: std::sync::Weak<Inner>) {
    let mut last_answer = Instant::now();
    let mut pending: Option<(Instant, tokio::task::JoinHandle<Result<Duration, SshError>>)> = None;
    loop {
        tokio::time::sleep(TICK).await;
        let Some(inner) = weak.upgrade() else {
            if let Some((_, task)) = pending {
                task.abort();
            }
            return;
        };
        if inner.fatal.lock().map(|f| f.is_some()).unwrap_or(true) {
            return;
        }
        let interval = inner.resolved.alive_interval;
        let give_up = interval * inner.resolved.alive_count_max;
        let current = inner
            .link
            .try_lock()
            .ok()
            .and_then(|l| l.as_ref().map(|l| l.handle.clone()));
        match current {
            Some(h) if !h.is_closed() => match pending.take() {
                Some((_, task)) if task.is_finished() => match task.await {
                    Ok(Ok(rtt)) => {
                        last_answer = Instant::now();
                        inner.status.send_replace(LinkStatus::Connected { rtt });
                    }
                    Ok(Err(e)) => inner.drop_link(&e.to_string()).await,
                    Err(_) => {}
                },
                Some((started, task)) => {
                    let silent = last_answer.elapsed();
                    if started.elapsed() >= give_up {
                        task.abort();
                        inner
                            .drop_link(&format!(
                                "no answer to keepalives for {} s",
                                silent.as_secs()
                            ))
                            .await;
                    } else {
                        if started.elapsed() >= interval.min(UNANSWERED_AFTER) {
                            inner.status.send_replace(LinkStatus::Unanswered { silent });
                        }
                        pending = Some((started, task));
                    }
                }
                None if last_answer.elapsed() >= interval => {
                    let task = tokio::spawn(async move { ping_handle(&h, give_up).await });
                    pending = Some((Instant::now(), task));
                }
                None => {}
            },
            // Being re-established by a request right now.
            None if inner.link.try_lock().is_err() => {}
            _ => {
                if let Some((_, task)) = pending.take() {
                    task.abort();
                }
                // Lost: reconnect now rather than on the next request, so the header shows it.
                let _ = inner.handle().await;
                last_answer = Instant::now();
            }
        }
    }
}
