//! The ssh client configuration, read as OpenSSH (9.x) reads it, so that `berth -s HOST` goes where
//! `ssh HOST` goes: the user's file then the system-wide one, `Host` and `Match` blocks (`host`,
//! `originalhost`, `user`, `localuser`, `all`, `final`, `canonical`, `exec` run through the shell),
//! the first value obtained for an option wins, `Include` with globs and relative paths, the `%`
//! tokens and `~`, a second pass when a `Match final` asks for one. `ssh -G` is the oracle in the tests
//! (tests/ssh_config_parity.rs); a crate covering `Match exec` and the tokens faithfully does not exist.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// OpenSSH stops at this include depth: an `Include` loop ends here with an error.
const MAX_INCLUDE_DEPTH: usize = 16;
/// ssh waits for a `Match exec` command forever; berth bounds it so a console never hangs on it.
const MATCH_EXEC_LIMIT: Duration = Duration::from_secs(15);

/// The identity files ssh tries when no `IdentityFile` applies, in its order.
pub const DEFAULT_IDENTITY_FILES: [&str; 7] = [
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];

/// A configuration ssh itself would refuse, or a step berth could not take: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", place.as_ref().map(|(f, l)| format!("{} line {l}: ", f.display())).unwrap_or_default())]
pub struct ConfigError {
    pub place: Option<(PathBuf, usize)>,
    pub message: String,
}

impl ConfigError {
    fn at(file: &Path, line: usize, message: impl Into<String>) -> Self {
        ConfigError {
            place: Some((file.to_path_buf(), line)),
            message: message.into(),
        }
    }
    fn plain(message: impl Into<String>) -> Self {
        ConfigError {
            place: None,
            message: message.into(),
        }
    }
}

/// What ssh's command line and the local machine give the resolution.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The host as typed (`%n`, what `Host` and `originalhost` match).
    pub host_arg: String,
    /// `-l` / `user@`: wins over the config.
    pub user: Option<String>,
    /// `-p` / `:port`: wins over the config.
    pub port: Option<u16>,
    /// `~/.ssh/config` (or `-F`); relative includes start in `<home>/.ssh`.
    pub user_config: Option<PathBuf>,
    /// `/etc/ssh/ssh_config`; relative includes start in its directory.
    pub system_config: Option<PathBuf>,
    pub home: PathBuf,
    pub local_user: String,
    pub uid: u32,
    pub local_host: String,
    /// Run `Match exec` commands; when false they do not match (for quick look-ups that must not
    /// run the user's commands, e.g. telling two server names apart).
    pub run_exec: bool,
}

impl Inputs {
    /// Inputs for this machine and user (home, user name, uid, host name).
    pub fn local(host_arg: &str, home: &Path) -> Inputs {
        Inputs {
            host_arg: host_arg.to_string(),
            user: None,
            port: None,
            user_config: Some(home.join(".ssh").join("config")),
            system_config: None,
            home: home.to_path_buf(),
            local_user: crate::account::os_user_name(),
            // SAFETY: getuid cannot fail and touches no memory of ours.
            uid: unsafe { libc::getuid() },
            local_host: local_host_name(),
            run_exec: true,
        }
    }
}

/// This machine's name, as `gethostname` gives it (`%l`, `%L` and `%C`).
pub fn local_host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is ours and its length is passed; gethostname NUL-terminates within it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The options ssh would use for one host. Strings are as `ssh -G` prints them: the known_hosts
/// files and the agent path expanded, the others raw (ssh expands them where it uses them; so do
/// the `expanded_*` methods).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub host_arg: String,
    pub hostname: String,
    pub user: String,
    pub port: u16,
    /// `IdentityFile` lines in order; empty when none applied (ssh then tries the default files).
    pub identity_files: Vec<String>,
    pub certificate_files: Vec<String>,
    pub identities_only: bool,
    /// `ProxyJump` hops in order, as written (`[user@]host[:port]` or `ssh://…`).
    pub proxy_jump: Vec<String>,
    /// `ProxyCommand` as written (before `%` expansion); never `none`.
    pub proxy_command: Option<String>,
    pub user_known_hosts: Vec<String>,
    pub global_known_hosts: Vec<String>,
    /// `true`, `false`, `ask` or `accept-new`.
    pub strict_host_key_checking: String,
    pub server_alive_interval: u64,
    pub server_alive_count_max: u32,
    pub connect_timeout: Option<u64>,
    /// `IdentityAgent` expanded (`none`, `SSH_AUTH_SOCK`, `$VAR` or a path); `None` when unset.
    pub identity_agent: Option<String>,
    pub hash_known_hosts: bool,
    /// Lowercased, as ssh keeps it.
    pub host_key_alias: Option<String>,
    /// Options that applied and that berth does not honour: `(keyword, value, file, line)`.
    pub unhonoured: Vec<Unhonoured>,
    tokens: Tokens,
}

/// An option that applies to the host and that berth cannot honour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unhonoured {
    /// As written in the file.
    pub keyword: String,
    pub value: String,
    pub file: PathBuf,
    pub line: usize,
}

