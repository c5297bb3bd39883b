//! The bollard custom transport: each HTTP connection is one SSH channel, either
//! `direct-streamlocal@openssh.com` to the remote socket or an exec of `docker system dial-stdio`.
//!
//! A dial-stdio connection costs a login shell and a docker CLI start on the server (a few
//! hundred ms) before its first answer, and HTTP/1.1 cannot multiplex. So in dial-stdio mode:
//! - the probe's own connection serves the first requests (version, list, inspects), kept alive
//!   by hyper's pool between them;
//! - a few channels are started ahead ([`WarmPool`]) once the probe has answered, and each is
//!   handed out only after it has answered a `/_ping` of its own: a request never lands on a
//!   docker CLI that is still starting while the connection before it comes free;
//! - a request that finds none ready waits for one being started instead of starting another,
//!   and meanwhile hyper hands it the first of its own connections to come free;
//! - at most [`MAX_DIAL_STDIO`] dial-stdio channels live at once; a channel whose docker CLI
//!   has exited reads end-of-file, and is dropped (by the pool here, or by hyper), never reused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex, Weak};
use std::time::{Duration, Instant};

use bollard::{BollardRequest, Docker};
use http::header::HOST;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use russh::ChannelOpenFailure;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::{Inner, Mode, SshError, SshStream};

const OPEN_ATTEMPTS: u32 = 5;
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// Requests wait this long for an answer (streams are not cut: this covers the headers only).
const REQUEST_TIMEOUT_SECS: u64 = 120;
const POOL_IDLE: Duration = Duration::from_secs(30);
/// Idle dial-stdio connections each keep a docker CLI running on the server (and count against
/// sshd's MaxSessions, 10 by default): keep few.
const POOL_MAX_IDLE: usize = 4;
const DIAL_STDIO: &str = "docker system dial-stdio";
/// dial-stdio channels kept started ahead of need: the console's first burst (version, list,
/// events, stats) then finds its docker CLIs already running.
const WARM_TARGET: usize = 3;
/// A started channel unused this long is closed (its docker CLI exits) rather than handed out.
const WARM_MAX_AGE: Duration = Duration::from_secs(30);
/// dial-stdio channels alive at once (busy, idle in hyper's pool, or started ahead): each is a
/// docker CLI on the server and a session against sshd's MaxSessions (10 by default), which the
/// stats shell and commands share.
pub(super) const MAX_DIAL_STDIO: usize = 8;
/// How long a request waits for a dial-stdio channel when all [`MAX_DIAL_STDIO`] are busy.
const SLOT_WAIT: Duration = Duration::from_secs(30);

/// dial-stdio channels opened ahead of need, each tied to the SSH link it was opened on, and the
/// slots that bound how many dial-stdio channels live at once.
pub(super) struct WarmPool {
    /// Channels whose docker CLI has answered a `/_ping`: ready for a request.
    ready: StdMutex<Vec<Warm>>,
    /// Opens in flight, so a burst of requests does not start more than the target.
    opening: AtomicUsize,
    /// Requests waiting for one of the opens in flight.
    waiting: AtomicUsize,
    /// Told when a started channel becomes ready or fails.
    news: Notify,
    /// One permit per live dial-stdio channel.
    slots: Arc<Semaphore>,
}

impl Default for WarmPool {
    fn default() -> Self {
        WarmPool {
            ready: StdMutex::new(Vec::new()),
            opening: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            news: Notify::new(),
            slots: Arc::new(Semaphore::new(MAX_DIAL_STDIO)),
        }
    }
}

/// A dial-stdio channel with its slot: the slot is given back when the channel is dropped.
struct Warm {
    stream: SshStream,
    slot: OwnedSemaphorePermit,
    link: Weak<super::ClientHandle>,
    born: Instant,
}

impl Warm {
    /// Its link is the live one, it is young, and the server has not closed it (a channel whose
    /// docker CLI exited reads end-of-file at once).
    fn usable(&mut self) -> bool {
        let link_up = self.link.upgrade().is_some_and(|h| !h.is_closed());
        if !link_up || self.born.elapsed() > WARM_MAX_AGE {
            return false;
        }
        let mut probe = [0u8; 1];
        // Pending: open and silent, as an idle dial-stdio is. Anything else: closed or odd.
        futures::FutureExt::now_or_never(self.stream.read(&mut probe)).is_none()
    }
}

