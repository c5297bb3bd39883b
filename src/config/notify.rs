//! `[[notify]]` entries: where berth tells the team about runbook runs (Discord, Slack or any
//! webhook taking JSON). Each field is checked while the file is read, so a bad entry is one line
//! naming the entry and the line to fix. A webhook URL is a secret: it is never shown in clear.

use serde::{Deserialize, Deserializer, de};

/// The action names an entry's `events` may list: every runbook action's audit name.
/// (`deploy` is the roll forward; a test in `notify` checks every runbook action is here.)
pub const EVENTS: &[&str] = &[
    "restart",
    "start",
    "stop",
    "kill",
    "rm",
    "migrate",
    "rollback",
    "rollback-recover",
    "deploy",
    "prune",
    "backup",
    "restore",
    "scale",
    "drain",
    "activate",
];

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifyEntry {
    pub kind: NotifyKind,
    pub url: WebhookUrl,
    /// Action names to post about (default: every action).
    #[serde(default)]
    pub events: Option<Vec<EventName>>,
    /// Server names to post about (default: every server).
    #[serde(default)]
    pub servers: Option<Vec<String>>,
}

impl NotifyEntry {
    /// Whether a run of `action` on `server` is posted to this entry.
    pub fn wants(&self, action: &str, server: &str) -> bool {
        let action_ok = self
            .events
            .as_ref()
            .is_none_or(|e| e.iter().any(|n| n.0 == action));
        let server_ok = self
            .servers
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n == server));
        action_ok && server_ok
    }
}

/// What the receiver expects: Discord's and Slack's webhook bodies, or berth's own JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    Discord,
    Slack,
    Generic,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Discord => "discord",
            NotifyKind::Slack => "slack",
            NotifyKind::Generic => "generic",
        }
    }
}

impl<'de> Deserialize<'de> for NotifyKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "discord" => Ok(NotifyKind::Discord),
            "slack" => Ok(NotifyKind::Slack),
            "generic" => Ok(NotifyKind::Generic),
            other => Err(de::Error::custom(format!(
                "[[notify]] kind {:?} is unknown: use \"discord\", \"slack\" or \"generic\"",
                crate::format::printable(other)
            ))),
        }
    }
}

/// An http(s) webhook address. `Debug` and [`WebhookUrl::masked`] show only scheme and host: the
/// path (and any user or query) is the secret that lets anyone post.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        let text = text.trim();
        if !text.contains("://") {
            return Err(
                "[[notify]] url has no scheme: give the webhook's full address, https://…".into(),
            );
        }
        let uri: http::Uri = text.parse().map_err(|_| {
            "[[notify]] url is not a URL: give the webhook's full address, https://…".to_string()
        })?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            Some(other) => {
                return Err(format!(
                    "[[notify]] url uses {:?}: only http:// and https:// webhooks are posted to",
                    crate::format::printable(other)
                ));
            }
            None => {
                return Err(
                    "[[notify]] url has no scheme: give the webhook's full address, https://…"
                        .into(),
                );
            }
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(
                "[[notify]] url has no host: give the webhook's full address, https://…".into(),
            );
        }
        Ok(WebhookUrl(text.to_string()))
    }

    /// The address to post to. Only the HTTP client should see this.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// `https://discord.com/…`: scheme, host and port, never the path, user or query.
    pub fn masked(&self) -> String {
        match self.0.parse::<http::Uri>() {
            Ok(uri) => {
                let host = uri.host().unwrap_or("?");
                let port = uri.port_u16().map(|p| format!(":{p}")).unwrap_or_default();
                format!(
                    "{}://{}{port}/…",
                    uri.scheme_str().unwrap_or("?"),
                    crate::format::printable(host)
                )
            }
            Err(_) => "(webhook)".into(),
        }
    }
}

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookUrl({})", self.masked())
    }
}

impl<'de> Deserialize<'de> for WebhookUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        WebhookUrl::parse(&text).map_err(de::Error::custom)
    }
}