impl Resolution {
    /// The lines `ssh -G` prints for the options berth uses, in one order, for comparing with it.
    pub fn g_lines(&self) -> Vec<String> {
        let mut out = vec![
            format!("user {}", self.user),
            format!("hostname {}", self.hostname),
            format!("port {}", self.port),
            format!("hashknownhosts {}", yes_no(self.hash_known_hosts)),
            format!("identitiesonly {}", yes_no(self.identities_only)),
            format!("stricthostkeychecking {}", self.strict_host_key_checking),
            format!("serveralivecountmax {}", self.server_alive_count_max),
            format!("serveraliveinterval {}", self.server_alive_interval),
        ];
        if let Some(a) = &self.host_key_alias {
            out.push(format!("hostkeyalias {a}"));
        }
        if let Some(a) = &self.identity_agent {
            out.push(format!("identityagent {a}"));
        }
        let ids: Vec<&str> = if self.identity_files.is_empty() {
            DEFAULT_IDENTITY_FILES.to_vec()
        } else {
            self.identity_files.iter().map(String::as_str).collect()
        };
        out.extend(ids.iter().map(|f| format!("identityfile {f}")));
        out.extend(
            self.certificate_files
                .iter()
                .map(|f| format!("certificatefile {f}")),
        );
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(" ")
            }
        };
        out.push(format!(
            "globalknownhostsfile {}",
            list(&self.global_known_hosts)
        ));
        out.push(format!(
            "userknownhostsfile {}",
            list(&self.user_known_hosts)
        ));
        out.push(format!(
            "connecttimeout {}",
            self.connect_timeout
                .map(|t| t.to_string())
                .unwrap_or_else(|| "none".into())
        ));
        if !self.proxy_jump.is_empty() {
            out.push(format!("proxyjump {}", self.proxy_jump.join(",")));
        }
        if let Some(c) = &self.proxy_command {
            out.push(format!("proxycommand {c}"));
        }
        out
    }

    /// A path option with `~`, `%` tokens and `${VAR}` expanded, as ssh expands identity,
    /// certificate and known_hosts files.
    pub fn expand_path(&self, raw: &str) -> Result<PathBuf, ConfigError> {
        let s = self
            .tokens
            .expand(&expand_home_str(raw, &self.tokens.home), ALL_TOKENS)?;
        Ok(PathBuf::from(dollar_expand(&s)?))
    }

    /// The `ProxyCommand` as ssh runs it: `exec ` before it, `%h %k %n %p %r` expanded.
    pub fn proxy_command_line(&self) -> Result<Option<String>, ConfigError> {
        let Some(cmd) = &self.proxy_command else {
            return Ok(None);
        };
        let mut t = self.tokens.clone();
        t.key_alias = self.host_key_alias.clone().unwrap_or(self.host_arg.clone());
        let line = t
            .expand(&format!("exec {cmd}"), &['h', 'k', 'n', 'p', 'r'])
            .map_err(|e| ConfigError::plain(format!("ProxyCommand: {}", e.message)))?;
        Ok(Some(line))
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The values the `%` tokens stand for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Tokens {
    host: String,
    host_arg: String,
    port: String,
    remote_user: String,
    local_user: String,
    home: PathBuf,
    local_host: String,
    uid: String,
    key_alias: String,
}

const ALL_TOKENS: &[char] = &['C', 'L', 'i', 'k', 'l', 'n', 'p', 'd', 'h', 'r', 'u'];

impl Tokens {
    fn conn_hash(&self) -> String {
        use sha1::Digest;
        let mut h = sha1::Sha1::new();
        for part in [&self.local_host, &self.host, &self.port, &self.remote_user] {
            h.update(part.as_bytes());
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Expands `%x` for the tokens in `allowed` and `%%`; any other token is an error, as in ssh.
    fn expand(&self, s: &str, allowed: &[char]) -> Result<String, ConfigError> {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let Some(k) = chars.next() else {
                return Err(ConfigError::plain(format!(
                    "a lone '%' at the end of \"{s}\""
                )));
            };
            if k == '%' {
                out.push('%');
                continue;
            }
            if !allowed.contains(&k) {
                return Err(ConfigError::plain(format!(
                    "unknown token %{k} in \"{s}\" (write %% for a literal %)"
                )));
            }
            match k {
                'C' => out.push_str(&self.conn_hash()),
                'L' => out.push_str(self.local_host.split('.').next().unwrap_or("")),
                'i' => out.push_str(&self.uid),
                'k' => out.push_str(&self.key_alias),
                'l' => out.push_str(&self.local_host),
                'n' => out.push_str(&self.host_arg),
                'p' => out.push_str(&self.port),
                'd' => out.push_str(&self.home.display().to_string()),
                'h' => out.push_str(&self.host),
                'r' => out.push_str(&self.remote_user),
                'u' => out.push_str(&self.local_user),
                _ => unreachable!("checked against `allowed`"),
            }
        }
        Ok(out)
    }
}

/// `${NAME}` replaced by the environment variable, as ssh does in paths; an unset one is an error.
fn dollar_expand(s: &str) -> Result<String, ConfigError> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            return Err(ConfigError::plain(format!("unterminated ${{ in \"{s}\"")));
        };
        let name = &after[..end];
        match std::env::var(name) {
            Ok(v) => out.push_str(&v),
            Err(_) => {
                return Err(ConfigError::plain(format!(
                    "environment variable ${{{name}}} in \"{s}\" is not set"
                )));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Options as they are collected: `None` until the first value arrives.
#[derive(Debug, Default)]
struct Opts {
    hostname: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identity_files: Vec<String>,
    certificate_files: Vec<String>,
    identities_only: Option<bool>,
    proxy_command: Option<String>,
    /// `none`, or the hops.
    jump: Option<Vec<String>>,
    user_known_hosts: Option<Vec<String>>,
    global_known_hosts: Option<Vec<String>>,
    strict: Option<&'static str>,
    alive_interval: Option<u64>,
    alive_count: Option<u32>,
    /// `Some(None)`: `none`.
    connect_timeout: Option<Option<u64>>,
    identity_agent: Option<String>,
    hash_known_hosts: Option<bool>,
    host_key_alias: Option<String>,
    ignore_unknown: Option<String>,
    unhonoured: Vec<Unhonoured>,
}

/// Every keyword OpenSSH's client knows (9.x), including the deprecated and unsupported ones it
/// accepts without a word; anything else is an error, unless `IgnoreUnknown` covers it.
const KEYWORDS: &[&str] = &[
    "addkeystoagent",
    "addressfamily",
    "afstokenpassing",
    "batchmode",
    "bindaddress",
    "bindinterface",
    "canonicaldomains",
    "canonicalizefallbacklocal",
    "canonicalizehostname",
    "canonicalizemaxdots",
    "canonicalizepermittedcnames",
    "casignaturealgorithms",
    "certificatefile",
    "challengeresponseauthentication",
    "checkhostip",
    "cipher",
    "ciphers",
    "clearallforwardings",
    "compression",
    "compressionlevel",
    "connectionattempts",
    "connecttimeout",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "dsaauthentication",
    "dynamicforward",
    "enableescapecommandline",
    "enablesshkeysign",
    "escapechar",
    "exitonforwardfailure",
    "fallbacktorsh",
    "fingerprinthash",
    "forkafterauthentication",
    "forwardagent",
    "forwardx11",
    "forwardx11timeout",
    "forwardx11trusted",
    "gatewayports",
    "globalknownhostsfile",
    "globalknownhostsfile2",
    "gssapiauthentication",
    "gssapiclientidentity",
    "gssapidelegatecredentials",
    "gssapikexalgorithms",
    "gssapikeyexchange",
    "gssapirenewalforcesrekey",
    "gssapiserveridentity",
    "gssapitrustdns",
    "hashknownhosts",
    "host",
    "hostbasedacceptedalgorithms",
    "hostbasedauthentication",
    "hostbasedkeytypes",
    "hostkeyalgorithms",
    "hostkeyalias",
    "hostname",
    "identitiesonly",
    "identityagent",
    "identityfile",
    "identityfile2",
    "ignoreunknown",
    "include",
    "ipqos",
    "kbdinteractiveauthentication",
    "kbdinteractivedevices",
    "keepalive",
    "kerberosauthentication",
    "kerberostgtpassing",
    "kexalgorithms",
    "knownhostscommand",
    "localcommand",
    "localforward",
    "loglevel",
    "logverbose",
    "macs",
    "match",
    "nohostauthenticationforlocalhost",
    "numberofpasswordprompts",
    "obscurekeystroketiming",
    "passwordauthentication",
    "permitlocalcommand",
    "permitremoteopen",
    "pkcs11provider",
    "port",
    "preferredauthentications",
    "protocol",
    "protocolkeepalives",
    "proxycommand",
    "proxyjump",
    "proxyusefdpass",
    "pubkeyacceptedalgorithms",
    "pubkeyacceptedkeytypes",
    "pubkeyauthentication",
    "rekeylimit",
    "remotecommand",
    "remoteforward",
    "requesttty",
    "requiredrsasize",
    "revokedhostkeys",
    "rhostsauthentication",
    "rhostsrsaauthentication",
    "rsaauthentication",
    "securitykeyprovider",
    "sendenv",
    "serveralivecountmax",
    "serveraliveinterval",
    "sessiontype",
    "setenv",
    "setuptimeout",
    "skeyauthentication",
    "smartcarddevice",
    "stdinnull",
    "streamlocalbindmask",
    "streamlocalbindunlink",
    "stricthostkeychecking",
    "syslogfacility",
    "tcpkeepalive",
    "tisauthentication",
    "tunnel",
    "tunneldevice",
    "updatehostkeys",
    "useblacklistedkeys",
    "useprivilegedport",
    "user",
    "userknownhostsfile",
    "userknownhostsfile2",
    "useroaming",
    "usersh",
    "verifyhostkeydns",
    "visualhostkey",
    "xauthlocation",
];

/// Options that change how ssh connects or authenticates and that berth does not implement, with
/// the values that leave them inactive (berth says nothing then).
const UNHONOURED: &[(&str, &[&str])] = &[
    ("pkcs11provider", &["none"]),
    ("smartcarddevice", &["none"]),
    ("securitykeyprovider", &["internal"]),
    ("canonicalizehostname", &["no", "false"]),
    ("knownhostscommand", &["none"]),
    ("proxyusefdpass", &["no", "false"]),
    ("bindaddress", &[]),
    ("bindinterface", &[]),
    ("addressfamily", &["any"]),
    ("hostbasedauthentication", &["no", "false"]),
    ("certificatefile", &["none"]),
    ("ciphers", &[]),
    ("macs", &[]),
    ("kexalgorithms", &[]),
    ("hostkeyalgorithms", &[]),
    ("preferredauthentications", &[]),
    ("verifyhostkeydns", &["no", "false"]),
    ("revokedhostkeys", &["none"]),
];

/// Where a file's relative includes start, and whether ssh checks its permissions.
#[derive(Clone, Copy)]
struct FileKind {
    user: bool,
    never_match: bool,
}

struct Reader<'a> {
    inp: &'a Inputs,
    opts: Opts,
    /// What `Host` lines match: the host as typed, then (final pass) the resolved host name.
    host: String,
    final_pass: bool,
    want_final: bool,
}

/// Resolves `inputs.host_arg` as `ssh -G` would for the options berth uses.
pub fn resolve_host(inputs: &Inputs) -> Result<Resolution, ConfigError> {
    let mut r = Reader {
        inp: inputs,
        opts: Opts {
            user: inputs.user.clone(),
            port: inputs.port,
            ..Default::default()
        },
        host: inputs.host_arg.clone(),
        final_pass: false,
        want_final: false,
    };
    r.read_all()?;
    // The host name in use from here on: HostName with %h expanded, lowercased.
    let mut host = match &r.opts.hostname {
        Some(h) => expand_hostname(h, &inputs.host_arg)?,
        None => inputs.host_arg.clone(),
    };
    host = host.to_lowercase();
    if r.want_final {
        r.opts.hostname = Some(host.clone());
        r.host = host.clone();
        r.final_pass = true;
        r.read_all()?;
    }
    finish(r.opts, host, inputs)
}

fn expand_hostname(h: &str, host_arg: &str) -> Result<String, ConfigError> {
    let t = Tokens {
        host: host_arg.to_string(),
        ..Default::default()
    };
    t.expand(h, &['h'])
        .map_err(|e| ConfigError::plain(format!("HostName: {}", e.message)))
}

fn finish(o: Opts, host: String, inp: &Inputs) -> Result<Resolution, ConfigError> {
    let user = o.user.clone().unwrap_or_else(|| inp.local_user.clone());
    let port = o.port.unwrap_or(22);
    let host_key_alias = o.host_key_alias.as_ref().map(|a| a.to_lowercase());
    let tokens = Tokens {
        host: host.clone(),
        host_arg: inp.host_arg.clone(),
        port: port.to_string(),
        remote_user: user.clone(),
        local_user: inp.local_user.clone(),
        home: inp.home.clone(),
        local_host: inp.local_host.clone(),
        uid: inp.uid.to_string(),
        key_alias: host_key_alias.clone().unwrap_or_else(|| host.clone()),
    };
    let expand = |raw: &str, what: &str| -> Result<String, ConfigError> {
        let s = tokens
            .expand(&expand_home_str(raw, &inp.home), ALL_TOKENS)
            .and_then(|s| dollar_expand(&s))
            .map_err(|e| ConfigError::plain(format!("{what}: {}", e.message)))?;
        Ok(s)
    };
    let user_known_hosts = match o.user_known_hosts {
        None => vec![
            expand("~/.ssh/known_hosts", "UserKnownHostsFile")?,
            expand("~/.ssh/known_hosts2", "UserKnownHostsFile")?,
        ],
        Some(v) if v.len() == 1 && v[0].eq_ignore_ascii_case("none") => vec![],
        Some(v) => v
            .iter()
            .map(|f| expand(f, "UserKnownHostsFile"))
            .collect::<Result<_, _>>()?,
    };
    let global_known_hosts = match o.global_known_hosts {
        None => vec![
            "/etc/ssh/ssh_known_hosts".into(),
            "/etc/ssh/ssh_known_hosts2".into(),
        ],
        Some(v) if v.len() == 1 && v[0].eq_ignore_ascii_case("none") => vec![],
        Some(v) => v,
    };
    let identity_agent = match o.identity_agent {
        Some(a)
            if a == "none"
                || a == "SSH_AUTH_SOCK"
                || a.starts_with('$') && !a.starts_with("${") =>
        {
            Some(a)
        }
        Some(a) => Some(expand(&a, "IdentityAgent")?),
        None => None,
    };
    let proxy_jump = match o.jump {
        Some(h) if h.len() == 1 && h[0].eq_ignore_ascii_case("none") => vec![],
        Some(h) => h,
        None => vec![],
    };
    let proxy_command = o.proxy_command.filter(|c| c != "none");
    Ok(Resolution {
        host_arg: inp.host_arg.clone(),
        hostname: host,
        user,
        port,
        identity_files: o.identity_files,
        certificate_files: o.certificate_files,
        identities_only: o.identities_only.unwrap_or(false),
        proxy_jump,
        proxy_command,
        user_known_hosts,
        global_known_hosts,
        strict_host_key_checking: o.strict.unwrap_or("ask").to_string(),
        server_alive_interval: o.alive_interval.unwrap_or(0),
        server_alive_count_max: o.alive_count.unwrap_or(3),
        connect_timeout: o.connect_timeout.flatten(),
        identity_agent,
        hash_known_hosts: o.hash_known_hosts.unwrap_or(false),
        host_key_alias,
        unhonoured: o.unhonoured,
        tokens,
    })
}

impl Reader<'_> {
    fn read_all(&mut self) -> Result<(), ConfigError> {
        let kind = FileKind {
            user: true,
            never_match: false,
        };
        if let Some(p) = self.inp.user_config.clone() {
            let mut active = true;
            self.read_file(&p, kind, &mut active, 0, None)?;
        }
        if let Some(p) = self.inp.system_config.clone() {
            let mut active = true;
            let kind = FileKind {
                user: false,
                ..kind
            };
            self.read_file(&p, kind, &mut active, 0, None)?;
        }
        Ok(())
    }

    fn read_file(
        &mut self,
        path: &Path,
        kind: FileKind,
        active: &mut bool,
        depth: usize,
        from: Option<(&Path, usize)>,
    ) -> Result<(), ConfigError> {
        if depth > MAX_INCLUDE_DEPTH {
            let (f, l) = from.unwrap_or((path, 0));
            return Err(ConfigError::at(
                f,
                l,
                format!(
                    "Include nested more than {MAX_INCLUDE_DEPTH} deep (an Include loop through {}?)",
                    path.display()
                ),
            ));
        }
        let text = match std::fs::read(path) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(ConfigError::plain(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        if kind.user {
            check_permissions(path, self.inp.uid)?;
        }
        for (i, raw) in text.lines().enumerate() {
            self.line(path, i + 1, raw, kind, active, depth)?;
        }
        Ok(())
    }

    fn line(
        &mut self,
        file: &Path,
        n: usize,
        raw: &str,
        kind: FileKind,
        active: &mut bool,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let line = raw.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let err = |m: String| ConfigError::at(file, n, m);
        let key_end = line.find([' ', '\t', '=']).unwrap_or(line.len());
        let written = &line[..key_end];
        let keyword = written.to_ascii_lowercase();
        let mut rest = line[key_end..].trim_start_matches([' ', '\t']);
        if let Some(r) = rest.strip_prefix('=') {
            rest = r.trim_start_matches([' ', '\t']);
        }
        if rest.is_empty() {
            return Err(err(format!("no argument after keyword \"{keyword}\"")));
        }
        if !KEYWORDS.contains(&keyword.as_str()) {
            let ignored = self
                .opts
                .ignore_unknown
                .as_deref()
                .is_some_and(|p| match_pattern_list(&keyword, p, true));
            if ignored {
                return Ok(());
            }
            return Err(err(format!(
                "Bad configuration option: {keyword} (ssh refuses it too; remove it, or list it in IgnoreUnknown)"
            )));
        }
        let args = argv_split(rest).ok_or_else(|| err("invalid quotes".into()))?;
        let on = *active;
        let one = |what: &str| -> Result<String, ConfigError> {
            match args.as_slice() {
                [a] => Ok(a.clone()),
                [] => Err(err(format!("missing argument for {what}"))),
                _ => Err(err(format!(
                    "keyword {what} extra arguments at end of line"
                ))),
            }
        };
        match keyword.as_str() {
            "host" => {
                *active = false;
                if kind.never_match {
                    return Ok(());
                }
                for a in &args {
                    let (neg, p) = match a.strip_prefix('!') {
                        Some(p) => (true, p),
                        None => (false, a.as_str()),
                    };
                    if match_pattern(&self.host, p, false) {
                        if neg {
                            *active = false;
                            break;
                        }
                        *active = true;
                    }
                }
            }
            "match" => {
                let matched = self.match_line(rest, file, n)?;
                *active = !kind.never_match && matched;
            }
            "include" => {
                for a in &args {
                    if a.starts_with('~') && !kind.user {
                        return Err(err(format!("bad include path {a}")));
                    }
                    let full = if a.starts_with('/') {
                        PathBuf::from(a)
                    } else if let Some(r) = a.strip_prefix("~/") {
                        self.inp.home.join(r)
                    } else if kind.user {
                        self.inp.home.join(".ssh").join(a)
                    } else {
                        let dir = self
                            .inp
                            .system_config
                            .as_deref()
                            .and_then(Path::parent)
                            .unwrap_or(Path::new("/etc/ssh"));
                        dir.join(a)
                    };
                    let outer = *active;
                    for f in glob(&full) {
                        let k = FileKind {
                            never_match: kind.never_match || !outer,
                            ..kind
                        };
                        self.read_file(&f, k, active, depth + 1, Some((file, n)))?;
                        // A Match inside an included file does not change the including file's state.
                        *active = outer;
                    }
                }
            }
            "hostname" => first(&mut self.opts.hostname, on, one("HostName")?),
            "user" => first(&mut self.opts.user, on, one("User")?),
            "port" => {
                let v = one("Port")?;
                let p = v
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| err(format!("Badly formatted port number '{v}'")))?;
                first(&mut self.opts.port, on, p)
            }
            "identityfile" => {
                let v = one("IdentityFile")?;
                if on && !self.opts.identity_files.contains(&v) {
                    self.opts.identity_files.push(v);
                }
            }
            "certificatefile" => {
                let v = one("CertificateFile")?;
                if on && !self.opts.certificate_files.contains(&v) {
                    self.opts.certificate_files.push(v.clone());
                }
                self.note(on, written, &v, file, n);
            }
            "identitiesonly" => {
                let v = flag(&one("IdentitiesOnly")?)
                    .ok_or_else(|| err("IdentitiesOnly takes yes or no".into()))?;
                first(&mut self.opts.identities_only, on, v)
            }
            "hashknownhosts" => {
                let v = flag(&one("HashKnownHosts")?)
                    .ok_or_else(|| err("HashKnownHosts takes yes or no".into()))?;
                first(&mut self.opts.hash_known_hosts, on, v)
            }
            "proxycommand" => {
                // The rest of the line as written, quotes and all: the shell reads it.
                // A jump blocks it; `ProxyJump none` does not (as in ssh).
                let jumping = self
                    .opts
                    .jump
                    .as_ref()
                    .is_some_and(|j| !(j.len() == 1 && j[0].eq_ignore_ascii_case("none")));
                if !jumping {
                    first(&mut self.opts.proxy_command, on, rest.to_string());
                }
            }
            "proxyjump" => {
                let text = rest.split('#').next().unwrap_or("").trim_end();
                let hops: Vec<String> = text.split(',').map(|h| h.trim().to_string()).collect();
                let none = text.eq_ignore_ascii_case("none");
                if !none {
                    for h in &hops {
                        if !valid_jump(h) {
                            return Err(err(format!(
                                "Invalid ProxyJump \"{text}\": use [user@]host[:port][,…] or none"
                            )));
                        }
                    }
                }
                if on && self.opts.proxy_command.is_none() && self.opts.jump.is_none() {
                    if none {
                        self.opts.jump = Some(vec!["none".into()]);
                    } else {
                        self.opts.jump = Some(hops);
                        self.opts.proxy_command = Some("none".into());
                    }
                }
            }
            "userknownhostsfile" | "globalknownhostsfile" => {
                if args.iter().any(|a| a.eq_ignore_ascii_case("none")) && args.len() > 1 {
                    return Err(err(format!(
                        "keyword {keyword} \"none\" argument must appear alone"
                    )));
                }
                let slot = if keyword == "userknownhostsfile" {
                    &mut self.opts.user_known_hosts
                } else {
                    &mut self.opts.global_known_hosts
                };
                first(slot, on, args.clone());
            }
            "stricthostkeychecking" => {
                let v = match one("StrictHostKeyChecking")?.to_ascii_lowercase().as_str() {
                    "yes" | "true" => "true",
                    "no" | "false" | "off" => "false",
                    "ask" => "ask",
                    "accept-new" => "accept-new",
                    o => {
                        return Err(err(format!(
                            "unsupported StrictHostKeyChecking \"{o}\": use yes, no, ask or accept-new"
                        )));
                    }
                };
                first(&mut self.opts.strict, on, v)
            }
            "serveraliveinterval" => {
                let v = one("ServerAliveInterval")?;
                let s = convtime(&v).ok_or_else(|| err(format!("invalid time value '{v}'")))?;
                first(&mut self.opts.alive_interval, on, s)
            }
            "serveralivecountmax" => {
                let v = one("ServerAliveCountMax")?;
                let c = v
                    .parse()
                    .map_err(|_| err(format!("invalid number '{v}'")))?;
                first(&mut self.opts.alive_count, on, c)
            }
            "connecttimeout" => {
                let v = one("ConnectTimeout")?;
                let t = if v.eq_ignore_ascii_case("none") {
                    None
                } else {
                    Some(convtime(&v).ok_or_else(|| err(format!("invalid time value '{v}'")))?)
                };
                first(&mut self.opts.connect_timeout, on, t)
            }
            "identityagent" => first(&mut self.opts.identity_agent, on, one("IdentityAgent")?),
            "hostkeyalias" => first(&mut self.opts.host_key_alias, on, one("HostKeyAlias")?),
            "ignoreunknown" => first(&mut self.opts.ignore_unknown, on, one("IgnoreUnknown")?),
            "gssapiauthentication" => {
                // Distributions turn this on for every host in the system-wide file, where it only
                // matters to a server that accepts nothing else: berth names it when the user asked.
                if kind.user && flag(&args[0]) == Some(true) {
                    self.note(on, written, &args[0], file, n);
                }
            }
            other => {
                if let Some((_, inert)) = UNHONOURED.iter().find(|(k, _)| *k == other) {
                    let v = args.join(" ");
                    if !inert.iter().any(|i| v.eq_ignore_ascii_case(i)) {
                        self.note(on, written, &v, file, n);
                    }
                }
            }
        }
        Ok(())
    }

    /// Records the first applying value of an option berth does not honour.
    fn note(&mut self, on: bool, keyword: &str, value: &str, file: &Path, line: usize) {
        if on
            && !self
                .opts
                .unhonoured
                .iter()
                .any(|u| u.keyword.eq_ignore_ascii_case(keyword))
        {
            self.opts.unhonoured.push(Unhonoured {
                keyword: keyword.to_string(),
                value: value.to_string(),
                file: file.to_path_buf(),
                line,
            });
        }
    }

    /// One `Match` line: true when every criterion holds.
    fn match_line(&mut self, rest: &str, file: &Path, n: usize) -> Result<bool, ConfigError> {
        let err = |m: String| ConfigError::at(file, n, m);
        let args = argv_split(rest).ok_or_else(|| err("invalid quotes".into()))?;
        let port = self.opts.port.unwrap_or(22);
        let ruser = self
            .opts
            .user
            .clone()
            .unwrap_or_else(|| self.inp.local_user.clone());
        let host = if self.final_pass {
            self.opts.hostname.clone().unwrap_or_default()
        } else if let Some(h) = &self.opts.hostname {
            expand_hostname(h, &self.inp.host_arg).map_err(|e| err(e.message))?
        } else {
            self.inp.host_arg.clone()
        };
        let mut result = true;
        let mut attributes = 0;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (negate, attr) = match a.strip_prefix('!') {
                Some(x) => (true, x.to_ascii_lowercase()),
                None => (false, a.to_ascii_lowercase()),
            };
            if attr == "all" {
                if attributes > 0 || it.next().is_some() {
                    return Err(err(format!(
                        "'{a}' cannot be combined with other Match attributes"
                    )));
                }
                return Ok(result && !negate);
            }
            attributes += 1;
            if attr == "final" || attr == "canonical" {
                // Any `final`, negated or not, asks ssh for the second pass.
                if attr == "final" {
                    self.want_final = true;
                }
                if self.final_pass == negate {
                    result = false;
                }
                continue;
            }
            let Some(arg) = it.next() else {
                return Err(err(format!("Missing Match criteria for {attr}")));
            };
            let hit = match attr.as_str() {
                "host" => match_pattern_list(&host, arg, true),
                "originalhost" => match_pattern_list(&self.inp.host_arg, arg, true),
                "user" => match_pattern_list(&ruser, arg, false),
                "localuser" => match_pattern_list(&self.inp.local_user, arg, false),
                "exec" => {
                    if !result {
                        // ssh skips the command once an earlier criterion failed.
                        continue;
                    }
                    let t = Tokens {
                        host: host.clone(),
                        host_arg: self.inp.host_arg.clone(),
                        port: port.to_string(),
                        remote_user: ruser.clone(),
                        local_user: self.inp.local_user.clone(),
                        home: self.inp.home.clone(),
                        local_host: self.inp.local_host.clone(),
                        uid: self.inp.uid.to_string(),
                        key_alias: self
                            .opts
                            .host_key_alias
                            .clone()
                            .unwrap_or_else(|| host.clone()),
                    };
                    let cmd = t
                        .expand(arg, ALL_TOKENS)
                        .map_err(|e| err(format!("Match exec: {}", e.message)))?;
                    if !self.inp.run_exec {
                        false
                    } else {
                        run_match_exec(&cmd).map_err(&err)?
                    }
                }
                other => {
                    return Err(err(format!(
                        "Unsupported Match attribute {other}: berth and ssh know host, originalhost, user, localuser, exec, final, canonical, all"
                    )));
                }
            };
            if hit == negate {
                result = false;
            }
        }
        if attributes == 0 {
            return Err(err("One or more attributes required for Match".into()));
        }
        Ok(result)
    }
}

fn first<T>(slot: &mut Option<T>, on: bool, v: T) {
    if on && slot.is_none() {
        *slot = Some(v);
    }
}

fn flag(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// `30`, `1m`, `1h30m`: seconds, as ssh's `convtime`.
fn convtime(v: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in v.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let mult = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 604800,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    if !num.is_empty() {
        total = total.checked_add(num.parse().ok()?)?;
    } else if v.is_empty() {
        return None;
    }
    Some(total)
}

fn valid_jump(hop: &str) -> bool {
    if hop.is_empty() {
        return false;
    }
    let addr = if hop.starts_with("ssh://") {
        hop.to_string()
    } else {
        format!("ssh://{hop}")
    };
    matches!(
        crate::target::parse_address(&addr),
        Ok(Some(crate::target::Endpoint::Ssh(_)))
    )
}

/// ssh refuses a user config that others may write, or that another user owns.
fn check_permissions(path: &Path, uid: u32) -> Result<(), ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(path) else {
        return Ok(());
    };
    if (m.uid() != 0 && m.uid() != uid) || m.mode() & 0o022 != 0 {
        return Err(ConfigError::plain(format!(
            "Bad owner or permissions on {}: ssh refuses it too; `chmod go-w {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Runs a `Match exec` command as ssh does (the user's shell, `-c`, stdin and stdout on
/// /dev/null): true when it exits 0.
fn run_match_exec(cmd: &str) -> Result<bool, String> {
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let mut child = std::process::Command::new(&shell)
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("Match exec could not start {shell}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status.success()),
            Ok(None) if start.elapsed() > MATCH_EXEC_LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "Match exec \"{cmd}\" did not finish within {} s: make it return quickly",
                    MATCH_EXEC_LIMIT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("Match exec \"{cmd}\": {e}")),
        }
    }
}

/// Splits arguments as ssh does: whitespace separates, `"…"` and `'…'` quote, a backslash escapes
/// a quote, a backslash or (unquoted) a space; a `#` starting an argument ends the line.
/// `None` for an unterminated quote.
fn argv_split(s: &str) -> Option<Vec<String>> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if c[i] == ' ' || c[i] == '\t' {
            i += 1;
            continue;
        }
        if c[i] == '#' {
            break;
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while i < c.len() {
            let ch = c[i];
            if ch == '\\' {
                let next = c.get(i + 1).copied();
                if matches!(next, Some('\'' | '"' | '\\')) || (quote.is_none() && next == Some(' '))
                {
                    i += 1;
                    arg.push(c[i]);
                } else {
                    arg.push(ch);
                }
            } else if quote.is_none() && (ch == ' ' || ch == '\t') {
                break;
            } else if quote.is_none() && (ch == '"' || ch == '\'') {
                quote = Some(ch);
            } else if quote == Some(ch) {
                quote = None;
            } else {
                arg.push(ch);
            }
            i += 1;
        }
        if quote.is_some() {
            return None;
        }
        out.push(arg);
    }
    Some(out)
}

/// One `*`/`?` pattern; case-insensitive only where ssh lowercases both sides.
fn match_pattern(text: &str, pattern: &str, fold_case: bool) -> bool {
    if fold_case {
        wildcard(pattern, text)
    } else {
        glob_match(pattern.chars().collect(), text.chars().collect())
    }
}

/// A comma-separated list with `!` negations: true when one pattern matches and no negated one does.
fn match_pattern_list(text: &str, list: &str, fold_case: bool) -> bool {
    let mut matched = false;
    for p in list.split(',').filter(|p| !p.is_empty()) {
        match p.strip_prefix('!') {
            Some(neg) if match_pattern(text, neg, fold_case) => return false,
            Some(_) => {}
            None if match_pattern(text, p, fold_case) => matched = true,
            None => {}
        }
    }
    matched
}

/// A `Host` line's patterns (whitespace-separated, `!` negates) against `host`, as ssh matches them.
pub fn host_matches(patterns: &str, host: &str) -> bool {
    let mut matched = false;
    for p in patterns.split([' ', '\t']).filter(|p| !p.is_empty()) {
        if let Some(neg) = p.strip_prefix('!') {
            if match_pattern(host, neg, false) {
                return false;
            }
        } else if match_pattern(host, p, false) {
            matched = true;
        }
    }
    matched
}

/// `*` and `?` glob, case-insensitive (host names in known_hosts are).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    glob_match(
        pattern.to_ascii_lowercase().chars().collect(),
        text.to_ascii_lowercase().chars().collect(),
    )
}

fn glob_match(p: Vec<char>, t: Vec<char>) -> bool {
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
    PathBuf::from(expand_home_str(p, home))
}

fn expand_home_str(p: &str, home: &Path) -> String {
    if p == "~" {
        return home.display().to_string();
    }
    match p.strip_prefix("~/") {
        Some(rest) => home.join(rest).display().to_string(),
        None => p.to_string(),
    }
}

/// `*`, `?` in any component of an absolute path, matches sorted (as glob(3)).
fn glob(p: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::from("/")];
    for comp in p.components().skip(1) {
        let name = comp.as_os_str().to_string_lossy().into_owned();
        let mut next = Vec::new();
        for base in &found {
            if !name.contains(['*', '?']) {
                let c = base.join(&name);
                if c.exists() {
                    next.push(c);
                }
                continue;
            }
            let mut m: Vec<PathBuf> = std::fs::read_dir(base)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    // A leading dot is matched only by a pattern that starts with one.
                    (!n.starts_with('.') || name.starts_with('.'))
                        && glob_match(name.chars().collect(), n.chars().collect())
                })
                .map(|e| e.path())
                .collect();
            m.sort();
            next.extend(m);
        }
        found = next;
    }
    found.into_iter().filter(|f| f.is_file()).collect()
}

