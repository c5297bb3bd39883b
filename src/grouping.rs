//! The container list as the user sees it: grouped by compose project (standalone containers
//! last), sorted, filtered. Domain code the console and `berth ps` share.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use regex::Regex;

use crate::engine::model::{Container, Health, State};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    State,
    Uptime,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Name => SortKey::State,
            SortKey::State => SortKey::Uptime,
            SortKey::Uptime => SortKey::Name,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::State => "state",
            SortKey::Uptime => "uptime",
        }
    }
    pub fn parse(s: &str) -> Option<SortKey> {
        match s {
            "name" => Some(SortKey::Name),
            "state" | "status" => Some(SortKey::State),
            "uptime" | "age" => Some(SortKey::Uptime),
            _ => None,
        }
    }
}

/// The list's filter: a substring, or a regex when written `~pattern`.
#[derive(Debug, Clone)]
pub enum Filter {
    Text(String),
    Regex(Regex),
}

impl Filter {
    pub fn parse(text: &str) -> Result<Option<Filter>, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        if let Some(pattern) = text.strip_prefix('~').or_else(|| text.strip_prefix("re:")) {
            return regex::RegexBuilder::new(pattern)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map(|r| Some(Filter::Regex(r)))
                .map_err(|e| {
                    format!(
                        "bad regex: {}",
                        e.to_string().lines().last().unwrap_or("invalid")
                    )
                });
        }
        Ok(Some(Filter::Text(text.to_lowercase())))
    }

    pub fn matches(&self, c: &Container) -> bool {
        let fields = [
            c.name.as_str(),
            c.image.as_str(),
            c.service.as_deref().unwrap_or(""),
            c.project.as_deref().unwrap_or(""),
        ];
        match self {
            Filter::Text(t) => {
                fields.iter().any(|f| f.to_lowercase().contains(t)) || is_id_prefix(t, &c.id)
            }
            Filter::Regex(r) => fields.iter().any(|f| r.is_match(f)),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Filter::Text(t) => t.clone(),
            Filter::Regex(r) => format!("~{}", r.as_str()),
        }
    }
}

/// An alert or a log names a container by its ID: a filter of 6 or more hex digits also finds the
/// container whose ID starts with them, as `docker ps -f id=` does (fewer would match half the
/// list by chance).
fn is_id_prefix(text: &str, id: &str) -> bool {
    text.len() >= 6 && text.chars().all(|ch| ch.is_ascii_hexdigit()) && id.starts_with(text)
}

pub const STANDALONE: &str = "standalone";

/// Containers grouped by compose project (standalone ones last), each group sorted by `sort`.
pub fn grouped<'a>(
    containers: impl Iterator<Item = &'a Container>,
    sort: SortKey,
    now: DateTime<Utc>,
) -> Vec<(String, Vec<&'a Container>)> {
    let mut groups: BTreeMap<String, Vec<&Container>> = BTreeMap::new();
    for c in containers {
        groups.entry(group_key(c)).or_default().push(c);
    }
    let mut out: Vec<(String, Vec<&Container>)> = groups.into_iter().collect();
    // Compose projects are what the on-call engineer looks for; standalone containers go last.
    out.sort_by_key(|(k, _)| (k == STANDALONE, k.clone()));
    for (_, members) in out.iter_mut() {
        sort_members(members, sort, now);
    }
    out
}

pub fn group_key(c: &Container) -> String {
    c.project.clone().unwrap_or_else(|| STANDALONE.to_string())
}

fn sort_members(members: &mut [&Container], key: SortKey, now: DateTime<Utc>) {
    let by_name = |c: &Container| {
        (
            c.service.clone().unwrap_or_default(),
            c.number.unwrap_or(0),
            c.name.clone(),
        )
    };
    match key {
        SortKey::Name => members.sort_by_key(|c| by_name(c)),
        SortKey::State => members.sort_by_key(|c| {
            // Trouble first: unhealthy, then restarting / dead / exited, then the rest.
            let rank = match (c.current_health(), c.state) {
                // A kept container is history, never trouble.
                _ if c.is_kept() => 5,
                (Health::Unhealthy, _) => 0,
                (_, State::Restarting | State::Dead) => 1,
                (_, State::Exited | State::Created) => 2,
                (Health::Starting, _) => 3,
                _ => 4,
            };
            (rank, by_name(c))
        }),
        SortKey::Uptime => members.sort_by_key(|c| {
            let up = if c.state.is_up() {
                c.started_at
                    .map(|s| (now - s).num_seconds())
                    .unwrap_or(i64::MAX)
            } else {
                i64::MAX
            };
            (up, by_name(c))
        }),
    }
}
