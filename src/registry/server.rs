//! Where the registry login comes from for an engine: over SSH the server's docker config (and its
//! credential helpers, run there), then this machine's; for a local engine this machine's alone.
//! A TCP engine's host is not reachable for files, so only this machine's config counts there.

use std::sync::Arc;
use std::time::Duration;

use super::auth::{BoxFut, CredentialHost, LocalHost, helper_failure, helper_program};
use crate::engine::Engine;
use crate::ssh::SshSession;

/// A command on the server that has not finished after this long is given up on.
const EXEC_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_CONFIG: usize = 1 << 20;

/// The docker config of the SSH user on the server, read with one exec; its helpers run there.
pub struct SshHost(pub Arc<SshSession>);

impl CredentialHost for SshHost {
    fn label(&self) -> String {
        "the server".into()
    }

    fn read_config(&self) -> BoxFut<'_, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move {
            // Exit 3: no config there, told apart from a read error without parsing stderr.
            let cmd = format!(
                "f=\"${{DOCKER_CONFIG:-$HOME/.docker}}/config.json\"; if [ ! -e \"$f\" ]; then exit 3; fi; head -c {} -- \"$f\"",
                MAX_CONFIG + 1
            );
            let out = tokio::time::timeout(EXEC_TIMEOUT, self.0.exec(&cmd))
                .await
                .map_err(|_| "reading the docker config on the server timed out".to_string())?
                .map_err(|e| format!("reading the docker config on the server: {e}"))?;
            match out.exit_code {
                Some(0) if out.stdout.len() > MAX_CONFIG => {
                    Err("the docker config on the server is too large".into())
                }
                Some(0) => Ok(Some(out.stdout)),
                Some(3) => Ok(None),
                _ => Err(format!(
                    "reading the docker config on the server: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
            }
        })
    }

    fn run_helper<'a>(
        &'a self,
        helper: &'a str,
        server: &'a str,
    ) -> BoxFut<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let program = helper_program(helper)?;
            let out = tokio::time::timeout(
                EXEC_TIMEOUT,
                self.0
                    .exec_with_input(&format!("{program} get"), server.as_bytes()),
            )
            .await
            .map_err(|_| format!("{program} on the server did not answer"))?
            .map_err(|e| format!("{program} on the server: {e}"))?;
            match out.exit_code {
                Some(0) => Ok(out.stdout),
                _ => Err(helper_failure(&program, &out.stdout, &out.stderr)),
            }
        })
    }
}

/// The hosts whose docker config is asked for a login, in order.
pub fn hosts_for(engine: &Engine) -> Vec<Arc<dyn CredentialHost>> {
    let mut hosts: Vec<Arc<dyn CredentialHost>> = Vec::new();
    if let Some(s) = &engine.ssh {
        hosts.push(Arc::new(SshHost(s.clone())));
    }
    hosts.push(Arc::new(LocalHost));
    hosts
}
