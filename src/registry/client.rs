//! The HTTP side of the registry: one client per repository, the `WWW-Authenticate` challenge
//! (basic, or a bearer token from the realm it names), tags with `Link` pagination, manifests
//! (lists and OCI indexes too) and the image config's creation date. Every call has a deadline
//! and every body a size cap.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::{Method, StatusCode, header};
use serde::Serialize;

use super::{Credentials, ImageRef, RegistryError};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest JSON body berth reads from a registry (a tags page, a manifest, an image config).
const MAX_BODY: usize = 4 << 20;
/// Tags pages followed at most: 100 tags each.
const MAX_PAGES: usize = 50;
const PAGE_SIZE: usize = 100;
/// Tags whose digest and date are looked up (three requests each): the last ones listed.
pub const DETAILED_TAGS: usize = 30;
const DETAIL_PARALLEL: usize = 6;

const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// One tag of the repository as the registry describes it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RemoteTag {
    pub tag: String,
    /// The manifest's digest (`Docker-Content-Digest`): what a pull records in RepoDigests.
    pub digest: Option<String>,
    /// From the image config (for a manifest list: the engine's platform, else the first).
    pub created: Option<DateTime<Utc>>,
    /// Compressed layers, as the manifest gives them.
    pub size: Option<u64>,
}

/// The registry's tags of one repository, newest first where a date is known.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Listing {
    pub registry: String,
    pub repository: String,
    pub tags: Vec<RemoteTag>,
    /// Tags listed in all; only the last [`DETAILED_TAGS`] get a digest and date.
    pub total: usize,
}

/// Talks to one repository of one registry, keeping the scheme that answered and the token.
pub struct RegistryClient {
    http: reqwest::Client,
    image: ImageRef,
    credentials: Option<Credentials>,
    base: tokio::sync::Mutex<Option<String>>,
    authorization: tokio::sync::Mutex<Option<String>>,
}

