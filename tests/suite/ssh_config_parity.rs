//! berth's ssh config resolution against OpenSSH's own: each config of the corpus is resolved by
//! berth and by `ssh -G` (the oracle), and every option berth uses must come out the same.
//!
//! ssh reads `~/.ssh/config` from the passwd home and `/etc/ssh/ssh_config`: it runs in a private
//! mount namespace where the case's home is bound over the passwd home and its system directory over
//! `/etc/ssh`, so it reads exactly the files berth reads (relative includes included). berth's home
//! is the temp dir; its paths are written with the passwd home in its place before comparing.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth::ssh_config::{Inputs, local_host_name, resolve_host};

/// The `ssh -G` keys of the options berth uses.
const KEYS: &[&str] = &[
    "user",
    "hostname",
    "port",
    "hashknownhosts",
    "identitiesonly",
    "stricthostkeychecking",
    "serveralivecountmax",
    "serveraliveinterval",
    "hostkeyalias",
    "identityagent",
    "identityfile",
    "certificatefile",
    "globalknownhostsfile",
    "userknownhostsfile",
    "connecttimeout",
    "proxyjump",
    "proxycommand",
];

struct Case {
    name: &'static str,
    user: &'static str,
    system: &'static str,
    /// Other files: path relative to the case dir (`home/…` or `sys/…`), text.
    files: &'static [(&'static str, &'static str)],
    host: &'static str,
    login: Option<&'static str>,
    port: Option<u16>,
}

const fn case(name: &'static str, user: &'static str, host: &'static str) -> Case {
    Case {
        name,
        user,
        system: "",
        files: &[],
        host,
        login: None,
        port: None,
    }
}

