//! Registry credentials as docker keeps them: `~/.docker/config.json` (`auths` with a base64
//! `user:password`, or a `credsStore` / per-registry `credHelpers` program run as
//! `docker-credential-NAME get`), read on the server first, then on this machine. A secret never
//! reaches a `Debug`, a message, the audit log or a log line.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use base64::Engine as _;

use super::{DOCKER_HUB_KEY, ImageRef};

pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The largest docker config or helper answer berth reads.
const MAX_CONFIG: usize = 1 << 20;
/// A credential helper that has not answered after this long is given up on.
const HELPER_TIMEOUT: Duration = Duration::from_secs(15);

/// A login for one registry. The secret stays out of `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: String,
    /// Where it came from, for messages: `the server's docker config`, `credential helper pass on the server`.
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<hidden>")
            .field("source", &self.source)
            .finish()
    }
}

/// Where a docker config lives and where its helpers run: the server (over SSH, in
/// `crate::remote`) or this machine ([`LocalHost`]).
pub trait CredentialHost: Send + Sync {
    /// `the server`, `this machine`: for messages.
    fn label(&self) -> String;
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; `Ok(None)` when there is none.
    fn read_config(&self) -> BoxFut<'_, Result<Option<Vec<u8>>, String>>;
    /// `docker-credential-{helper} get` with `server` on stdin: its stdout, or why not.
    fn run_helper<'a>(
        &'a self,
        helper: &'a str,
        server: &'a str,
    ) -> BoxFut<'a, Result<Vec<u8>, String>>;
}

/// This machine's docker config and helpers.
pub struct LocalHost;

impl CredentialHost for LocalHost {
    fn label(&self) -> String {
        "this machine".into()
    }

    fn read_config(&self) -> BoxFut<'_, Result<Option<Vec<u8>>, String>> {
        Box::pin(async {
            let dir = match std::env::var_os("DOCKER_CONFIG") {
                Some(d) => std::path::PathBuf::from(d),
                None => match std::env::var_os("HOME") {
                    Some(h) => std::path::PathBuf::from(h).join(".docker"),
                    None => return Ok(None),
                },
            };
            let path = dir.join("config.json");
            match tokio::fs::read(&path).await {
                Ok(b) if b.len() > MAX_CONFIG => Err(format!("{} is too large", path.display())),
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("{}: {e}", path.display())),
            }
        })
    }

    fn run_helper<'a>(
        &'a self,
        helper: &'a str,
        server: &'a str,
    ) -> BoxFut<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            use tokio::io::AsyncWriteExt;
            let program = helper_program(helper)?;
            let mut child = tokio::process::Command::new(&program)
                .arg("get")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("{program}: {e}"))?;
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(server.as_bytes()).await;
            }
            let out = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
                .await
                .map_err(|_| {
                    format!(
                        "{program} did not answer within {} s",
                        HELPER_TIMEOUT.as_secs()
                    )
                })?
                .map_err(|e| format!("{program}: {e}"))?;
            if out.status.success() {
                Ok(out.stdout)
            } else {
                Err(helper_failure(&program, &out.stdout, &out.stderr))
            }
        })
    }
}

/// `docker-credential-NAME` for a helper name from a config; a name that could do more than name
/// a program (a path, shell characters) is refused.
pub fn helper_program(helper: &str) -> Result<String, String> {
    if helper.is_empty()
        || !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "the credential helper name '{helper}' is not a plain program name"
        ));
    }
    Ok(format!("docker-credential-{helper}"))
}

/// A helper's failure in one line; "credentials not found" is how helpers say they have none.
pub fn helper_failure(program: &str, stdout: &[u8], stderr: &[u8]) -> String {
    let text = [stdout, stderr]
        .iter()
        .map(|b| String::from_utf8_lossy(b).trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "failed".into());
    format!(
        "{program}: {}",
        text.lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>()
    )
}

/// The `{"Username", "Secret"}` a helper prints; `None` for its "not found".
pub fn parse_helper_output(out: &[u8], source: &str) -> Result<Option<Credentials>, String> {
    #[derive(serde::Deserialize)]
    struct HelperAnswer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let a: HelperAnswer = serde_json::from_slice(out)
        .map_err(|e| format!("{source} printed something that is not its JSON answer ({e})"))?;
    if a.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: a.username,
        secret: a.secret,
        source: source.into(),
    }))
}

#[derive(serde::Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: std::collections::BTreeMap<String, String>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// A config key (`https://ghcr.io`, `ghcr.io/v2/`, `https://index.docker.io/v1/`) down to its host.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// Whether a config key names this registry, as docker matches them.
fn key_matches(key: &str, image: &ImageRef) -> bool {
    let host = key_host(key);
    if image.registry == "docker.io" {
        matches!(
            host,
            "index.docker.io" | "docker.io" | "registry-1.docker.io"
        )
    } else {
        host == image.registry
    }
}

/// The server name a helper is asked about: what `docker login` stored it under.
fn helper_server(image: &ImageRef) -> String {
    if image.registry == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        image.registry.clone()
    }
}