impl RegistryClient {
    pub fn new(
        image: ImageRef,
        credentials: Option<Credentials>,
    ) -> Result<RegistryClient, RegistryError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RegistryError::Other {
                registry: image.registry.clone(),
                reason: format!("no HTTP client: {e}"),
            })?;
        Ok(RegistryClient {
            http,
            image,
            credentials,
            base: Default::default(),
            authorization: Default::default(),
        })
    }

    pub fn image(&self) -> &ImageRef {
        &self.image
    }

    fn err_other(&self, reason: impl Into<String>) -> RegistryError {
        RegistryError::Other {
            registry: self.image.registry.clone(),
            reason: reason.into(),
        }
    }

    /// One request to `path` (or a full URL), answering the auth challenge once.
    async fn send(
        &self,
        method: Method,
        path: &str,
        accept: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let bases = match self.base.lock().await.clone() {
            Some(b) => vec![b],
            None if self.image.is_loopback() => vec![
                format!("https://{}", self.image.api_host()),
                format!("http://{}", self.image.api_host()),
            ],
            None => vec![format!("https://{}", self.image.api_host())],
        };
        let mut last = None;
        for base in &bases {
            let url = if path.starts_with("http://") || path.starts_with("https://") {
                path.to_string()
            } else {
                format!("{base}{path}")
            };
            // The login and its token go only to the registry that challenged: a `Link` to
            // another scheme, host or port is followed without them.
            let trusted = origin(&url).is_some() && origin(&url) == origin(base);
            match self.send_to(method.clone(), &url, accept, trusted).await {
                Ok(r) => {
                    *self.base.lock().await = Some(base.clone());
                    return Ok(r);
                }
                Err(e @ RegistryError::Unreachable { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| self.err_other("no address to try")))
    }

    async fn send_to(
        &self,
        method: Method,
        url: &str,
        accept: &str,
        trusted: bool,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut answered = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), url)
                .header(header::ACCEPT, accept);
            if trusted && let Some(a) = self.authorization.lock().await.clone() {
                req = req.header(header::AUTHORIZATION, a);
            }
            let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
            if resp.status() != StatusCode::UNAUTHORIZED || answered || !trusted {
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let Some(challenge) = challenge else {
                return Ok(resp);
            };
            let auth = self.answer(&challenge).await?;
            *self.authorization.lock().await = Some(auth);
            answered = true;
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> RegistryError {
        // reqwest's Display is "error sending request for url (…)": the cause says what happened.
        let mut reason = String::new();
        let mut src: Option<&dyn std::error::Error> = Some(e);
        while let Some(s) = src {
            reason = s.to_string();
            src = s.source();
        }
        if e.is_timeout() {
            reason = format!("no answer within {} s", REQUEST_TIMEOUT.as_secs());
        }
        RegistryError::Unreachable {
            registry: self.image.registry.clone(),
            reason,
        }
    }

    /// The `Authorization` value that answers a challenge: basic with the login, or a bearer token
    /// fetched from the realm (with the login when there is one; anonymous pulls need none).
    async fn answer(&self, challenge: &str) -> Result<String, RegistryError> {
        use base64::Engine as _;
        let (scheme, params) = parse_challenge(challenge);
        let basic = self.credentials.as_ref().map(|c| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.secret))
            )
        });
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => basic.ok_or_else(|| self.no_credentials()),
            "bearer" => {
                let realm = params
                    .iter()
                    .find(|(k, _)| k == "realm")
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| self.err_other("a bearer challenge without a realm"))?;
                let mut url = reqwest::Url::parse(&realm).map_err(|_| {
                    self.err_other(format!("the token realm '{realm}' is not a URL"))
                })?;
                // A login is sent to a token service only where no one on the way reads it.
                if basic.is_some() && url.scheme() != "https" && !is_loopback_url(&url) {
                    return Err(self.err_other(format!(
                        "the token realm '{realm}' is not https: berth sends the registry login only over https (or to this machine)"
                    )));
                }
                {
                    let mut q = url.query_pairs_mut();
                    if let Some((_, s)) = params.iter().find(|(k, _)| k == "service") {
                        q.append_pair("service", s);
                    }
                    let scope = params
                        .iter()
                        .find(|(k, _)| k == "scope")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_else(|| format!("repository:{}:pull", self.image.repository));
                    q.append_pair("scope", &scope);
                }
                let mut req = self.http.get(url);
                if let Some(b) = &basic {
                    req = req.header(header::AUTHORIZATION, b);
                }
                let resp = req.send().await.map_err(|e| self.unreachable(&e))?;
                let status = resp.status();
                let body = self.body(resp, "a token").await?;
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    return Err(self.refused(&error_reason(status, &body)));
                }
                if !status.is_success() {
                    return Err(self.err_other(format!(
                        "the token service answered {}",
                        error_reason(status, &body)
                    )));
                }
                #[derive(serde::Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let t: Token = serde_json::from_slice(&body)
                    .map_err(|_| self.err_other("the token service's answer is not JSON"))?;
                t.token
                    .or(t.access_token)
                    .map(|t| format!("Bearer {t}"))
                    .ok_or_else(|| self.err_other("the token service gave no token"))
            }
            other => Err(self.err_other(format!("unknown auth scheme '{other}'"))),
        }
    }

    fn no_credentials(&self) -> RegistryError {
        RegistryError::NoCredentials {
            registry: self.image.registry.clone(),
            repository: self.image.repository.clone(),
        }
    }

    fn refused(&self, reason: &str) -> RegistryError {
        if self.credentials.is_none() {
            return self.no_credentials();
        }
        RegistryError::Refused {
            registry: self.image.registry.clone(),
            repository: self.image.repository.clone(),
            reason: reason.into(),
        }
    }

    /// The body, capped, or `NotRegistry` when it is an HTML page.
    async fn body(&self, resp: reqwest::Response, what: &str) -> Result<Vec<u8>, RegistryError> {
        let status = resp.status().as_u16();
        let html = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.to_ascii_lowercase().contains("html"));
        let mut out = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.unreachable(&e))? {
            if out.len() + chunk.len() > MAX_BODY {
                return Err(self.err_other(format!("{what} is larger than {} MiB", MAX_BODY >> 20)));
            }
            out.extend_from_slice(&chunk);
        }
        let looks_html = {
            let head = String::from_utf8_lossy(&out[..out.len().min(256)]).to_ascii_lowercase();
            let head = head.trim_start();
            head.starts_with("<!doctype html") || head.starts_with("<html")
        };
        if html || looks_html {
            return Err(RegistryError::NotRegistry {
                registry: self.image.registry.clone(),
                status,
                what: "an HTML page".into(),
            });
        }
        Ok(out)
    }

    /// A JSON answer to `GET path`, with the response headers; any failure as its one line.
    async fn get_json(
        &self,
        path: &str,
        accept: &str,
        what: &str,
    ) -> Result<(header::HeaderMap, Vec<u8>), RegistryError> {
        let resp = self.send(Method::GET, path, accept).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = self.body(resp, what).await?;
        if status.is_success() {
            if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
                return Err(RegistryError::NotRegistry {
                    registry: self.image.registry.clone(),
                    status: status.as_u16(),
                    what: "something that is not JSON".into(),
                });
            }
            return Ok((headers, body));
        }
        let reason = error_reason(status, &body);
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => self.refused(&reason),
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                registry: self.image.registry.clone(),
                what: what.into(),
                reason,
            },
            _ => self.err_other(format!("{what}: {reason}")),
        })
    }

    /// Every tag of the repository, in the registry's order, following `Link: <…>; rel="next"`.
    pub async fn tags(&self) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut out = Vec::new();
        let mut next = Some(format!(
            "/v2/{}/tags/list?n={PAGE_SIZE}",
            self.image.repository
        ));
        let what = format!("repository {}", self.image.repository);
        for _ in 0..MAX_PAGES {
            let Some(path) = next.take() else { break };
            let (headers, body) = self.get_json(&path, "application/json", &what).await?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|_| self.err_other("the tags list is not the registry's JSON"))?;
            out.extend(page.tags.unwrap_or_default());
            next = headers
                .get_all(header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link);
        }
        Ok(out)
    }

    /// The manifest of `reference` (a tag or digest): its digest and JSON.
    async fn manifest(
        &self,
        reference: &str,
    ) -> Result<(Option<String>, serde_json::Value), RegistryError> {
        let path = format!("/v2/{}/manifests/{reference}", self.image.repository);
        let what = format!("{}:{reference}", self.image.name());
        let (headers, body) = self.get_json(&path, MANIFEST_ACCEPT, &what).await?;
        let digest = headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let json = serde_json::from_slice(&body)
            .map_err(|_| self.err_other(format!("the manifest of {what} is not JSON")))?;
        Ok((digest, json))
    }

    /// Whether `tag` exists, with its digest: a pull is planned only for a tag the registry has.
    pub async fn digest(&self, tag: &str) -> Result<Option<String>, RegistryError> {
        Ok(self.manifest(tag).await?.0)
    }

    /// A tag's digest, creation date (from the image config) and compressed size. `arch` picks
    /// the platform of a manifest list (the engine's).
    pub async fn describe(&self, tag: &str, arch: &str) -> Result<RemoteTag, RegistryError> {
        let (digest, mut manifest) = self.manifest(tag).await?;
        if let Some(list) = manifest.get("manifests").and_then(|m| m.as_array()) {
            let pick = list
                .iter()
                .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch)
                .or_else(|| list.first())
                .and_then(|m| m["digest"].as_str())
                .map(String::from);
            let Some(pick) = pick else {
                return Ok(RemoteTag {
                    tag: tag.into(),
                    digest,
                    created: None,
                    size: None,
                });
            };
            manifest = self.manifest(&pick).await?.1;
        }
        let size = manifest["layers"]
            .as_array()
            .map(|l| l.iter().filter_map(|x| x["size"].as_u64()).sum());
        let created = match manifest["config"]["digest"].as_str() {
            Some(config) => {
                let path = format!("/v2/{}/blobs/{config}", self.image.repository);
                let (_, body) = self
                    .get_json(&path, "application/json, */*", "the image config")
                    .await?;
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|c| c["created"].as_str().map(String::from))
                    .and_then(|c| DateTime::parse_from_rfc3339(&c).ok())
                    .map(|c| c.with_timezone(&Utc))
            }
            None => None,
        };
        Ok(RemoteTag {
            tag: tag.into(),
            digest,
            created,
            size,
        })
    }
}

