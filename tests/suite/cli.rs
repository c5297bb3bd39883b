//! The command line a new user meets first: completions and the man page from the clap
//! definitions, the whole config checked by every command, docker context names for `-s`,
//! suggestions that are valid to paste, and the small refusals that come before any plan.

use crate::common;

use std::process::Output;

use common::{BERTH_TIMEOUT, OutputWithin, Scope, berth, docker, text};

fn run(args: &[&str], envs: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut c = berth();
    c.args(args).stdin(std::process::Stdio::null());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output_within(BERTH_TIMEOUT).unwrap()
}

#[test]
fn bash_completion_completes_subcommands_and_flags() {
    let out = run(&["completions", "bash"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let script = String::from_utf8(out.stdout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.bash");
    std::fs::write(&path, &script).unwrap();
    // Load the script in a real bash and ask it what `berth ro<TAB>` and `berth rollback --dr<TAB>` give.
    let ask = |words: &str, cword: usize| {
        let probe = format!(
            "source '{}'; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; _berth berth \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display()
        );
        let out = std::process::Command::new("bash")
            .args(["--norc", "-c", &probe])
            .output_within(BERTH_TIMEOUT)
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let subs = ask("berth ro", 1);
    assert!(subs.lines().any(|l| l == "rollback"), "{subs}");
    assert!(!subs.lines().any(|l| l == "restart"), "{subs}");
    let flags = ask("berth rollback --dr", 2);
    assert!(flags.lines().any(|l| l == "--dry-run"), "{flags}");

    for (shell, mark) in [("zsh", "#compdef berth"), ("fish", "complete -c berth")] {
        let out = run(&["completions", shell], &[]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let s = String::from_utf8_lossy(&out.stdout);
        assert!(s.contains(mark), "{shell}: {s}");
        assert!(s.contains("rollback"), "{shell}");
    }
    let out = run(&["completions", "tcsh"], &[]);
    assert!(!out.status.success());
}

#[test]
fn man_page_documents_every_command_and_its_options() {
    let out = run(&["man"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "roff");
    assert!(
        page.contains(".TH berth 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    // One subsection per command under COMMANDS.
    assert!(page.contains("\n.SH COMMANDS\n"), "no COMMANDS section");
    for command in ["ps", "rollback", "prune", "completions"] {
        let heading = format!(".SS \"berth {command}\"");
        assert!(page.contains(&heading), "no {heading}");
    }
    // An option of a subcommand, and its help, are in the page.
    assert!(page.contains("remove\\-old") || page.contains("remove-old"));
    assert!(page.contains("Images to keep per service for rollback"));
    // It renders: groff (when installed) reads it without warnings.
    if std::process::Command::new("groff")
        .arg("-v")
        .output_within(BERTH_TIMEOUT)
        .is_ok()
    {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("berth.1");
        std::fs::write(&file, &page).unwrap();
        let out = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&file)
            .output_within(BERTH_TIMEOUT)
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_command_checks_the_whole_config() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[keys]\nquit = \"Q\"\nlogs = \"ctrl-\"\n",
            3,
            "[keys] logs = 'ctrl-' is not a key",
        ),
        (
            "read_only = false\n\n[keys]\nlogs = \"q\"\n",
            4,
            "[keys] logs = \"q\" clashes with quit",
        ),
        ("\n# theme\ntheme = \"neon\"\n", 3, "unknown theme 'neon'"),
    ];
    for (i, (body, line, message)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, body).unwrap();
        let p = path.to_str().unwrap();
        // ps (and audit, which needs no engine at all) refuse it like the console does.
        for args in [vec!["--config", p, "ps"], vec!["--config", p, "audit"]] {
            let out = run(&args, &[]);
            let t = text(&out);
            assert!(!out.status.success(), "{args:?}: {t}");
            assert_eq!(t.trim_end().lines().count(), 1, "one line: {t}");
            assert!(t.contains(&format!("{p}:{line}:")), "{args:?}: {t}");
            assert!(t.contains(message), "{args:?}: {t}");
        }
    }
    let out = run(&["--theme", "neon", "audit"], &[]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("unknown theme 'neon'"),
        "{}",
        text(&out)
    );
}

/// A docker config dir with one context, `name`, pointing at the local engine.
fn docker_config_with_context(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let meta = dir.path().join("contexts/meta/0123abcd");
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"unix:///var/run/docker.sock","SkipTLSVerify":false}}}}}}"#
        ),
    )
    .unwrap();
    dir
}

