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
