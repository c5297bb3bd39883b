//! Fixture builders for tests of pure logic and views: containers as plain structs, a fixed clock.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use crate::engine::model::{
    Container, Health, HealthProbe, LABEL_NUMBER, LABEL_PROJECT, LABEL_SERVICE, Mount,
    NetworkAttachment, Port, State,
};

/// 2026-11-24 03:00:00 UTC: the fixed "now" of view tests.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 3, 0, 0).unwrap()
}

pub fn minutes_ago(m: i64) -> Option<DateTime<Utc>> {
    Some(now() - chrono::Duration::minutes(m))
}

/// A running standalone container with a stable id derived from the name.
pub fn container(name: &str) -> Container {
    let hash = name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    Container {
        id: format!("{hash:016x}{hash:016x}{hash:016x}{hash:016x}"),
        name: name.to_string(),
        project: None,
        service: None,
        number: None,
        state: State::Running,
        health: Health::None,
        exit_code: None,
        oom_killed: false,
        error: None,
        created: minutes_ago(120),
        started_at: minutes_ago(90),
        finished_at: None,
        restart_count: 0,
        restart_policy: "unless-stopped".into(),
        image: "busybox:latest".into(),
        image_id: format!("sha256:{hash:016x}{hash:016x}"),
        command: vec!["httpd".into(), "-f".into()],
        entrypoint: vec![],
        ports: vec![],
        labels: BTreeMap::new(),
        env: vec!["PATH=/usr/bin:/bin".into()],
        mounts: vec![],
        networks: vec![],
        health_log: vec![],
        has_healthcheck: false,
        stop_timeout: None,
    }
}

/// A compose service replica: `project-service-N`.
pub fn replica(project: &str, service: &str, n: u32) -> Container {
    let mut c = container(&format!("{project}-{service}-{n}"));
    c.project = Some(project.into());
    c.service = Some(service.into());
    c.number = Some(n);
    c.labels.insert(LABEL_PROJECT.into(), project.into());
    c.labels.insert(LABEL_SERVICE.into(), service.into());
    c.labels.insert(LABEL_NUMBER.into(), n.to_string());
    c
}

/// The shop demo: web ×2 (one unhealthy), worker, a db with secrets, an exited migration, a standalone.
pub fn shop() -> Vec<Container> {
    let mut web1 = replica("shop", "web", 1);
    web1.image = "shop/web:v2".into();
    web1.health = Health::Healthy;
    web1.has_healthcheck = true;
    web1.ports = vec![Port {
        host_ip: Some("0.0.0.0".into()),
        host_port: Some(8080),
        container_port: 8080,
        protocol: "tcp".into(),
    }];
    web1.health_log = vec![
        HealthProbe {
            start: minutes_ago(1),
            exit_code: 0,
            output: "ok".into(),
        },
        HealthProbe {
            start: Some(now()),
            exit_code: 0,
            output: "ok".into(),
        },
    ];
    let mut web2 = replica("shop", "web", 2);
    web2.image = "shop/web:v2".into();
    web2.health = Health::Unhealthy;
    web2.has_healthcheck = true;
    web2.restart_count = 3;
    web2.started_at = minutes_ago(2);
    web2.health_log = vec![HealthProbe {
        start: Some(now()),
        exit_code: 1,
        output: "wget: server returned error: HTTP/1.1 500 Internal Server Error".into(),
    }];
    let mut worker = replica("shop", "worker", 1);
    worker.image = "shop/worker:v2".into();
    worker.health = Health::Starting;
    worker.has_healthcheck = true;
    let mut db = replica("shop", "db", 1);
    db.image = "postgres:16".into();
    db.env = vec![
        "POSTGRES_USER=shop".into(),
        "POSTGRES_PASSWORD=hunter2".into(),
        "DATABASE_URL=postgres://shop:hunter2@db:5432/shop".into(),
    ];
    db.mounts = vec![Mount {
        kind: "volume".into(),
        source: "shop_pgdata".into(),
        destination: "/var/lib/postgresql/data".into(),
        read_write: true,
    }];
    db.networks = vec![NetworkAttachment {
        network: "shop_default".into(),
        ip: "172.18.0.4".into(),
        aliases: vec!["db".into()],
    }];
    let mut migrate = replica("shop", "migrate", 1);
    migrate.state = State::Exited;
    migrate.exit_code = Some(1);
    migrate.finished_at = minutes_ago(5);
    let mut cron = container("nightly-backup");
    cron.state = State::Exited;
    cron.exit_code = Some(0);
    cron.oom_killed = false;
    cron.finished_at = minutes_ago(300);
    let mut oom = container("reporting");
    oom.state = State::Exited;
    oom.exit_code = Some(137);
    oom.oom_killed = true;
    oom.finished_at = minutes_ago(12);
    vec![web1, web2, worker, db, migrate, cron, oom]
}