#[test]
fn server_flag_takes_docker_context_names_and_suggests_near_ones() {
    let dir = docker_config_with_context("berthlocal");
    let env = [("DOCKER_CONFIG", dir.path().as_os_str())];
    let out = run(&["-s", "berthlocal", "ps", "--json"], &env);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["-s", "context:berthlocal", "ps", "--json"], &env);
    assert!(out.status.success(), "{}", text(&out));
    for typo in ["berthlocl", "context:berthlocl", "contxt:berthlocal"] {
        let out = run(&["-s", typo, "ps"], &env);
        let t = text(&out);
        assert!(!out.status.success(), "{typo}: {t}");
        assert!(
            t.contains("did you mean context:berthlocal?"),
            "{typo}: {t}"
        );
    }
    let out = run(&["-s", "zzzzzz", "ps"], &env);
    assert!(!text(&out).contains("did you mean"), "{}", text(&out));
}

#[test]
fn docker_host_http_gets_the_unsupported_scheme_message() {
    let out = run(
        &["ps"],
        &[("DOCKER_HOST", std::ffi::OsStr::new("http://127.0.0.1:2375"))],
    );
    let t = text(&out);
    assert!(!out.status.success());
    assert!(
        t.contains("unsupported scheme in 'http://127.0.0.1:2375'"),
        "{t}"
    );
    assert_eq!(t.trim_end().lines().count(), 1, "{t}");
}

#[test]
fn kill_of_a_stopped_container_says_so_before_any_plan() {
    let scope = Scope::new("cli");
    let id = scope.run("stopped", &["berth-test/web:v1", "true"]);
    common::wait_until(
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(100),
        || docker(&["inspect", "-f", "{{.State.Running}}", &id]) == "false",
    );
    let name = scope.name("stopped");
    let out = run(&["kill", &name, "--yes"], &[]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains(&format!("{name} is not running (")), "{t}");
    assert!(!t.contains("Plan:"), "no plan is shown: {t}");
}

#[test]
fn logs_take_the_replica_name_the_list_shows() {
    let scope = Scope::new("cli");
    // A service name of this test alone, so `SERVICE-2` means one container on the shared engine.
    let service = scope.name("api");
    for n in [1, 2] {
        scope.run_service(
            &service,
            n,
            &[
                "berth-test/web:v1",
                "sh",
                "-c",
                &format!("echo replica-{n}-says-hi; sleep 60"),
            ],
        );
    }
    let mut last = String::new();
    let found = common::wait_until(
        std::time::Duration::from_secs(20),
        std::time::Duration::from_millis(200),
        || {
            let out = run(&["logs", &format!("{service}-2")], &[]);
            last = text(&out);
            out.status.success() && last.contains("replica-2-says-hi")
        },
    );
    assert!(found, "{last}");
    assert!(!last.contains("replica-1"), "only replica 2: {last}");
    let out = run(&["logs", &format!("{}/{service}-1", scope.project())], &[]);
    assert!(text(&out).contains("replica-1-says-hi"), "{}", text(&out));
}

/// A server that accepts the TCP connection and never speaks SSH: the connect timeout bounds the
/// wait and the one-line error says what did not answer, instead of hanging.
#[test]
fn a_server_that_never_speaks_ssh_times_out_with_a_clear_line() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold every connection, silent, for as long as the test runs.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(8) {
            held.push(stream);
        }
        std::thread::sleep(std::time::Duration::from_secs(120));
    });
    let home = common::fresh_home();
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(
        home.join(".ssh/config"),
        format!(
            "Host silent\n  HostName 127.0.0.1\n  Port {port}\n  User nobody\n  ConnectTimeout 2\n"
        ),
    )
    .unwrap();
    let out = berth()
        .env("HOME", &home)
        .args(["-s", "silent", "ps"])
        .output_within(BERTH_TIMEOUT)
        .unwrap();
    let text = text(&out);
    assert!(!out.status.success(), "a silent server is an error: {text}");
    assert!(
        text.contains("ssh handshake with") && text.contains("timed out after 2 s"),
        "the error names the handshake and its bound: {text}"
    );
    assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
}