impl WarmPool {
    /// A ready channel that is still usable; the unusable ones are dropped (their slots freed).
    fn take(&self) -> Option<Warm> {
        let mut ready = self.ready.lock().ok()?;
        ready.retain_mut(Warm::usable);
        ready.pop()
    }

    /// A ready channel, or one being started that no earlier request waits for already; `None`:
    /// open one (a burst opens its channels side by side, not one after another).
    async fn take_or_wait(&self) -> Option<Warm> {
        if let Some(w) = self.take() {
            return Some(w);
        }
        let place = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _leave = scopeguard(|| {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        });
        let deadline = tokio::time::Instant::now() + PROBE_TIMEOUT;
        loop {
            let news = self.news.notified();
            tokio::pin!(news);
            news.as_mut().enable();
            if let Some(w) = self.take() {
                return Some(w);
            }
            if place >= self.opening.load(Ordering::Acquire) {
                return None;
            }
            tokio::time::timeout_at(deadline, news).await.ok()?;
        }
    }

    fn put(&self, w: Warm) {
        if let Ok(mut r) = self.ready.lock() {
            r.push(w);
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ready.lock().map(|r| r.len()).unwrap_or(0)
    }
}

/// Runs `f` when dropped (also when the future holding it is).
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// Starts dial-stdio channels in the background, one after another, until [`WARM_TARGET`] are
/// ready (or every slot is taken). Each is pinged before it counts as ready. One at a time: each
/// start is a login shell on the server, and several at once took the CPU from the requests
/// going on meanwhile (a list and its inspects over the probe's connection).
fn refill(inner: &Arc<Inner>) {
    if inner.mode() != Mode::DialStdio {
        return;
    }
    let pool = &inner.warm;
    loop {
        let opening = pool.opening.load(Ordering::Acquire);
        if opening > 0 || pool.len() >= WARM_TARGET {
            return;
        }
        let Ok(slot) = pool.slots.clone().try_acquire_owned() else {
            return;
        };
        if pool
            .opening
            .compare_exchange(opening, opening + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue;
        }
        let weak = Arc::downgrade(inner);
        tokio::spawn(async move {
            // Only this task left holding the session: nobody will ask for the channel.
            let Some(inner) = weak.upgrade().filter(|i| Arc::strong_count(i) > 1) else {
                return;
            };
            let started = async {
                let (mut stream, link) = inner.open_stream_on_link().await.ok()?;
                let (answer, used) = tokio::time::timeout(PROBE_TIMEOUT, ping(&mut stream))
                    .await
                    .ok()?
                    .ok()?;
                (is_ok(&answer) && used == answer.len()).then_some((stream, link))
            };
            let started = started.await;
            let ready = started.is_some();
            if let Some((stream, link)) = started {
                inner.warm.put(Warm {
                    stream,
                    slot,
                    link,
                    born: Instant::now(),
                });
            }
            // After the put: a request that sees no opening left also sees what it left.
            inner.warm.opening.fetch_sub(1, Ordering::AcqRel);
            inner.warm.news.notify_waiters();
            // The next one only while someone besides this task holds the session: a session
            // dropped meanwhile starts no more login shells on the server.
            if ready && Arc::strong_count(&inner) > 1 {
                refill(&inner);
            }
        });
    }
}

/// What a request gets in dial-stdio mode: a channel started ahead, or a slot to open its own.
enum Claim {
    Started(Box<Warm>),
    Slot(OwnedSemaphorePermit),
}

/// A started channel or a slot for one more, waiting (bounded) while all are busy; nothing is
/// needed in streamlocal mode. While it waits for a slot it also takes a channel that becomes
/// ready: one started for a request that went away meanwhile would otherwise hold its slot in the
/// pool while this request waits for a slot that never frees.
async fn claim(inner: &Inner) -> Result<Option<Claim>, SshError> {
    if inner.mode() != Mode::DialStdio {
        return Ok(None);
    }
    let pool = &inner.warm;
    if let Some(w) = pool.take_or_wait().await {
        return Ok(Some(Claim::Started(Box::new(w))));
    }
    let deadline = tokio::time::Instant::now() + SLOT_WAIT;
    loop {
        let news = pool.news.notified();
        tokio::pin!(news);
        news.as_mut().enable();
        if let Some(w) = pool.take() {
            return Ok(Some(Claim::Started(Box::new(w))));
        }
        tokio::select! {
            slot = pool.slots.clone().acquire_owned() => {
                return slot
                    .map(|s| Some(Claim::Slot(s)))
                    .map_err(|_| SshError::Other("session closed".into()));
            }
            _ = &mut news => {}
            _ = tokio::time::sleep_until(deadline) => return Err(all_busy(inner)),
        }
    }
}

/// A slot for one more dial-stdio channel, waiting (bounded) while all are busy; none is needed
/// in streamlocal mode.
async fn dial_slot(inner: &Inner) -> Result<Option<OwnedSemaphorePermit>, SshError> {
    if inner.mode() != Mode::DialStdio {
        return Ok(None);
    }
    match tokio::time::timeout(SLOT_WAIT, inner.warm.slots.clone().acquire_owned()).await {
        Ok(Ok(slot)) => Ok(Some(slot)),
        Ok(Err(_)) => Err(SshError::Other("session closed".into())),
        Err(_) => Err(all_busy(inner)),
    }
}

fn all_busy(inner: &Inner) -> SshError {
    SshError::Docker {
        host: inner.host(),
        reason: format!(
            "all {MAX_DIAL_STDIO} `docker system dial-stdio` connections stayed busy for {} s \
             (each open stream holds one): allow socket forwarding (AllowStreamLocalForwarding yes) \
             for more",
            SLOT_WAIT.as_secs()
        ),
    }
}

pub(super) fn docker(inner: Arc<Inner>) -> Result<Docker, SshError> {
    // A pool of HTTP connections, each its own channel: a request reuses an idle one instead of
    // paying a channel open (and, for dial-stdio, a docker CLI start on the server) every time.
    let client: Client<SshConnector, BodyType> = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(POOL_MAX_IDLE)
        .build(SshConnector(inner));
    let client = Arc::new(client);
    let transport = move |req: BollardRequest| {
        let client = client.clone();
        async move {
            // A request that only reads may land on a pooled connection whose docker CLI has
            // just exited, its close still on the way: sent again, it takes the next connection
            // (each dead one leaves the pool as it fails). hyper resends on its own only what it
            // had not written yet.
            let mut again = POOL_MAX_IDLE;
            let mut req = req;
            loop {
                let copy = if again > 0 { replayable(&req) } else { None };
                match (client.request(with_host(req)).await, copy) {
                    (Err(e), Some(copy)) if closed_before_answer(&e) => {
                        again -= 1;
                        req = copy;
                    }
                    (r, _) => return r.map_err(legacy_error),
                }
            }
        }
    };
    Docker::connect_with_custom_transport(
        transport,
        Some("http://docker"),
        REQUEST_TIMEOUT_SECS,
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| SshError::Other(format!("cannot set up the Docker client: {e}")))
}

type BodyType = <BollardRequest as BodyOf>::Body;

trait BodyOf {
    type Body;
}

impl<B> BodyOf for http::Request<B> {
    type Body = B;
}

/// The legacy client's error hides the cause (our SshError) in its source chain; keep it readable.
fn legacy_error(e: hyper_util::client::legacy::Error) -> bollard::errors::Error {
    let mut text = e.to_string();
    let mut cur = std::error::Error::source(&e);
    while let Some(c) = cur {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cur = c.source();
    }
    bollard::errors::Error::IOError {
        err: std::io::Error::new(std::io::ErrorKind::ConnectionAborted, text),
    }
}

/// Opens a channel per HTTP connection.
#[derive(Clone)]
struct SshConnector(Arc<Inner>);

impl tower_service::Service<http::Uri> for SshConnector {
    type Response = TokioIo<ChannelIo>;
    type Error = SshError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, SshError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), SshError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move {
            let mut slot = match claim(&inner).await? {
                Some(Claim::Started(w)) => {
                    refill(&inner);
                    return Ok(TokioIo::new(ChannelIo {
                        stream: w.stream,
                        _slot: Some(w.slot),
                    }));
                }
                Some(Claim::Slot(slot)) => Some(slot),
                None => None,
            };
            let stream = inner.open_stream().await?;
            if slot.is_none() {
                // This open found that the server refuses streamlocal: it is a dial-stdio one.
                slot = dial_slot(&inner).await?;
            }
            refill(&inner);
            Ok(TokioIo::new(ChannelIo {
                stream,
                _slot: slot,
            }))
        })
    }
}