/// A mutating plan with `steps` numbered steps that runs nothing (for views and the update function).
pub fn plan(title: &str, subject: &str, steps: usize) -> crate::runbook::Plan {
    crate::runbook::Plan {
        title: title.into(),
        target: "local".into(),
        environment: None,
        action: "restart".into(),
        subject: subject.into(),
        confirm_as: subject.into(),
        confirm_full: subject.into(),
        mutating: true,
        notes: vec!["each container must become healthy within 5 tries × 5.0 s".into()],
        promises: Vec::new(),
        steps: (0..steps)
            .map(|i| {
                crate::runbook::Step::new(
                    format!("step {} of {title}", i + 1),
                    vec![format!("POST /containers/abc/step{i}")],
                )
            })
            .collect(),
        parameters: serde_json::Value::Null,
        variant: None,
        lock: None,
        kind: crate::runbook::PlanKind::Nothing,
    }
}

/// Log lines at fixed times, 250 ms apart from [`now`] minus `n` seconds, round-robin over
/// `sources`: every 7th on stderr, every 10th an ERROR, every 5th a WARN, as the logger fixture writes.
pub fn log_lines(n: usize, sources: u16) -> Vec<crate::logs::LogLine> {
    use crate::logs::{LogLine, StreamKind};
    let start = now().timestamp_nanos_opt().unwrap_or(0) - n as i64 * 1_000_000_000;
    (1..=n)
        .map(|i| {
            let level = match i % 10 {
                0 => "ERROR",
                5 => "WARN",
                _ => "INFO",
            };
            let stream = if i.is_multiple_of(7) {
                StreamKind::Stderr
            } else {
                StreamKind::Stdout
            };
            let text = format!("seq={i} level={level} msg=request handled path=/api/orders/{i}");
            LogLine::new(
                start + i as i64 * 250_000_000,
                (i % sources.max(1) as usize) as u16,
                stream,
                text.as_bytes(),
                0,
            )
        })
        .collect()
}

/// Two readings of one container one second apart, `busy` of a core used in between, 48 MiB.
pub fn stats_readings(container: &str, busy: f64) -> Vec<crate::stats::StatsBatch> {
    use crate::stats::{Method, Sample, StatsBatch};
    [0.0, busy]
        .into_iter()
        .zip([1u64, 2])
        .map(|(used, at)| StatsBatch {
            method: Method::Cgroup {
                detail: "test".into(),
            },
            samples: vec![Sample {
                id: container.into(),
                at: std::time::Duration::from_secs(at),
                cpu_ns: Some((used * 1e9) as u64),
                mem_used: Some(48 << 20),
                mem_limit: Some(1 << 30),
                ..Default::default()
            }],
        })
        .collect()
}