/// The login for `image`'s registry from one host's docker config: its `credHelpers` entry, its
/// `auths` entry, or its `credsStore`. `Ok(None)`: that host has none.
pub async fn from_host(
    host: &dyn CredentialHost,
    image: &ImageRef,
) -> Result<Option<Credentials>, String> {
    let label = host.label();
    let Some(bytes) = host.read_config().await? else {
        return Ok(None);
    };
    let config: DockerConfig = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the docker config on {label} is not valid JSON ({e})"))?;
    let helper = config
        .cred_helpers
        .iter()
        .find(|(k, _)| key_matches(k, image))
        .map(|(_, h)| h.clone());
    if let Some(entry) = config
        .auths
        .iter()
        .find(|(k, _)| key_matches(k, image))
        .map(|(_, e)| e)
        && helper.is_none()
        && let Some(c) = from_entry(entry, &format!("the docker config on {label}"))?
    {
        return Ok(Some(c));
    }
    let Some(helper) = helper.or(config.creds_store) else {
        return Ok(None);
    };
    let source = format!("credential helper {helper} on {label}");
    match host.run_helper(&helper, &helper_server(image)).await {
        Ok(out) => parse_helper_output(&out, &source),
        // Helpers say "credentials not found in native keychain" and exit 1 when they have none.
        Err(e) if e.to_lowercase().contains("not found") => Ok(None),
        Err(e) => Err(format!("{source}: {e}")),
    }
}

fn from_entry(e: &AuthEntry, source: &str) -> Result<Option<Credentials>, String> {
    if let Some(auth) = e.auth.as_deref().filter(|a| !a.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| format!("an `auth` entry in {source} is not base64"))?;
        let text = String::from_utf8(raw)
            .map_err(|_| format!("an `auth` entry in {source} is not text"))?;
        let Some((user, pass)) = text.split_once(':') else {
            return Err(format!("an `auth` entry in {source} is not user:password"));
        };
        return Ok(Some(Credentials {
            username: user.into(),
            secret: pass.into(),
            source: source.into(),
        }));
    }
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        return Ok(Some(Credentials {
            username: u.clone(),
            secret: p.clone(),
            source: source.into(),
        }));
    }
    if let Some(t) = &e.identitytoken {
        return Ok(Some(Credentials {
            username: "<token>".into(),
            secret: t.clone(),
            source: source.into(),
        }));
    }
    Ok(None)
}

/// The first login found for `image`'s registry in `hosts`, in order (the server's, then this
/// machine's). A host whose config cannot be read is passed over; its reason is kept for the
/// message when no host has a login.
pub async fn find_credentials(
    hosts: &[std::sync::Arc<dyn CredentialHost>],
    image: &ImageRef,
) -> (Option<Credentials>, Vec<String>) {
    let mut problems = Vec::new();
    for h in hosts {
        match from_host(h.as_ref(), image).await {
            Ok(Some(c)) => return (Some(c), problems),
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    (None, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed {
        config: Option<&'static str>,
        helper: Result<&'static str, &'static str>,
    }

    impl CredentialHost for Fixed {
        fn label(&self) -> String {
            "the server".into()
        }
        fn read_config(&self) -> BoxFut<'_, Result<Option<Vec<u8>>, String>> {
            let c = self.config.map(|s| s.as_bytes().to_vec());
            Box::pin(async move { Ok(c) })
        }
        fn run_helper<'a>(
            &'a self,
            helper: &'a str,
            server: &'a str,
        ) -> BoxFut<'a, Result<Vec<u8>, String>> {
            let r = self
                .helper
                .map(|s| {
                    s.replace("SERVER", server)
                        .replace("HELPER", helper)
                        .into_bytes()
                })
                .map_err(String::from);
            Box::pin(async move { r })
        }
    }

    fn image(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    #[tokio::test]
    async fn auths_entry_is_decoded_and_hidden() {
        // "deploy:s3cret"
        let host = Fixed {
            config: Some(r#"{"auths":{"https://127.0.0.1:5000":{"auth":"ZGVwbG95OnMzY3JldA=="}}}"#),
            helper: Err("unused"),
        };
        let c = from_host(&host, &image("127.0.0.1:5000/app:v1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.username.as_str(), c.secret.as_str()),
            ("deploy", "s3cret")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        // Another registry has no login here.
        assert_eq!(from_host(&host, &image("ghcr.io/a/b")).await.unwrap(), None);
    }

    #[tokio::test]
    async fn docker_hub_keys_and_helpers() {
        let host = Fixed {
            config: Some(r#"{"auths":{"https://index.docker.io/v1/":{}},"credsStore":"pass"}"#),
            helper: Ok(r#"{"ServerURL":"SERVER","Username":"HELPER","Secret":"tok"}"#),
        };
        let c = from_host(&host, &image("acme/web")).await.unwrap().unwrap();
        assert_eq!(c.username, "pass");
        assert_eq!(c.secret, "tok");
        assert_eq!(c.source, "credential helper pass on the server");
        // credHelpers wins over auths for its registry.
        let host = Fixed {
            config: Some(r#"{"auths":{"ghcr.io":{"auth":"YTpi"}},"credHelpers":{"ghcr.io":"gh"}}"#),
            helper: Err("credentials not found in native keychain"),
        };
        assert_eq!(from_host(&host, &image("ghcr.io/a/b")).await.unwrap(), None);
    }

    #[tokio::test]
    async fn bad_configs_say_what_is_wrong() {
        let host = Fixed {
            config: Some("{not json"),
            helper: Err("unused"),
        };
        let e = from_host(&host, &image("x.io/a")).await.unwrap_err();
        assert!(e.contains("not valid JSON"), "{e}");
        let host = Fixed {
            config: Some(r#"{"auths":{"x.io":{"auth":"!!"}}}"#),
            helper: Err("unused"),
        };
        let e = from_host(&host, &image("x.io/a")).await.unwrap_err();
        assert!(e.contains("not base64"), "{e}");
        let hosts: Vec<std::sync::Arc<dyn CredentialHost>> = vec![std::sync::Arc::new(host)];
        let (none, problems) = find_credentials(&hosts, &image("x.io/a")).await;
        assert!(none.is_none() && problems.len() == 1);
        assert!(helper_program("pass").is_ok());
        assert!(helper_program("x; rm -rf /").is_err());
        assert!(helper_program("../x").is_err());
    }
}