/// An SSH channel as a hyper connection; a dial-stdio one holds its slot until hyper drops it.
struct ChannelIo {
    stream: SshStream,
    _slot: Option<OwnedSemaphorePermit>,
}

impl Connection for ChannelIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl tokio::io::AsyncRead for ChannelIo {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for ChannelIo {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The engine (Go's HTTP server) wants a Host header on HTTP/1.1; the pool keys on the URI's authority.
/// A copy of a request that reads only (GET or HEAD, no body), to send again.
fn replayable(req: &BollardRequest) -> Option<BollardRequest> {
    if !matches!(*req.method(), http::Method::GET | http::Method::HEAD) {
        return None;
    }
    let mut copy = http::Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone())
        .version(req.version())
        .body(bollard::body_full(bytes::Bytes::new()))
        .ok()?;
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// The connection closed after the request went out and before its answer began.
fn closed_before_answer(e: &hyper_util::client::legacy::Error) -> bool {
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        if let Some(h) = c.downcast_ref::<hyper::Error>() {
            return h.is_incomplete_message();
        }
        cur = c.source();
    }
    false
}

fn with_host(req: BollardRequest) -> BollardRequest {
    let (mut parts, body) = req.into_parts();
    parts
        .headers
        .insert(HOST, http::HeaderValue::from_static("docker"));
    BollardRequest::from_parts(parts, body)
}

impl Inner {
    /// A fresh stream to the engine, retried briefly (sshd refuses an open at once when the socket's
    /// backlog is full) and switching to dial-stdio when streamlocal forwarding is forbidden.
    pub(super) async fn open_stream(&self) -> Result<SshStream, SshError> {
        Ok(self.open_stream_on_link().await?.0)
    }