/// The repository's tags with digests and dates for the last [`DETAILED_TAGS`] listed, newest
/// first where a date is known, then the rest in the registry's order reversed.
pub async fn list_tags(client: &RegistryClient, arch: &str) -> Result<Listing, RegistryError> {
    let names = client.tags().await?;
    let total = names.len();
    let detailed = names.len().saturating_sub(DETAILED_TAGS);
    // Owned names in boxed futures: a closure over borrowed ones is not `Send` for every
    // lifetime, which a spawned task needs.
    let lookups: Vec<futures::future::BoxFuture<'_, (usize, RemoteTag)>> = names
        .iter()
        .enumerate()
        .skip(detailed)
        .map(|(i, t)| {
            let t = t.clone();
            Box::pin(async move {
                let d = client.describe(&t, arch).await.unwrap_or(RemoteTag {
                    tag: t.clone(),
                    digest: None,
                    created: None,
                    size: None,
                });
                (i, d)
            }) as futures::future::BoxFuture<'_, _>
        })
        .collect();
    let mut described: Vec<(usize, RemoteTag)> = futures::stream::iter(lookups)
        .buffer_unordered(DETAIL_PARALLEL)
        .collect()
        .await;
    described.extend(names[..detailed].iter().enumerate().map(|(i, t)| {
        (
            i,
            RemoteTag {
                tag: t.clone(),
                digest: None,
                created: None,
                size: None,
            },
        )
    }));
    described.sort_by(|(ia, a), (ib, b)| b.created.cmp(&a.created).then(ib.cmp(ia)));
    Ok(Listing {
        registry: client.image.registry.clone(),
        repository: client.image.repository.clone(),
        tags: described.into_iter().map(|(_, t)| t).collect(),
        total,
    })
}