fn corpus() -> Vec<Case> {
    vec![
        case(
            "plain",
            "Host a\n HostName 10.0.0.1\n User u\n Port 2200\n",
            "a",
        ),
        case(
            "first value wins",
            "Host *\n User first\nHost a\n User second\n Port 1\n",
            "a",
        ),
        case(
            "negated host",
            "Host * !b\n User notb\nHost *\n User any\n",
            "b",
        ),
        case(
            "host patterns are case-sensitive, the name lowercased",
            "Host foo\n User x\n",
            "FOO",
        ),
        case(
            "hostname token",
            "Host *.x\n HostName %h.Example.COM\n",
            "A.x",
        ),
        case(
            "match host sees HostName",
            "Host a\n HostName real.a\nMatch host real.*\n User m\n",
            "a",
        ),
        case(
            "match originalhost",
            "Host a\n HostName real\nMatch originalhost a\n Port 7\n",
            "a",
        ),
        Case {
            login: Some("bob"),
            ..case(
                "match user from -l",
                "Match user bob,!alice\n Port 8\n",
                "a",
            )
        },
        case(
            "match user from config",
            "Host a\n User carol\nMatch user car*\n Port 9\n",
            "a",
        ),
        case(
            "match localuser",
            "Match localuser root,nobody\n User lu\n",
            "a",
        ),
        case(
            "negated localuser",
            "Match !localuser root\n User x\nHost *\n User y\n",
            "a",
        ),
        case("match all", "Match all\n User all\n", "a"),
        case(
            "match exec status",
            "Match exec true\n User t\nMatch exec false\n Port 99\n",
            "a",
        ),
        Case {
            login: Some("bob"),
            ..case(
                "match exec tokens",
                "Host a\n HostName real\n Port 2222\nMatch exec \"test %h = real && test %n = a && test %p = 2222 && test %r = bob && test %u = root\"\n User ok\n",
                "a",
            )
        },
        case(
            "match exec command not found",
            "Match exec no-such-command-berth\n User x\nHost *\n User y\n",
            "a",
        ),
        case(
            "match exec after a failed criterion",
            "Match host nomatch exec true\n User x\nHost *\n User y\n",
            "a",
        ),
        case(
            "match final",
            "Host a\n HostName b\nMatch final host b\n User fin\nHost b\n Port 44\n",
            "a",
        ),
        case(
            "canonical and !final",
            "Match canonical\n User c\nMatch !final\n Port 45\n",
            "a",
        ),
        case(
            "hostname change alone is no second pass",
            "Host a\n HostName Bar.Example\nHost bar.example\n User never\n",
            "a",
        ),
        Case {
            files: &[
                ("home/.ssh/conf.d/1.conf", "Host a\n User one\n"),
                ("home/.ssh/conf.d/2.conf", "Host a\n Port 2\n User two\n"),
            ],
            ..case(
                "include glob relative",
                "Include conf.d/*.conf\nHost *\n User base\n",
                "a",
            )
        },
        Case {
            files: &[("home/.ssh/extra", "Port 6\nHost *\n User inc\n")],
            ..case(
                "include in an inactive block",
                "Host b\n Include extra\nHost *\n Port 5\n",
                "a",
            )
        },
        Case {
            files: &[("home/.ssh/extra", "Port 6\nHost *\n User inc\n")],
            ..case(
                "include in an active block",
                "Host b\n Include extra\n IdentityFile k\nHost *\n Port 5\n",
                "b",
            )
        },
        Case {
            files: &[
                ("home/.ssh/inc1", "Host a\n User tilde\n"),
                ("home/inc2", "Host a\n Port 22\n"),
            ],
            ..case(
                "include with ~ and absolute",
                "Include ~/.ssh/inc1 ~/inc2\n",
                "a",
            )
        },
        case(
            "include matching nothing",
            "Include nonexistent/*\nHost *\n User z\n",
            "a",
        ),
        Case {
            system: "Host *\n User sys\n Port 2022\n HashKnownHosts yes\n",
            ..case("system config after the user's", "Host a\n Port 1\n", "a")
        },
        Case {
            system: "Include ssh_config.d/*.conf\nHost *\n User sysbase\n",
            files: &[(
                "sys/ssh_config.d/a.conf",
                "Host a\n User sysinc\n IdentitiesOnly yes\n",
            )],
            ..case("system config relative include", "", "a")
        },
        case(
            "tokens in known_hosts paths",
            "Host a\n HostName real\n User u\n Port 23\n UserKnownHostsFile ~/kh/%h_%p_%r_%n_%u_%d_%l_%L_%i_%C_%k_%% /x/%h\n HostKeyAlias Alias\n",
            "a",
        ),
        case(
            "known_hosts lists",
            "Host *\n GlobalKnownHostsFile /a/b /c/%h\n UserKnownHostsFile none\n",
            "a",
        ),
        case(
            "identity agent path",
            "Host a\n IdentityAgent ~/agent.%h.%p\n",
            "a",
        ),
        case(
            "identity agent none and env",
            "Host a\n IdentityAgent none\nHost *\n IdentityAgent SSH_AUTH_SOCK\n",
            "a",
        ),
        case(
            "identity and certificate files",
            "Host a\n IdentityFile ~/.ssh/k1\n CertificateFile ~/.ssh/k1-cert.pub\nHost *\n IdentityFile ~/.ssh/k1\n IdentityFile %d/k2_%h\n IdentitiesOnly yes\n",
            "a",
        ),
        case(
            "proxyjump chain wins over a later proxycommand",
            "Host a\n ProxyJump u@j1:2201,j2\n ProxyCommand nc %h %p\n",
            "a",
        ),
        case(
            "proxycommand as written",
            "Host a\n ProxyCommand sh -c \"nc %h %p\" # c\n ProxyJump j\n",
            "a",
        ),
        case(
            "proxycommand none blocks a jump",
            "Host a\n ProxyCommand none\nHost *\n ProxyJump j\n",
            "a",
        ),
        case(
            "proxyjump none blocks a later jump only",
            "Host a\n ProxyJump none\nHost *\n ProxyJump j\n ProxyCommand x\n",
            "a",
        ),
        case(
            "proxycommand then proxyjump none",
            "Host a\n ProxyCommand y %h\nHost *\n ProxyJump none\n",
            "a",
        ),
        case(
            "final negated still asks for the second pass",
            "Match !final\n Port 45\nMatch canonical\n User c\n",
            "a",
        ),
        case(
            "times and strictness",
            "Host a\n StrictHostKeyChecking no\n ServerAliveInterval 1m30s\n ServerAliveCountMax 7\n ConnectTimeout 12\n",
            "a",
        ),
        case(
            "strict accept-new",
            "Host *\n StrictHostKeyChecking accept-new\n",
            "a",
        ),
        case(
            "strict yes",
            "Host *\n StrictHostKeyChecking yes\n ConnectTimeout none\n",
            "a",
        ),
        case(
            "equals and quotes",
            "Host=a\n\tUser = \"quoted\"\nPort=2201\n",
            "a",
        ),
        Case {
            login: Some("cli"),
            port: Some(3000),
            ..case("-l and -p win", "Host a\n User cfg\n Port 1\n", "a")
        },
        case(
            "comments",
            "# top\nHost a # comment\n User u # trailing\n\n  # indented\n",
            "a",
        ),
        case("unknown option", "Host a\n Bogus 1\n", "a"),
        case(
            "ignore unknown",
            "IgnoreUnknown Bog*\nHost a\n Bogus 1\n User ig\n",
            "a",
        ),
        case("include loop", "Include ~/.ssh/config\n", "a"),
        case("bad match attribute", "Match frobnicate x\n User x\n", "a"),
        case("bad port", "Host a\n Port 99999\n", "a"),
    ]
}

