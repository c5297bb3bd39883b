//! The subset of `~/.ssh/config` berth honours, with OpenSSH's rules: `Host` patterns with `*`, `?`
//! and `!`, the first value obtained for an option wins, `Include` (globs, relative to `~/.ssh`).

use std::path::{Path, PathBuf};

/// Options for one host, as OpenSSH would apply them. `None` means "not set": the caller's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostConfig {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<String>,
    pub identities_only: Option<bool>,
    pub proxy_jump: Option<String>,
    pub user_known_hosts_files: Option<Vec<String>>,
    pub strict_host_key_checking: Option<String>,
    pub server_alive_interval: Option<u64>,
    pub server_alive_count_max: Option<u32>,
    pub connect_timeout: Option<u64>,
    pub identity_agent: Option<String>,
    pub hash_known_hosts: Option<bool>,
}

/// Reads `path` (if it exists) and returns what applies to `alias`.
pub fn for_host(path: &Path, alias: &str, home: &Path) -> HostConfig {
    let mut out = HostConfig::default();
    let mut identity_seen = false;
    read_file(path, alias, home, &mut out, &mut identity_seen, 0);
    out
}

fn read_file(
    path: &Path,
    alias: &str,
    home: &Path,
    out: &mut HostConfig,
    ids: &mut bool,
    depth: usize,
) {
    if depth > 8 {
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    // Before the first Host line, options apply to every host.
    let mut active = true;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = split_kv(line);
        let key = key.to_ascii_lowercase();
        match key.as_str() {
            "host" => active = host_matches(&value, alias),
            // Match blocks are beyond this subset: never apply them rather than apply them wrongly.
            "match" => active = value.trim().eq_ignore_ascii_case("all"),
            "include" if active => {
                for pattern in value.split_whitespace() {
                    let p = expand_home(pattern, home);
                    let p = if p.is_absolute() {
                        p
                    } else {
                        home.join(".ssh").join(p)
                    };
                    for file in glob(&p) {
                        read_file(&file, alias, home, out, ids, depth + 1);
                    }
                }
            }
            _ if active => apply(&key, unquote(&value), out, ids),
            _ => {}
        }
    }
}

/// The concrete host aliases of a config (`Host` names without `*`, `?` or `!`), in file order,
/// following `Include` as `for_host` does; `ssh_dir` is where relative includes start
/// (`~/.ssh` for the user's config).
pub fn hosts(path: &Path, ssh_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    read_hosts(path, ssh_dir, &mut out, 0);
    out
}

fn read_hosts(path: &Path, ssh_dir: &Path, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let home = ssh_dir.parent().unwrap_or(ssh_dir);
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = split_kv(line);
        if key.eq_ignore_ascii_case("host") {
            for h in value.split_whitespace() {
                if !h.contains(['*', '?', '!']) && !out.iter().any(|o| o == h) {
                    out.push(h.to_string());
                }
            }
        } else if key.eq_ignore_ascii_case("include") {
            for pattern in value.split_whitespace() {
                let p = expand_home(pattern, home);
                let p = if p.is_absolute() { p } else { ssh_dir.join(p) };
                for file in glob(&p) {
                    read_hosts(&file, ssh_dir, out, depth + 1);
                }
            }
        }
    }
}

fn apply(key: &str, value: String, out: &mut HostConfig, ids: &mut bool) {
    fn first<T>(slot: &mut Option<T>, v: Option<T>) {
        if slot.is_none() {
            *slot = v;
        }
    }
    let yes = |v: &str| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true");
    match key {
        "hostname" => first(&mut out.host_name, Some(value)),
        "user" => first(&mut out.user, Some(value)),
        "port" => first(&mut out.port, value.parse().ok()),
        // IdentityFile accumulates across matching blocks, as in OpenSSH.
        "identityfile" => {
            *ids = true;
            if !out.identity_files.contains(&value) {
                out.identity_files.push(value)
            }
        }
        "identitiesonly" => first(&mut out.identities_only, Some(yes(&value))),
        "proxyjump" => first(&mut out.proxy_jump, Some(value)),
        "userknownhostsfile" => first(
            &mut out.user_known_hosts_files,
            Some(value.split_whitespace().map(str::to_string).collect()),
        ),
        "stricthostkeychecking" => first(
            &mut out.strict_host_key_checking,
            Some(value.to_ascii_lowercase()),
        ),
        "serveraliveinterval" => first(&mut out.server_alive_interval, value.parse().ok()),
        "serveralivecountmax" => first(&mut out.server_alive_count_max, value.parse().ok()),
        "connecttimeout" => first(&mut out.connect_timeout, value.parse().ok()),
        "identityagent" => first(&mut out.identity_agent, Some(value)),
        "hashknownhosts" => first(&mut out.hash_known_hosts, Some(yes(&value))),
        _ => {}
    }
}