/// A two-node swarm: stack `shop` (web 2/3 mid-update with a failed task, api global), a lone
/// service, and a stack whose label carries escape sequences.
pub fn swarm() -> crate::swarm::Snapshot {
    use crate::swarm::{Mode, NodeInfo, Port as SwarmPort, ServiceInfo, Snapshot, TaskInfo};
    let service =
        |id: &str, name: &str, stack: Option<&str>, mode: Mode, run: u64, want: u64| ServiceInfo {
            id: id.into(),
            name: name.into(),
            stack: stack.map(Into::into),
            mode,
            running: run,
            desired: want,
            image: "shop/web:v2".into(),
            update_state: None,
            update_message: None,
            ports: vec![],
            has_healthcheck: true,
            version: 10,
            updated_at: minutes_ago(5),
        };
    let mut web = service("svcweb", "shop_web", Some("shop"), Mode::Replicated, 2, 3);
    web.update_state = Some("rollback_completed".into());
    web.update_message =
        Some("update rolled back due to failure or early termination of task".into());
    web.ports = vec![SwarmPort {
        published: Some(8080),
        target: 8080,
        protocol: "tcp".into(),
        mode: "ingress".into(),
    }];
    let mut api = service("svcapi", "shop_api", Some("shop"), Mode::Global, 2, 2);
    api.image = "shop/api:1.4".into();
    let mut cron = service("svccron", "cron", None, Mode::Replicated, 1, 1);
    cron.image = "busybox:latest".into();
    let evil = service(
        "svcevil",
        "evil_x",
        Some("ev\u{1b}[2J\u{1b}]0;owned\u{7}il"),
        Mode::Replicated,
        0,
        0,
    );
    let task = |id: &str,
                svc: &str,
                name: &str,
                slot: Option<i64>,
                node: &str,
                state: &str,
                desired: &str| TaskInfo {
        id: id.into(),
        service_id: svc.into(),
        service: name.into(),
        slot,
        node_id: format!("node-{node}"),
        node: node.into(),
        state: state.into(),
        since: minutes_ago(3),
        desired_state: desired.into(),
        error: None,
        message: None,
        container_id: Some(format!("{id:0<64}")),
        image: "shop/web:v2".into(),
        health: Some(Health::Healthy),
        created_at: minutes_ago(4),
    };
    let mut failed = task(
        "t3old",
        "svcweb",
        "shop_web",
        Some(3),
        "vps-2",
        "failed",
        "shutdown",
    );
    failed.error = Some("task: non-zero exit (137): dockerexec: unhealthy container".into());
    failed.image = "shop/web:v3".into();
    failed.health = None;
    failed.created_at = minutes_ago(6);
    let mut pending = task(
        "t3new",
        "svcweb",
        "shop_web",
        Some(3),
        "",
        "pending",
        "running",
    );
    pending.node_id.clear();
    pending.container_id = None;
    pending.health = None;
    let mut remote = task(
        "t2",
        "svcweb",
        "shop_web",
        Some(2),
        "vps-2",
        "running",
        "running",
    );
    remote.health = None;
    let tasks = vec![
        task(
            "t1",
            "svcweb",
            "shop_web",
            Some(1),
            "vps-1",
            "running",
            "running",
        ),
        remote,
        pending,
        failed,
        task(
            "ta1", "svcapi", "shop_api", None, "vps-1", "running", "running",
        ),
        task(
            "ta2", "svcapi", "shop_api", None, "vps-2", "running", "running",
        ),
        task(
            "tc1",
            "svccron",
            "cron",
            Some(1),
            "vps-1",
            "running",
            "running",
        ),
    ];
    let node =
        |host: &str, role: &str, leader: bool, availability: &str, status: &str, tasks: usize| {
            NodeInfo {
                id: format!("node-{host}"),
                hostname: host.into(),
                role: role.into(),
                leader,
                availability: availability.into(),
                status: status.into(),
                engine_version: "27.3.1".into(),
                address: "10.0.0.1".into(),
                tasks,
                cpus: 2.0,
                memory_bytes: 4 << 30,
                version: 3,
            }
        };
    Snapshot {
        services: vec![api, web, cron, evil],
        tasks,
        nodes: vec![
            node("vps-1", "manager", true, "active", "ready", 3),
            node("vps-2", "worker", false, "drain", "down", 2),
        ],
        local_node: Some("node-vps-1".into()),
    }
}
