//! Targets: address parsing, resolution order, production and read-only following the server, ssh aliases and contexts.

use super::*;

fn env() -> Environment {
    Environment {
        docker_host: None,
        docker_context: None,
        docker_config_dir: None,
        ssh_config: None,
    }
}

#[test]
fn parses_addresses() {
    assert_eq!(
        parse_address("unix:///run/d.sock").unwrap(),
        Some(Endpoint::Unix("/run/d.sock".into()))
    );
    assert_eq!(
        parse_address("tcp://1.2.3.4").unwrap(),
        Some(Endpoint::Tcp("1.2.3.4:2375".into()))
    );
    assert_eq!(
        parse_address("ssh://deploy@box:2222/run/user/1000/docker.sock").unwrap(),
        Some(Endpoint::Ssh(SshSpec {
            user: Some("deploy".into()),
            host: "box".into(),
            port: Some(2222),
            socket: Some("/run/user/1000/docker.sock".into())
        }))
    );
    assert_eq!(
        parse_address("root@100.101.1.2").unwrap(),
        Some(Endpoint::Ssh(SshSpec {
            user: Some("root".into()),
            host: "100.101.1.2".into(),
            port: None,
            socket: None
        }))
    );
    assert_eq!(parse_address("prod").unwrap(), None);
    assert!(matches!(
        parse_address("http2://x"),
        Err(TargetError::BadScheme(_))
    ));
    assert!(matches!(
        parse_address("ssh://u@h:99999"),
        Err(TargetError::BadAddress(..))
    ));
    assert!(matches!(
        parse_address("ssh://@h"),
        Err(TargetError::BadAddress(..))
    ));
}

/// The same server reached by its ssh alias, `user@host:port`, `ssh://` or `DOCKER_HOST` carries
/// the configured server's production label and read-only flag; another port or host does not.
#[test]
fn production_follows_the_server_not_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let ssh_dir = dir.path().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let ssh_config = ssh_dir.join("config");
    std::fs::write(
        &ssh_config,
        "Host box\n  HostName 10.1.2.3\n  Port 2222\n  User deploy\nHost other\n  HostName 10.9.9.9\n",
    )
    .unwrap();
    let mut e = env();
    e.ssh_config = Some(ssh_config);
    let mut cfg = Config::default();
    cfg.servers.insert(
        "prod".into(),
        ServerConfig {
            target: "ssh://deploy@10.1.2.3:2222".into(),
            environment: Some("production".into()),
            read_only: true,
            ..Default::default()
        },
    );
    for name in ["box", "root@10.1.2.3:2222", "ssh://10.1.2.3:2222"] {
        let t = resolve_named(name, &cfg, &e).unwrap();
        assert!(t.is_production(), "{name} is the production server");
        assert!(
            t.read_only,
            "{name} is read-only like the configured server"
        );
    }
    for name in ["other", "root@10.1.2.3", "ssh://10.1.2.4:2222"] {
        let t = resolve_named(name, &cfg, &e).unwrap();
        assert!(!t.is_production(), "{name} is another server");
        assert!(!t.read_only, "{name} is another server");
    }
    e.docker_host = Some("ssh://box".into());
    let t = resolve(None, &cfg, &e).unwrap().unwrap();
    assert!(
        t.is_production(),
        "DOCKER_HOST=ssh://box is the production server"
    );
}

#[test]
fn resolution_order() {
    let mut cfg = Config::default();
    let mut e = env();
    assert_eq!(resolve(None, &cfg, &e).unwrap(), Some(Target::local()));
    e.docker_host = Some("tcp://127.0.0.1:2375".into());
    assert_eq!(
        resolve(None, &cfg, &e).unwrap().unwrap().endpoint,
        Endpoint::Tcp("127.0.0.1:2375".into())
    );
    e.docker_host = Some("udp://x".into());
    assert!(resolve(None, &cfg, &e).is_err());
    e.docker_host = None;
    cfg.servers.insert(
        "prod".into(),
        ServerConfig {
            target: "deploy@prod.example.com".into(),
            environment: Some("production".into()),
            ..Default::default()
        },
    );
    assert_eq!(
        resolve(None, &cfg, &e).unwrap(),
        None,
        "servers listed, none default: picker"
    );
    let t = resolve(Some("prod"), &cfg, &e).unwrap().unwrap();
    assert!(t.is_production());
    assert_eq!(t.name, "prod");
    cfg.default_server = Some("prod".into());
    assert_eq!(resolve(None, &cfg, &e).unwrap().unwrap().name, "prod");
    assert_eq!(
        resolve_named("nosuch", &cfg, &e),
        Err(TargetError::Unknown("nosuch".into(), Suggestion(None)))
    );
    assert_eq!(
        resolve_named("prdo", &cfg, &e),
        Err(TargetError::Unknown(
            "prdo".into(),
            Suggestion(Some("prod".into()))
        ))
    );
    // The docker CLI does not take http:// either: one clear message, not a client error later.
    assert!(matches!(
        parse_address("http://127.0.0.1:2375"),
        Err(TargetError::BadScheme(_))
    ));
    assert!(
        resolve_named("box.tail1234.ts.net", &cfg, &e)
            .unwrap()
            .is_ssh()
    );
}

#[test]
fn reads_ssh_aliases_and_contexts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("config"),
        "Include conf.d/*.conf\nHost web1 web2\n  HostName 1.2.3.4\nHost *.corp\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("conf.d/a.conf"), "Host db\n").unwrap();
    assert_eq!(
        ssh_config_hosts(&dir.path().join("config")),
        vec!["db", "web1", "web2"]
    );

    let ctx = dir.path().join("docker/contexts/meta/abc");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("meta.json"),
        r#"{"Name":"remote","Endpoints":{"docker":{"Host":"ssh://me@remote"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("docker/config.json"),
        r#"{"currentContext":"remote"}"#,
    )
    .unwrap();
    let e = Environment {
        docker_config_dir: Some(dir.path().join("docker")),
        ssh_config: Some(dir.path().join("config")),
        ..env()
    };
    let t = resolve(None, &Config::default(), &e).unwrap().unwrap();
    assert_eq!(t.name, "context:remote");
    assert!(
        resolve_named("web1", &Config::default(), &e)
            .unwrap()
            .is_ssh()
    );
    assert!(matches!(
        resolve_named("context:nope", &Config::default(), &e),
        Err(TargetError::UnknownContext(..))
    ));
    // A context by the bare name the picker shows; a near miss suggests it.
    assert_eq!(
        resolve_named("remote", &Config::default(), &e)
            .unwrap()
            .name,
        "context:remote"
    );
    for typo in ["remot", "Remote2", "contxt:remote"] {
        let err = resolve_named(typo, &Config::default(), &e).unwrap_err();
        assert!(
            err.to_string().contains("(did you mean context:remote?)"),
            "{typo}: {err}"
        );
    }
    assert!(
        resolve_named("web1x", &Config::default(), &e)
            .unwrap_err()
            .to_string()
            .contains("(did you mean web1?)")
    );
}