/// A URL's origin (scheme, host, port): what the registry's login is bound to.
fn origin(url: &str) -> Option<(String, String, u16)> {
    let u = reqwest::Url::parse(url).ok()?;
    Some((
        u.scheme().to_string(),
        u.host_str()?.to_ascii_lowercase(),
        u.port_or_known_default()?,
    ))
}

fn is_loopback_url(url: &reqwest::Url) -> bool {
    url.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// `Bearer realm="…",service="…",scope="a,b"` → (`Bearer`, [(realm, …), …]); quoted values may
/// hold commas.
pub(crate) fn parse_challenge(h: &str) -> (String, Vec<(String, String)>) {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    (scheme.to_string(), params)
}

/// The URL of `Link: </v2/…?last=x&n=100>; rel="next"`.
pub(crate) fn next_link(v: &str) -> Option<String> {
    v.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim().trim_start_matches("rel=").trim_matches('"') == "next")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// A registry error body (`{"errors":[{"code","message"}]}`) in one line, else the status.
pub(crate) fn error_reason(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let status = format!("HTTP {}", status.as_u16());
    match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|i| format!("{}: {}", i.code, i.message))
                .collect();
            format!("{status} {}", parts.join("; "))
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let line = text.lines().next().unwrap_or_default().trim();
            if line.is_empty() {
                status
            } else {
                format!("{status} {}", line.chars().take(160).collect::<String>())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(
            p,
            vec![
                ("realm".into(), "https://auth.docker.io/token".into()),
                ("service".into(), "registry.docker.io".into()),
                ("scope".into(), "repository:library/nginx:pull,push".into()),
            ]
        );
        let (s, p) = parse_challenge(r#"Basic realm="basic-realm""#);
        assert_eq!((s.as_str(), p.len()), ("Basic", 1));
        let (_, p) = parse_challenge("Bearer realm=x, service=y");
        assert_eq!(p[1], ("service".into(), "y".into()));
    }

    #[test]
    fn links_and_errors() {
        assert_eq!(
            next_link(r#"</v2/app/tags/list?last=v9&n=100>; rel="next""#).as_deref(),
            Some("/v2/app/tags/list?last=v9&n=100")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(
            error_reason(
                StatusCode::NOT_FOUND,
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]}"#
            ),
            "HTTP 404 MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(error_reason(StatusCode::BAD_GATEWAY, b""), "HTTP 502");
    }

    /// A loopback HTTP server that answers every request with `answer(request head)` and keeps
    /// the heads it was sent. A TLS hello (the https try of a loopback registry) is closed at once.
    async fn server(
        answer: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (kept, answer) = (seen.clone(), std::sync::Arc::new(answer));
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (kept, answer) = (kept.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                        if head.first() == Some(&0x16) {
                            return;
                        }
                    }
                    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    let reply = answer(&head);
                    kept.lock().unwrap().push(head);
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        });
        (port, seen)
    }

    fn reply(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
            body.len()
        )
    }

    fn client(port: u16) -> RegistryClient {
        RegistryClient::new(
            ImageRef::parse(&format!("127.0.0.1:{port}/app:v1")).unwrap(),
            Some(Credentials {
                username: "ana".into(),
                secret: "PLANTED-REGISTRY-SECRET".into(),
                source: "a test".into(),
            }),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_link_to_another_host_gets_no_credentials() {
        // Another origin (a port of its own) that would take a login if it were sent one.
        let (other, other_seen) = server(|head| {
            if head.contains("authorization:") {
                reply("200 OK", "", r#"{"tags":["stolen"]}"#)
            } else {
                reply(
                    "401 Unauthorized",
                    "www-authenticate: Basic realm=\"other\"\r\n",
                    "{}",
                )
            }
        })
        .await;
        let (registry, registry_seen) = server(move |head| {
            if head.contains("authorization: basic") {
                reply(
                    "200 OK",
                    &format!("link: <http://127.0.0.1:{other}/v2/app/tags/list?last=v1&n=100>; rel=\"next\"\r\n"),
                    r#"{"tags":["v1"]}"#,
                )
            } else {
                reply("401 Unauthorized", "www-authenticate: Basic realm=\"registry\"\r\n", "{}")
            }
        })
        .await;
        let res = client(registry).tags().await;
        assert!(
            res.is_err(),
            "the other host's page cannot be read without the login: {res:?}"
        );
        let registry_seen = registry_seen.lock().unwrap().clone();
        assert!(
            registry_seen
                .iter()
                .any(|h| h.contains("authorization: basic")),
            "the registry that challenged got the login: {registry_seen:?}"
        );
        let other_seen = other_seen.lock().unwrap().clone();
        assert!(!other_seen.is_empty(), "the link was followed");
        assert!(
            other_seen.iter().all(|h| !h.contains("authorization")),
            "another host got credentials: {other_seen:?}"
        );
    }

    #[tokio::test]
    async fn a_token_realm_over_plain_http_gets_no_login() {
        // The realm names a host that is not this machine, over http: refused before any request.
        let (registry, _) = server(|_| {
            reply(
                "401 Unauthorized",
                "www-authenticate: Bearer realm=\"http://auth.registry.invalid/token\",service=\"r\"\r\n",
                "{}",
            )
        })
        .await;
        let err = client(registry).tags().await.unwrap_err().to_string();
        assert!(err.contains("is not https"), "{err}");
        assert!(!err.contains("PLANTED"), "{err}");
    }
}