/// The concrete host aliases of a config (`Host` names without `*`, `?` or `!`), in file order,
/// following `Include` as ssh does; `ssh_dir` is where relative includes start (`~/.ssh`).
pub fn hosts(path: &Path, ssh_dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    read_hosts(path, ssh_dir, &mut out, 0);
    out
}

fn read_hosts(path: &Path, ssh_dir: &Path, out: &mut Vec<String>, depth: usize) {
    if depth > MAX_INCLUDE_DEPTH {
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
        let key_end = line.find([' ', '\t', '=']).unwrap_or(line.len());
        let key = &line[..key_end];
        let value = line[key_end..].trim_start_matches([' ', '\t', '=']);
        let Some(args) = argv_split(value) else {
            continue;
        };
        if key.eq_ignore_ascii_case("host") {
            for h in args {
                if !h.contains(['*', '?', '!']) && !out.contains(&h) {
                    out.push(h);
                }
            }
        } else if key.eq_ignore_ascii_case("include") {
            for pattern in args {
                let p = expand_home(&pattern, home);
                let p = if p.is_absolute() { p } else { ssh_dir.join(p) };
                for file in glob(&p) {
                    read_hosts(&file, ssh_dir, out, depth + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(home: &Path, host: &str) -> Inputs {
        Inputs {
            host_arg: host.into(),
            user: None,
            port: None,
            user_config: Some(home.join(".ssh/config")),
            system_config: Some(home.join("etc/ssh_config")),
            home: home.to_path_buf(),
            local_user: "me".into(),
            uid: unsafe { libc::getuid() },
            local_host: "laptop.lan".into(),
            run_exec: true,
        }
    }

    #[test]
    fn patterns() {
        assert!(wildcard("*.corp", "a.corp"));
        assert!(wildcard("web?", "web1"));
        assert!(!wildcard("web?", "web12"));
        assert!(host_matches("web* !web3", "web1"));
        assert!(!host_matches("web* !web3", "web3"));
        assert!(
            !host_matches("!web3", "web1"),
            "a negation alone matches nothing"
        );
        assert!(
            !host_matches("Web1", "web1"),
            "Host patterns are case-sensitive in ssh"
        );
        assert!(match_pattern_list("a.prod", "*.prod,!b.prod", true));
        assert!(!match_pattern_list("b.prod", "*.prod,!b.prod", true));
        assert_eq!(convtime("1m30s"), Some(90));
        assert_eq!(convtime("x"), None);
        assert_eq!(
            argv_split(r#"a "b c" 'd' e\ f # g"#).unwrap(),
            vec!["a", "b c", "d", "e f"]
        );
        assert_eq!(argv_split("\"open"), None);
    }

    #[test]
    fn first_match_wins_include_and_final() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::create_dir_all(home.join(".ssh/conf.d")).unwrap();
        std::fs::create_dir_all(home.join("etc")).unwrap();
        std::fs::write(
            home.join(".ssh/config"),
            "Include conf.d/*.conf\n\
             Host prod\n  HostName 10.0.0.1\n  User deploy\n  IdentityFile ~/.ssh/prod_key\n\
             Match final host 10.0.0.1\n  ServerAliveInterval 1m\n\
             Host *\n  IdentityFile ~/.ssh/id_all\n",
        )
        .unwrap();
        std::fs::write(home.join(".ssh/conf.d/a.conf"), "Host prod\n  Port=2200\n").unwrap();
        std::fs::write(
            home.join("etc/ssh_config"),
            "Host *\n  User nobody\n  Port 2222\n",
        )
        .unwrap();
        let r = resolve_host(&inputs(home, "prod")).unwrap();
        assert_eq!(
            (r.hostname.as_str(), r.user.as_str(), r.port),
            ("10.0.0.1", "deploy", 2200)
        );
        assert_eq!(r.identity_files, vec!["~/.ssh/prod_key", "~/.ssh/id_all"]);
        assert_eq!(r.server_alive_interval, 60, "the final pass matched");
        let o = resolve_host(&inputs(home, "other")).unwrap();
        assert_eq!((o.user.as_str(), o.port), ("nobody", 2222));
        assert_eq!(
            r.expand_path("~/.ssh/%r@%h:%p").unwrap(),
            home.join(".ssh/deploy@10.0.0.1:2200")
        );
    }

    #[test]
    fn bad_input_names_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        let cfg = home.join(".ssh/config");
        std::fs::write(&cfg, "Host a\n  Frobnicate yes\n").unwrap();
        let e = resolve_host(&inputs(home, "a")).unwrap_err().to_string();
        assert!(
            e.contains("config line 2: Bad configuration option: frobnicate"),
            "{e}"
        );
        std::fs::write(&cfg, "IgnoreUnknown frob*\nHost a\n  Frobnicate yes\n").unwrap();
        assert!(resolve_host(&inputs(home, "a")).is_ok());
        std::fs::write(&cfg, "Include config\n").unwrap();
        let e = resolve_host(&inputs(home, "a")).unwrap_err().to_string();
        assert!(
            e.contains("config line 1: Include nested more than 16 deep"),
            "{e}"
        );
        std::fs::write(&cfg, "Match exec \"exit 1\"\n  User x\nMatch bogus y\n").unwrap();
        let e = resolve_host(&inputs(home, "a")).unwrap_err().to_string();
        assert!(
            e.contains("config line 3: Unsupported Match attribute bogus"),
            "{e}"
        );
    }
}
