//! SSH-backed implementations of hooks that engine-side modules define without knowing about SSH.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::runbook::RemoteAppend;
use crate::ssh::SshSession;

/// Appends audit lines to a file on the server with one read-free exec per line.
pub struct SshAppend(pub Arc<SshSession>);

impl RemoteAppend for SshAppend {
    fn append<'a>(
        &'a self,
        path: &'a str,
        line: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let quote = |s: &str| {
                shlex::try_quote(s)
                    .map(|q| q.into_owned())
                    .map_err(|e| e.to_string())
            };
            let cmd = format!(
                "printf '%s\\n' {} >> {}",
                quote(line.trim_end())?,
                quote(path)?
            );
            let out = self.0.exec(&cmd).await.map_err(|e| e.to_string())?;
            match out.exit_code {
                Some(0) => Ok(()),
                code => Err(format!(
                    "appending to {path} on the server failed ({}): {}",
                    code.map(|c| format!("exit {c}"))
                        .unwrap_or_else(|| "killed".into()),
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
            }
        })
    }
}

/// Runs the stats collector's read-only command over the SSH session.
pub struct SshExec(pub Arc<SshSession>);

impl crate::stats::RemoteExec for SshExec {
    fn exec<'a>(
        &'a self,
        cmd: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            let out = self.0.exec(cmd).await.map_err(|e| e.to_string())?;
            // A missing file is no failure (the script says so by printing nothing); a shell that
            // could not run at all is.
            match out.exit_code {
                Some(0) | Some(1) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
                code => Err(format!(
                    "stats command failed ({}): {}",
                    code.map(|c| format!("exit {c}"))
                        .unwrap_or_else(|| "killed".into()),
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
            }
        })
    }
}
