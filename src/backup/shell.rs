//! A shell on the server: where a dump is written and read, so its bytes never pass through the
//! laptop. On a local engine that is this machine's `sh`; over SSH, a command on the server (the
//! SSH module implements [`ServerShell`] in `remote.rs`); a TCP engine has none.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::engine::Engine;
use crate::target::Endpoint;

#[derive(Debug, Clone, Default)]
pub struct ShellOutput {
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ShellOutput {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_string()
    }

    /// The last non-empty line of stderr, sanitised: what to say when it failed.
    pub fn reason(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let last = text.lines().rev().find(|l| !l.trim().is_empty());
        let code = match self.code {
            Some(c) => format!("exit {c}"),
            None => "killed".into(),
        };
        match last {
            Some(l) => format!("{code}: {}", crate::format::printable(l.trim())),
            None => code,
        }
    }
}

/// A file on the server as it is read, a chunk at a time.
pub type FileReader = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// Runs a `sh` script on the server.
pub trait ServerShell: Send + Sync {
    fn run<'a>(
        &'a self,
        script: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ShellOutput, String>> + Send + 'a>>;

    /// Streams a file of the server to here (`--download`): never whole in memory.
    fn read<'a>(
        &'a self,
        path: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<FileReader, String>> + Send + 'a>>;
}

/// This machine's `sh`: the server of a local engine.
pub struct LocalShell;

impl ServerShell for LocalShell {
    fn run<'a>(
        &'a self,
        script: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ShellOutput, String>> + Send + 'a>> {
        Box::pin(async move {
            let out = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(std::process::Stdio::null())
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|e| format!("cannot run sh on this machine: {e}"))?;
            Ok(ShellOutput {
                code: out.status.code(),
                stdout: out.stdout,
                stderr: out.stderr,
            })
        })
    }
    fn read<'a>(
        &'a self,
        path: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<FileReader, String>> + Send + 'a>> {
        Box::pin(async move {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| format!("cannot read {path}: {e}"))?;
            Ok(Box::pin(file) as FileReader)
        })
    }
}

/// The server's shell and the `docker` command that reaches the same engine there.
pub struct Server {
    pub shell: Arc<dyn ServerShell>,
    /// `docker -H unix:///var/run/docker.sock`
    pub docker: String,
}

/// The shell of `engine`'s server; `ssh` makes the SSH one (the SSH module's, passed in so this
/// module knows no SSH).
pub fn server_of(
    engine: &Engine,
    ssh: impl FnOnce(&Engine) -> Option<Arc<dyn ServerShell>>,
) -> Result<Server, String> {
    let socket = match &engine.target.endpoint {
        Endpoint::Unix(path) => path.display().to_string(),
        Endpoint::Ssh(spec) => spec.socket_path().to_string(),
        Endpoint::Tcp(addr) => {
            return Err(format!(
                "berth writes backups with a shell on the server, and a TCP engine ({addr}) gives none: reach the server over SSH (ssh://user@host)"
            ));
        }
    };
    let shell = match &engine.target.endpoint {
        Endpoint::Ssh(_) => ssh(engine).ok_or("the SSH session is gone: reconnect")?,
        _ => Arc::new(LocalShell) as Arc<dyn ServerShell>,
    };
    Ok(Server {
        shell,
        docker: format!(
            "docker -H {}",
            super::kind::quote(&format!("unix://{socket}"))
        ),
    })
}
