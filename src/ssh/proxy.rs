//! `ProxyCommand`: the command runs as ssh runs it (`$SHELL -c "exec …"`) and the SSH session is
//! spoken over its stdin and stdout. Its stderr is kept (bounded) for the error when it fails.

use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;

/// The last bytes of stderr kept for the error message.
const STDERR_KEPT: usize = 4096;
/// The first bytes of stdout kept, to say what the command printed instead of an SSH greeting.
const STDOUT_KEPT: usize = 256;

/// What is known about the proxy process, shared with its stream and its watcher.
#[derive(Default)]
pub(super) struct ProxyReport {
    stderr: Vec<u8>,
    first_stdout: Vec<u8>,
    /// The command closed its stdout: it is ending, and its exit is worth waiting for.
    stdout_closed: bool,
    exit: Option<String>,
}

/// The proxy command's stdin and stdout as one stream; the process is killed when it is dropped.
pub(super) struct ProxyStream {
    stdin: ChildStdin,
    stdout: ChildStdout,
    report: Arc<StdMutex<ProxyReport>>,
    _kill: oneshot::Sender<()>,
}

/// Starts `line` (already `exec …` with tokens expanded) through the user's shell, detached from
/// the terminal: a command that would ask for a password on the tty fails and says so on stderr
/// instead of reading the console's keys.
pub(super) fn spawn(line: &str) -> std::io::Result<(ProxyStream, Arc<StdMutex<ProxyReport>>)> {
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let mut cmd = Command::new(shell);
    cmd.arg("-c")
        .arg(line)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let report = Arc::new(StdMutex::new(ProxyReport::default()));
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("the command's pipes were not set up"));
    };
    let (kill, mut killed) = oneshot::channel::<()>();
    let r = report.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        let mut stderr_done = false;
        loop {
            tokio::select! {
                n = stderr.read(&mut buf), if !stderr_done => match n {
                    Ok(0) | Err(_) => stderr_done = true,
                    Ok(n) => {
                        if let Ok(mut r) = r.lock() {
                            r.stderr.extend_from_slice(&buf[..n]);
                            let excess = r.stderr.len().saturating_sub(STDERR_KEPT);
                            r.stderr.drain(..excess);
                        }
                    }
                },
                status = child.wait() => {
                    record_exit(&r, status, &mut stderr).await;
                    return;
                }
                _ = &mut killed => {
                    // The stream was dropped, most often because the command closed its stdout
                    // on its way out: its exit is the answer, so it is waited for (see
                    // exit_patience) before the kill; without this the error lacked the exit
                    // status on a loaded machine.
                    let closing = r.lock().map(|r| r.stdout_closed).unwrap_or(false);
                    match tokio::time::timeout(exit_patience(closing), child.wait())
                    .await
                    {
                        Ok(status) => record_exit(&r, status, &mut stderr).await,
                        Err(_) => {
                            let _ = child.kill().await;
                        }
                    }
                    return;
                }
            }
        }
    });
    Ok((
        ProxyStream {
            stdin,
            stdout,
            report: report.clone(),
            _kill: kill,
        },
        report,
    ))
}

/// How long the command's exit is worth waiting for: long once it closed its stdout (it is
/// ending), briefly while it still holds it (it printed garbage and waits).
fn exit_patience(stdout_closed: bool) -> std::time::Duration {
    std::time::Duration::from_millis(if stdout_closed { 5_000 } else { 300 })
}

/// Keeps the command's exit and whatever it wrote to stderr just before it.
async fn record_exit(
    report: &StdMutex<ProxyReport>,
    status: std::io::Result<std::process::ExitStatus>,
    stderr: &mut tokio::process::ChildStderr,
) {
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        stderr.read_to_end(&mut rest),
    )
    .await;
    if let Ok(mut r) = report.lock() {
        r.stderr.extend_from_slice(&rest);
        let excess = r.stderr.len().saturating_sub(STDERR_KEPT);
        r.stderr.drain(..excess);
        r.exit = Some(match status {
            Ok(s) => match s.code() {
                Some(c) => format!("exited with status {c}"),
                None => "was killed by a signal".into(),
            },
            Err(e) => format!("could not be waited for ({e})"),
        });
    }
}

/// Waits until the command's exit is known (its watcher reads the exit and the last stderr line
/// after the stream already failed), as long as [`exit_patience`] allows: a fixed short pause
/// lost that race on a loaded machine, and the error then lacked the exit status.
pub(super) async fn settle(report: &StdMutex<ProxyReport>) {
    let started = std::time::Instant::now();
    loop {
        let (exited, closing) = report
            .lock()
            .map(|r| (r.exit.is_some(), r.stdout_closed))
            .unwrap_or((true, false));
        if exited || started.elapsed() >= exit_patience(closing) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Why a session over the proxy failed, in one line: the exit, the last stderr line, or what it
/// printed instead of an SSH greeting.
pub(super) fn describe(report: &StdMutex<ProxyReport>, fallback: &str) -> String {
    let Ok(r) = report.lock() else {
        return fallback.to_string();
    };
    let mut parts = Vec::new();
    if let Some(e) = &r.exit {
        parts.push(format!("it {e}"));
    }
    let err = String::from_utf8_lossy(&r.stderr);
    if let Some(last) = err.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        parts.push(format!(
            "its stderr said: {}",
            crate::format::printable(last)
        ));
    }
    if !r.first_stdout.is_empty() && !r.first_stdout.starts_with(b"SSH-") {
        let out = String::from_utf8_lossy(&r.first_stdout);
        let first = out.lines().next().unwrap_or("").trim();
        parts.push(format!(
            "it printed \"{}\" where an SSH server greets with SSH-2.0",
            crate::format::printable(first)
        ));
    }
    if parts.is_empty() {
        fallback.to_string()
    } else {
        parts.join("; ")
    }
}

impl AsyncRead for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stdout).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            let new = &buf.filled()[before..];
            if let Ok(mut rep) = self.report.lock() {
                if new.is_empty() && buf.remaining() > 0 {
                    rep.stdout_closed = true;
                }
                if rep.first_stdout.len() < STDOUT_KEPT {
                    let take = (STDOUT_KEPT - rep.first_stdout.len()).min(new.len());
                    rep.first_stdout.extend_from_slice(&new[..take]);
                }
            }
        }
        r
    }
}

impl AsyncWrite for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}