    /// [`Inner::open_stream`], with the link the channel lives on (a warm channel is worth
    /// nothing once its link is replaced).
    async fn open_stream_on_link(
        &self,
    ) -> Result<(SshStream, Weak<super::ClientHandle>), SshError> {
        let _permit = self
            .opens
            .acquire()
            .await
            .map_err(|_| SshError::Other("session closed".into()))?;
        let mut last = None;
        for attempt in 0..OPEN_ATTEMPTS {
            let h = self.handle().await?;
            let mode = self.mode();
            let opened = match mode {
                Mode::Streamlocal => h.channel_open_direct_streamlocal(self.socket.clone()).await,
                Mode::DialStdio => open_dial_stdio(&h, &self.socket).await,
            };
            match opened {
                Ok(ch) => {
                    if mode == Mode::Streamlocal {
                        self.streamlocal_worked.store(true, Ordering::Relaxed);
                    }
                    return Ok((ch.into_stream(), Arc::downgrade(&h)));
                }
                Err(russh::Error::ChannelOpenFailure(
                    ChannelOpenFailure::AdministrativelyProhibited
                    | ChannelOpenFailure::UnknownChannelType
                    | ChannelOpenFailure::Other { .. },
                )) if mode == Mode::Streamlocal
                    && !self.streamlocal_worked.load(Ordering::Relaxed) =>
                {
                    // `AllowStreamLocalForwarding no`, Tailscale SSH, servers without the extension:
                    // do what the docker CLI does.
                    self.set_mode(Mode::DialStdio);
                    continue;
                }
                Err(russh::Error::ChannelOpenFailure(ChannelOpenFailure::ConnectFailed)) => {
                    let worked = self.streamlocal_worked.load(Ordering::Relaxed);
                    // Once streamlocal has worked, "connect failed" is most likely a full backlog:
                    // retry, and only ask the server why when retries run out.
                    if worked && attempt + 1 < OPEN_ATTEMPTS {
                        last = None;
                    } else if mode == Mode::Streamlocal && !worked {
                        // OpenSSH answers "connect failed" both for a missing or forbidden socket and
                        // when AllowStreamLocalForwarding is no. Asking which costs a login shell on
                        // the server, and so does starting dial-stdio; run beside it, the question
                        // slowed the dial-stdio start (two shells starting on the server at once). So
                        // go straight to dial-stdio, on the same socket: if the socket is missing
                        // or forbidden, its docker CLI fails too and the probe asks why then.
                        self.set_mode(Mode::DialStdio);
                        continue;
                    } else {
                        let (verdict, err) = self.diagnose_socket().await;
                        match verdict.as_str() {
                            "missing" | "denied" => return Err(err),
                            _ => last = Some(err),
                        }
                    }
                }
                Err(e) => {
                    last = Some(SshError::Channel {
                        host: self.host(),
                        reason: super::open_reason(&e),
                    });
                }
            }
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        Err(last.unwrap_or_else(|| SshError::Other("cannot open an ssh channel".into())))
    }

    /// Why the server could not connect to the socket: absent, or not permitted for this user.
    async fn diagnose_socket(&self) -> (String, SshError) {
        let s = shell_quote(&self.socket);
        let cmd = format!(
            "if [ ! -e {s} ]; then echo missing; elif [ ! -r {s} ] || [ ! -w {s} ]; then echo denied; else echo ok; fi"
        );
        let verdict = self
            .exec(&cmd, None)
            .await
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let err = self.socket_error(&verdict, "the server could not connect to the socket");
        (verdict, err)
    }

    pub(super) fn socket_error(&self, verdict: &str, fallback: &str) -> SshError {
        match verdict {
            "missing" => SshError::SocketMissing {
                host: self.host(),
                socket: self.socket.clone(),
            },
            "denied" => SshError::SocketDenied {
                host: self.host(),
                socket: self.socket.clone(),
                user: self.resolved.user.clone(),
            },
            _ => SshError::Docker {
                host: self.host(),
                reason: fallback.to_string(),
            },
        }
    }
}

/// An exec of `docker system dial-stdio`: the docker CLI on the server relays the channel to its
/// engine (the one of its own settings for the default socket, else the socket asked for).
async fn open_dial_stdio(
    h: &super::ClientHandle,
    socket: &str,
) -> Result<russh::Channel<russh::client::Msg>, russh::Error> {
    let ch = h.channel_open_session().await?;
    ch.exec(false, dial_stdio_command(socket)).await?;
    Ok(ch)
}

fn dial_stdio_command(socket: &str) -> String {
    if socket == crate::target::DEFAULT_SOCKET {
        DIAL_STDIO.to_string()
    } else {
        format!(
            "docker -H {} system dial-stdio",
            shell_quote(&format!("unix://{socket}"))
        )
    }
}

/// Checks at connect time that the engine answers `/_ping`, so a missing socket or docker CLI shows
/// as one clear error instead of a failing first request.
pub(super) async fn probe(inner: &Arc<Inner>) -> Result<(), SshError> {
    let (mut stream, link) = tokio::time::timeout(PROBE_TIMEOUT, inner.open_stream_on_link())
        .await
        .map_err(|_| SshError::Timeout {
            what: format!("opening a channel to the Docker socket on {}", inner.host()),
            secs: PROBE_TIMEOUT.as_secs(),
        })??;
    let answer = tokio::time::timeout(PROBE_TIMEOUT, ping(&mut stream))
        .await
        .map_err(|_| SshError::EngineSilent {
            host: inner.host(),
            via: match inner.mode() {
                Mode::Streamlocal => format!("the socket {}", inner.socket),
                Mode::DialStdio => "`docker system dial-stdio`".into(),
            },
            secs: PROBE_TIMEOUT.as_secs(),
        })?
        .map_err(|e| SshError::Docker {
            host: inner.host(),
            reason: e.to_string(),
        })?;
    let (answer, used) = answer;
    if is_ok(&answer) {
        // A whole answer and nothing more on a dial-stdio channel: the first request reuses it
        // instead of starting another docker CLI. (Streamlocal channels are cheap to open.)
        if used == answer.len()
            && inner.mode() == Mode::DialStdio
            && let Ok(slot) = inner.warm.slots.clone().try_acquire_owned()
        {
            inner.warm.put(Warm {
                stream,
                slot,
                link,
                born: Instant::now(),
            });
        }
        // dial-stdio: start the channels later requests (the events stream, stats) will want
        // only now. Started beside the probe, their login shells and docker CLIs competed with its
        // own and delayed the first answer; the first listing goes over the probe's connection.
        refill(inner);
        return Ok(());
    }
    // Nothing came back: in dial-stdio mode the docker CLI failed; find out why.
    let s = shell_quote(&inner.socket);
    let cmd = format!(
        "if [ ! -e {s} ]; then echo missing; elif [ ! -r {s} ] || [ ! -w {s} ]; then echo denied; \
         elif ! command -v docker >/dev/null 2>&1; then echo nodocker; else echo other; fi"
    );
    let verdict = inner
        .exec(&cmd, None)
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let first = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("no answer")
        .to_string();
    Err(match verdict.as_deref() {
        Ok("nodocker") => SshError::Docker {
            host: inner.host(),
            reason: "the server forbids socket forwarding (AllowStreamLocalForwarding no) and has no docker CLI \
                     for `docker system dial-stdio`: allow forwarding in sshd_config or install the docker CLI"
                .into(),
        },
        Ok(v) => inner.socket_error(v, &format!("/_ping answered: {first}")),
        Err(_) => inner.socket_error("", &format!("/_ping answered: {first}")),
    })
}

/// Sends `GET /_ping` and reads the answer: its bytes, and how many of them the answer took
/// (`usize::MAX` when it had no length, or the stream ended: the stream is not reusable then).
async fn ping(stream: &mut SshStream) -> std::io::Result<(Vec<u8>, usize)> {
    stream
        .write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
        .await?;
    stream.flush().await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    // Headers, then the body ("OK") by its length, so the connection can serve the next request.
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            match content_length(&buf[..end]).map(|body| end + 4 + body) {
                Some(whole) if buf.len() >= whole => return Ok((buf, whole)),
                None => return Ok((buf, usize::MAX)),
                Some(_) => {}
            }
        }
        if buf.len() >= 16 * 1024 {
            return Ok((buf, usize::MAX));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok((buf, usize::MAX));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn is_ok(answer: &[u8]) -> bool {
    answer.starts_with(b"HTTP/1.1 200") || answer.starts_with(b"HTTP/1.0 200")
}

/// The Content-Length of an HTTP head, if it has one.
fn content_length(head: &[u8]) -> Option<usize> {
    String::from_utf8_lossy(head).lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: http::Method) -> BollardRequest {
        http::Request::builder()
            .method(method)
            .uri("http://docker/v1.41/containers/json?all=true")
            .header("x-probe", "1")
            .body(bollard::body_full(bytes::Bytes::from_static(b"{}")))
            .unwrap()
    }

    #[test]
    fn only_requests_that_read_are_sent_again() {
        let copy = replayable(&request(http::Method::GET)).expect("a GET is sent again");
        assert_eq!(copy.method(), http::Method::GET);
        assert_eq!(
            copy.uri().to_string(),
            "http://docker/v1.41/containers/json?all=true"
        );
        assert_eq!(copy.headers()["x-probe"], "1");
        assert!(replayable(&request(http::Method::HEAD)).is_some());
        for method in [http::Method::POST, http::Method::DELETE, http::Method::PUT] {
            assert!(
                replayable(&request(method.clone())).is_none(),
                "{method} changes something: never sent twice"
            );
        }
    }
}
