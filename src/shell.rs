//! `e`: an interactive shell in a container through the exec API with a TTY, while the console is
//! suspended. The terminal's bytes go to the exec's stdin as they are typed; the exec's output goes
//! straight to the terminal (it is the user's shell, so it is not sanitized).

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;

use bollard::Docker;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::query_parameters::ResizeExecOptions;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::io::unix::AsyncFd;

/// Prefers bash, falls back to sh; the image may have neither, which the exit code tells.
const SHELL: &str = "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi";

/// Runs the shell until it exits; returns its exit code. The caller has left the alternate screen and
/// stopped reading terminal events; raw mode stays on so every key reaches the shell.
pub async fn run(docker: &Docker, container: &str) -> color_eyre::Result<i64> {
    let exec = docker
        .create_exec(
            container,
            ExecConfig {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(true),
                env: Some(vec!["TERM=xterm-256color".into()]),
                cmd: Some(vec!["sh".into(), "-c".into(), SHELL.into()]),
                ..Default::default()
            },
        )
        .await?;
    let started = docker
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                detach: false,
                tty: true,
                output_capacity: None,
            }),
        )
        .await?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        color_eyre::eyre::bail!("the engine did not attach to the shell");
    };
    let resize = |docker: Docker, id: String| async move {
        if let Ok((w, h)) = crossterm::terminal::size() {
            let _ = docker
                .resize_exec(
                    &id,
                    ResizeExecOptions {
                        w: w as i32,
                        h: h as i32,
                    },
                )
                .await;
        }
    };
    resize(docker.clone(), exec.id.clone()).await;

    // A fresh non-blocking descriptor of the terminal: reading it can be abandoned the moment the
    // shell ends, so no keystroke meant for the console is swallowed afterwards.
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/tty")?;
    // SAFETY: the File owns its descriptor and the AsyncFd owns the File until this function returns.
    let tty =
        unsafe { AsyncFd::register(tty) }.map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let mut stdout = std::io::stdout();
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(out)) => {
                    stdout.write_all(&out.into_bytes())?;
                    stdout.flush()?;
                }
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            ready = tty.readable() => {
                let mut guard = ready?;
                match guard.try_io(|fd| fd.get_ref().read(&mut buf)) {
                    Ok(Ok(0)) => break,
                    Ok(Ok(n)) => input.write_all(&buf[..n]).await?,
                    Ok(Err(e)) => return Err(e.into()),
                    Err(_would_block) => continue,
                }
            }
            _ = winch.recv() => resize(docker.clone(), exec.id.clone()).await,
        }
    }
    let code = docker
        .inspect_exec(&exec.id)
        .await
        .ok()
        .and_then(|i| i.exit_code)
        .unwrap_or(-1);
    Ok(code)
}