fn split_kv(line: &str) -> (String, String) {
    match line.split_once(|c: char| c.is_whitespace() || c == '=') {
        Some((k, r)) => (
            k.to_string(),
            r.trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                .trim()
                .to_string(),
        ),
        None => (line.to_string(), String::new()),
    }
}

fn unquote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
        .to_string()
}

/// A `Host` line matches when one pattern matches and no negated pattern does.
pub fn host_matches(patterns: &str, host: &str) -> bool {
    let mut matched = false;
    for p in patterns.split([' ', '\t', ',']).filter(|p| !p.is_empty()) {
        if let Some(neg) = p.strip_prefix('!') {
            if wildcard(neg, host) {
                return false;
            }
        } else if wildcard(p, host) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` glob, case-insensitive (host names are).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

pub fn expand_home(p: &str, home: &Path) -> PathBuf {
    if p == "~" {
        return home.to_path_buf();
    }
    match p.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(p),
    }
}

/// Expands the `%` tokens OpenSSH allows in IdentityFile and UserKnownHostsFile.
pub fn expand_tokens(
    p: &str,
    home: &Path,
    host: &str,
    user: &str,
    port: u16,
    alias: &str,
) -> PathBuf {
    let mut s = String::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            s.push(c);
            continue;
        }
        match chars.next() {
            Some('h') => s.push_str(host),
            Some('r') => s.push_str(user),
            Some('p') => s.push_str(&port.to_string()),
            Some('n') => s.push_str(alias),
            Some('d') => s.push_str(&home.display().to_string()),
            Some('%') => s.push('%'),
            Some(o) => {
                s.push('%');
                s.push(o)
            }
            None => s.push('%'),
        }
    }
    expand_home(&s, home)
}

/// `*` and `?` in the last path component.
fn glob(p: &Path) -> Vec<PathBuf> {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return vec![];
    };
    if !name.contains(['*', '?']) {
        return vec![p.to_path_buf()];
    }
    let dir = p.parent().unwrap_or(Path::new("."));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| wildcard(name, n))
        })
        .collect();
    files.sort();
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(wildcard("*.corp", "a.corp"));
        assert!(wildcard("web?", "web1"));
        assert!(!wildcard("web?", "web12"));
        assert!(wildcard("*", "anything"));
        assert!(host_matches("web* !web3", "web1"));
        assert!(!host_matches("web* !web3", "web3"));
        assert!(
            !host_matches("!web3", "web1"),
            "a negation alone matches nothing"
        );
    }

    #[test]
    fn first_match_wins_and_include() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::create_dir_all(home.join(".ssh/conf.d")).unwrap();
        std::fs::write(
            home.join(".ssh/config"),
            "Include conf.d/*.conf\n\
             Host prod\n  HostName 10.0.0.1\n  User deploy\n  IdentityFile ~/.ssh/prod_key\n\
             Host *\n  User nobody\n  Port 2222\n  IdentityFile ~/.ssh/id_all\n  StrictHostKeyChecking yes\n\
             Host other\n  HostName never\n",
        )
        .unwrap();
        std::fs::write(
            home.join(".ssh/conf.d/a.conf"),
            "Host prod\n  Port=2200\n  ProxyJump bastion\n",
        )
        .unwrap();
        let c = for_host(&home.join(".ssh/config"), "prod", home);
        assert_eq!(c.host_name.as_deref(), Some("10.0.0.1"));
        assert_eq!(c.user.as_deref(), Some("deploy"));
        assert_eq!(c.port, Some(2200), "the included file comes first");
        assert_eq!(c.proxy_jump.as_deref(), Some("bastion"));
        assert_eq!(c.identity_files, vec!["~/.ssh/prod_key", "~/.ssh/id_all"]);
        assert_eq!(c.strict_host_key_checking.as_deref(), Some("yes"));
        let o = for_host(&home.join(".ssh/config"), "other", home);
        assert_eq!(o.host_name.as_deref(), Some("never"));
        assert_eq!(o.port, Some(2222), "Host * came first");
        let o = for_host(&home.join(".ssh/config"), "x", home);
        assert_eq!(o.user.as_deref(), Some("nobody"));
        assert_eq!(
            expand_tokens("~/.ssh/%r@%h:%p", home, "h", "u", 22, "a"),
            home.join(".ssh/u@h:22")
        );
    }
}