fn passwd_home() -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", "getent passwd $(id -u) | cut -d: -f6"])
        .output()
        .expect("getent");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn local_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The (key, value) pairs of `ssh -G` lines for [`KEYS`], sorted by key, order kept within a key.
fn pick(lines: &[String]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| l.split_once(' '))
        .filter(|(k, _)| KEYS.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

enum Outcome {
    Options(Vec<(String, String)>),
    Refused(String),
}

fn ssh_g(c: &Case, home: &Path, sys: &Path, pw_home: &Path) -> Outcome {
    let mut args = String::from("ssh -G");
    if let Some(l) = c.login {
        args.push_str(&format!(" -l {l}"));
    }
    if let Some(p) = c.port {
        args.push_str(&format!(" -p {p}"));
    }
    args.push_str(&format!(" '{}'", c.host));
    let script = format!(
        "mount --bind '{}' '{}' && mount --bind '{}' /etc/ssh && exec {args}",
        home.display(),
        pw_home.display(),
        sys.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("unshare and ssh (openssh-client) are installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() {
        Outcome::Options(pick(
            &stdout.lines().map(str::to_string).collect::<Vec<_>>(),
        ))
    } else {
        Outcome::Refused(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn berth_g(c: &Case, home: &Path, sys: &Path, pw_home: &Path) -> Outcome {
    let inputs = Inputs {
        host_arg: c.host.into(),
        user: c.login.map(str::to_string),
        port: c.port,
        user_config: Some(home.join(".ssh/config")),
        system_config: Some(sys.join("ssh_config")),
        home: home.to_path_buf(),
        local_user: local_user(),
        uid: unsafe { libc::getuid() },
        local_host: local_host_name(),
        run_exec: true,
    };
    match resolve_host(&inputs) {
        Ok(r) => {
            let home_s = home.display().to_string();
            let pw_s = pw_home.display().to_string();
            let lines: Vec<String> = r
                .g_lines()
                .into_iter()
                .map(|l| l.replace(&home_s, &pw_s))
                .collect();
            Outcome::Options(pick(&lines))
        }
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

#[test]
fn berth_resolves_every_corpus_config_as_ssh_g_does() {
    let pw_home = passwd_home();
    let cases = corpus();
    assert!(cases.len() >= 30);
    let mut same = 0;
    let mut differ = Vec::new();
    for c in &cases {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let sys = dir.path().join("sys");
        write(&home.join(".ssh/config"), c.user);
        std::fs::create_dir_all(&sys).unwrap();
        if !c.system.is_empty() {
            write(&sys.join("ssh_config"), c.system);
        }
        for (p, text) in c.files {
            write(&dir.path().join(p), text);
        }
        let ssh = ssh_g(c, &home, &sys, &pw_home);
        let berth = berth_g(c, &home, &sys, &pw_home);
        match (&ssh, &berth) {
            (Outcome::Options(a), Outcome::Options(b)) if a == b => same += 1,
            (Outcome::Refused(s), Outcome::Refused(b)) => {
                // Both refuse; berth names the line ssh names.
                let line = s
                    .split("line ")
                    .nth(1)
                    .and_then(|r| r.split(':').next())
                    .map(|n| format!("line {n}:"));
                match line {
                    Some(l) if !b.contains(&l) => {
                        differ.push(format!("{}: ssh said `{s}`, berth `{b}`", c.name))
                    }
                    _ => same += 1,
                }
            }
            (Outcome::Options(a), Outcome::Options(b)) => {
                let only_ssh: Vec<_> = a.iter().filter(|x| !b.contains(x)).collect();
                let only_berth: Vec<_> = b.iter().filter(|x| !a.contains(x)).collect();
                differ.push(format!(
                    "{}: ssh -G has {only_ssh:?}, berth {only_berth:?}",
                    c.name
                ));
            }
            (Outcome::Refused(s), Outcome::Options(_)) => {
                differ.push(format!("{}: ssh refused ({s}), berth resolved it", c.name))
            }
            (Outcome::Options(_), Outcome::Refused(b)) => {
                differ.push(format!("{}: ssh resolved it, berth refused ({b})", c.name))
            }
        }
    }
    println!("ssh -G parity: {same}/{} configs", cases.len());
    assert!(differ.is_empty(), "differences:\n{}", differ.join("\n"));
}