/// One of [`EVENTS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventName(pub String);

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if EVENTS.contains(&text.as_str()) {
            Ok(EventName(text))
        } else {
            Err(de::Error::custom(format!(
                "[[notify]] events: {:?} is not an action; use any of {}",
                crate::format::printable(&text),
                EVENTS.join(", ")
            )))
        }
    }
}

/// Which `[[notify]]` entry (1-based) a line of the file falls in, to name it in an error.
pub fn entry_at_line(text: &str, line: usize) -> Option<usize> {
    let mut entry = None;
    let mut n = 0;
    for raw in text.lines().take(line) {
        let l = raw.trim();
        if l.starts_with("[[notify]]") {
            n += 1;
            entry = Some(n);
        } else if l.starts_with('[') {
            entry = None;
        }
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<crate::config::Config, String> {
        crate::config::file::parse(text, Path::new("c.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn entries_parse_with_filters() {
        let c = parse(
            "[[notify]]\nkind = \"discord\"\nurl = \"https://discord.example/api/webhooks/1/SECRET\"\nevents = [\"rollback\", \"deploy\"]\n\n[[notify]]\nkind = \"generic\"\nurl = \"http://127.0.0.1:9/hook\"\nservers = [\"prod\"]\n",
        )
        .unwrap();
        assert_eq!(c.notify.len(), 2);
        let d = &c.notify[0];
        assert_eq!(d.kind, NotifyKind::Discord);
        assert!(d.wants("rollback", "anything") && !d.wants("restart", "prod"));
        assert!(c.notify[1].wants("restart", "prod") && !c.notify[1].wants("restart", "staging"));
        assert_eq!(d.url.masked(), "https://discord.example/…");
        assert_eq!(c.notify[1].url.masked(), "http://127.0.0.1:9/…");
        assert!(!format!("{c:?}").contains("SECRET"), "Debug masks the URL");
    }

    #[test]
    fn bad_entries_name_the_entry_and_line() {
        let text = "[[notify]]\nkind = \"slack\"\nurl = \"https://hooks.example/a\"\n\n[[notify]]\nkind = \"slack\"\nurl = \"hooks.example/SECRET\"\n";
        let e = parse(text).unwrap_err();
        assert!(
            e.starts_with("config c.toml:7:")
                && e.contains("[[notify]] entry 2: url has no scheme")
                && !e.contains("SECRET"),
            "{e}"
        );
        let e = parse("[[notify]]\nkind = \"slack\"\nurl = \"ftp://h/x\"\n").unwrap_err();
        assert!(e.contains("entry 1: url uses \"ftp\""), "{e}");
        let e = parse("[[notify]]\nkind = \"slack\"\nurl = \"https://bad host/x\"\n").unwrap_err();
        assert!(e.contains("url is not a URL"), "{e}");
        let e = parse("[[notify]]\nkind = \"teams\"\nurl = \"https://h/x\"\n").unwrap_err();
        assert!(
            e.starts_with("config c.toml:2:") && e.contains("kind \"teams\" is unknown"),
            "{e}"
        );
        let e = parse("[[notify]]\nkind = \"slack\"\nurl = \"https://h/x\"\nevents = [\"rollback\", \"reboot\"]\n")
            .unwrap_err();
        assert!(
            e.starts_with("config c.toml:4:") && e.contains("\"reboot\" is not an action"),
            "{e}"
        );
        let e = parse("[[notify]]\nkind = \"slack\"\n").unwrap_err();
        assert!(e.contains("url"), "{e}");
    }

    #[test]
    fn entry_lines() {
        let text = "[logs]\ntail = 1\n[[notify]]\nkind = \"x\"\n[[notify]]\nurl = 1\n[stats]\n";
        assert_eq!(entry_at_line(text, 2), None);
        assert_eq!(entry_at_line(text, 4), Some(1));
        assert_eq!(entry_at_line(text, 6), Some(2));
        assert_eq!(entry_at_line(text, 7), None);
    }
}
