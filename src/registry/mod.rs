//! Image registries over the Docker Registry HTTP API v2: which registry a repository lives in
//! (Docker's rules), its tags (paginated), each tag's digest and, from the image config, its
//! creation date; the token challenge and basic auth; credentials from the docker config of the
//! server (or of this machine), never printed. No terminal here: the runbook and the CLI use it.

mod auth;
mod client;
mod server;

pub use auth::{CredentialHost, Credentials, LocalHost, find_credentials, parse_helper_output};
pub use client::{DETAILED_TAGS, Listing, RegistryClient, RemoteTag, list_tags};
pub use server::{SshHost, hosts_for};

/// Docker Hub's API host; `docker.io` names it in references.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key docker login writes for Docker Hub in `config.json`.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A registry's answer, or why there is none, each as one line a user can act on.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum RegistryError {
    #[error("registry {registry} is unreachable: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error(
        "registry {registry} needs a login for {repository} and berth found none (the server's docker config, then this machine's): run `docker login {registry}` on the server"
    )]
    NoCredentials {
        registry: String,
        repository: String,
    },
    #[error(
        "registry {registry} refused the credentials for {repository} ({reason}): check the login with `docker login {registry}` on the server"
    )]
    Refused {
        registry: String,
        repository: String,
        reason: String,
    },
    #[error(
        "registry {registry} refused the username and password typed for {repository} ({reason}); nothing was changed: run it again and type them again, or `docker login {registry}` on the server"
    )]
    TypedRefused {
        registry: String,
        repository: String,
        reason: String,
    },
    #[error("{what} is not in registry {registry} ({reason})")]
    NotFound {
        registry: String,
        what: String,
        reason: String,
    },
    #[error(
        "{registry} answered with {what} (HTTP {status}), not the registry API: is {registry} a Docker registry?"
    )]
    NotRegistry {
        registry: String,
        status: u16,
        what: String,
    },
    #[error("registry {registry}: {reason}")]
    Other { registry: String, reason: String },
    #[error("{0}")]
    Credentials(String),
}

/// An image reference split by Docker's rules: `web:v1` and `library/web` live on Docker Hub; the
/// first path component names a registry only when it has a `.` or a `:` or is `localhost`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// As written in references: `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// The repository's path in that registry: `library/nginx`, `acme/web`.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(reference: &str) -> Result<ImageRef, String> {
        let reference = reference.trim();
        if reference.is_empty() || reference.chars().any(|c| c.is_whitespace()) {
            return Err(format!(
                "'{reference}' is not an image reference (like registry.example.com/team/app:v2)"
            ));
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (reference, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t.to_string())),
            _ => (rest, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first != first.to_lowercase() =>
            {
                (first.to_string(), path.to_string())
            }
            _ => ("docker.io".to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
            _ => registry,
        };
        let repository = if registry == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if repository.is_empty() || repository != repository.to_lowercase() {
            return Err(format!(
                "'{reference}' is not an image reference: the repository must be lowercase"
            ));
        }
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the API is reached at.
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The repository as the engine names it: `nginx` on Docker Hub, else `host/path`.
    pub fn name(&self) -> String {
        if self.registry == "docker.io" {
            self.repository
                .strip_prefix("library/")
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The same repository at another tag, as the engine names it.
    pub fn with_tag(&self, tag: &str) -> String {
        format!("{}:{tag}", self.name())
    }

    /// Loopback registries are spoken to in plain HTTP when TLS fails, as the engine does (it
    /// treats 127.0.0.0/8 and localhost as insecure registries).
    pub fn is_loopback(&self) -> bool {
        let host = self
            .registry
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&self.registry);
        host == "localhost"
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> (String, String, Option<String>) {
        let i = ImageRef::parse(s).unwrap();
        (i.registry, i.repository, i.tag)
    }

    #[test]
    fn docker_rules_for_the_registry() {
        let hub = |repo: &str, tag: Option<&str>| {
            (
                "docker.io".to_string(),
                repo.to_string(),
                tag.map(String::from),
            )
        };
        assert_eq!(r("nginx"), hub("library/nginx", None));
        assert_eq!(r("nginx:1.25"), hub("library/nginx", Some("1.25")));
        assert_eq!(r("acme/web:v2"), hub("acme/web", Some("v2")));
        assert_eq!(r("docker.io/acme/web"), hub("acme/web", None));
        assert_eq!(
            r("index.docker.io/library/redis:7"),
            hub("library/redis", Some("7"))
        );
        assert_eq!(
            r("ghcr.io/acme/web:v3"),
            ("ghcr.io".into(), "acme/web".into(), Some("v3".into()))
        );
        assert_eq!(
            r("127.0.0.1:5000/team/app:1.0"),
            (
                "127.0.0.1:5000".into(),
                "team/app".into(),
                Some("1.0".into())
            )
        );
        assert_eq!(r("localhost/app"), ("localhost".into(), "app".into(), None));
        let d = ImageRef::parse("ghcr.io/acme/web@sha256:abc").unwrap();
        assert_eq!(d.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(d.tag, None);
        assert!(ImageRef::parse("").is_err());
        assert!(ImageRef::parse("a b").is_err());
        assert!(ImageRef::parse("ghcr.io/Acme/web").is_err());
    }

    #[test]
    fn names_and_hosts() {
        let hub = ImageRef::parse("nginx:1").unwrap();
        assert_eq!(hub.api_host(), DOCKER_HUB_API);
        assert_eq!(hub.name(), "nginx");
        assert_eq!(hub.with_tag("2"), "nginx:2");
        let local = ImageRef::parse("127.0.0.1:5000/app:v1").unwrap();
        assert_eq!(local.with_tag("v2"), "127.0.0.1:5000/app:v2");
        assert!(local.is_loopback());
        assert!(ImageRef::parse("localhost:5000/app").unwrap().is_loopback());
        assert!(!ImageRef::parse("ghcr.io/a/b").unwrap().is_loopback());
    }
}
