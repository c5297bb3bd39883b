use super::*;

/// Engine answers as Docker 20.10 writes them (trimmed to the fields berth reads).
fn fixture() -> Snapshot {
    let services: Vec<Service> = serde_json::from_value(serde_json::json!([
        {
            "ID": "svc1aaaaaaaaaaaa",
            "Version": {"Index": 42},
            "Spec": {
                "Name": "shop_web",
                "Labels": {"com.docker.stack.namespace": "shop"},
                "TaskTemplate": {"ContainerSpec": {"Image": "berth-test/web:v2@sha256:abc"}},
                "Mode": {"Replicated": {"Replicas": 2}}
            },
            "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}]},
            "UpdateStatus": {"State": "rollback_completed", "Message": "update rolled back due to failure"},
            "ServiceStatus": {"RunningTasks": 1, "DesiredTasks": 2}
        },
        {
            "ID": "svc2bbbbbbbbbbbb",
            "Version": {"Index": 7},
            "Spec": {
                "Name": "agent",
                "TaskTemplate": {"ContainerSpec": {"Image": "berth-test/logger:latest",
                    "HealthCheck": {"Test": ["NONE"]}}},
                "Mode": {"Global": {}}
            },
            "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 9000, "PublishedPort": 9000, "PublishMode": "host"}]},
            "ServiceStatus": {"RunningTasks": 1, "DesiredTasks": 1}
        },
        {
            "ID": "svc3cccccccccccc",
            "Spec": {
                "Name": "evil_x",
                "Labels": {"com.docker.stack.namespace": "ev\u{1b}[31mil"},
                "TaskTemplate": {"ContainerSpec": {"Image": "x:1"}},
                "Mode": {"Replicated": {"Replicas": 0}}
            }
        }
    ]))
    .unwrap();
    let tasks: Vec<Task> = serde_json::from_value(serde_json::json!([
        {"ID": "task1new", "ServiceID": "svc1aaaaaaaaaaaa", "Slot": 1, "NodeID": "node1",
         "CreatedAt": "2026-12-02T10:00:00Z",
         "Status": {"Timestamp": "2026-12-02T10:00:05Z", "State": "running", "Message": "started",
                    "ContainerStatus": {"ContainerID": "c1", "PID": 10}},
         "DesiredState": "running",
         "Spec": {"ContainerSpec": {"Image": "berth-test/web:v2@sha256:abc"}}},
        {"ID": "task1old", "ServiceID": "svc1aaaaaaaaaaaa", "Slot": 1, "NodeID": "node1",
         "CreatedAt": "2026-12-01T10:00:00Z",
         "Status": {"Timestamp": "2026-12-02T09:59:00Z", "State": "failed", "Err": "task: non-zero exit (1)",
                    "ContainerStatus": {"ContainerID": "c0"}},
         "DesiredState": "shutdown",
         "Spec": {"ContainerSpec": {"Image": "berth-test/web:bad"}}},
        {"ID": "task2", "ServiceID": "svc1aaaaaaaaaaaa", "Slot": 2, "NodeID": "node1",
         "CreatedAt": "2026-12-02T10:00:00Z",
         "Status": {"State": "starting"}, "DesiredState": "running",
         "Spec": {"ContainerSpec": {"Image": "berth-test/web:v2"}}},
        {"ID": "taskg", "ServiceID": "svc2bbbbbbbbbbbb", "NodeID": "node1",
         "Status": {"State": "running", "ContainerStatus": {"ContainerID": "cg"}}, "DesiredState": "running"}
    ]))
    .unwrap();
    let nodes: Vec<Node> = serde_json::from_value(serde_json::json!([
        {"ID": "node1", "Version": {"Index": 9},
         "Spec": {"Role": "manager", "Availability": "active"},
         "Description": {"Hostname": "vps-1", "Engine": {"EngineVersion": "20.10.24"},
                         "Resources": {"NanoCPUs": 2000000000u64, "MemoryBytes": 4294967296u64}},
         "Status": {"State": "ready", "Addr": "127.0.0.1"},
         "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "127.0.0.1:2377"}}
    ]))
    .unwrap();
    build(&services, &tasks, &nodes)
}

#[test]
fn services_carry_stack_mode_counts_update_and_ports() {
    let snap = fixture();
    let web = snap.service("shop_web").unwrap();
    assert_eq!(web.stack.as_deref(), Some("shop"));
    assert_eq!(web.short_name(), "web");
    assert_eq!(web.mode, Mode::Replicated);
    assert_eq!((web.running, web.desired), (1, 2));
    assert_eq!(
        web.image, "berth-test/web:v2",
        "the digest swarm pins is not shown"
    );
    assert_eq!(web.update_state.as_deref(), Some("rollback_completed"));
    assert_eq!(web.ports[0].short(), "*:8080->80/tcp");
    assert!(!web.fixed_host_port());
    assert!(web.has_healthcheck);
    assert_eq!(web.version, 42);
    let agent = snap.service("agent").unwrap();
    assert_eq!(agent.mode, Mode::Global);
    assert!(agent.fixed_host_port(), "a host-mode published port");
    assert!(!agent.has_healthcheck, "HEALTHCHECK NONE turns it off");
    assert_eq!(agent.ports[0].short(), "*:9000->9000/tcp (host)");
}

#[test]
fn names_find_a_service_a_stack_or_nothing() {
    let snap = fixture();
    assert!(matches!(snap.find("shop_web"), Some(Named::Service(s)) if s.name == "shop_web"));
    assert!(matches!(snap.find("shop/web"), Some(Named::Service(s)) if s.name == "shop_web"));
    assert!(matches!(snap.find("svc1aaaa"), Some(Named::Service(s)) if s.name == "shop_web"));
    assert!(matches!(snap.find("shop"), Some(Named::Stack(n, m)) if n == "shop" && m.len() == 1));
    assert!(snap.find("nope").is_none());
    assert!(snap.find(" ").is_none());
    assert!(snap.service("shop").is_none(), "a stack is not a service");
}

#[test]
fn stacks_group_services_and_lone_services_come_last() {
    let snap = fixture();
    let stacks: Vec<Option<String>> = snap.stacks().into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        stacks,
        vec![Some("ev\u{1b}[31mil".into()), Some("shop".into()), None]
    );
}

#[test]
fn tasks_name_node_state_error_and_the_current_one_first() {
    let snap = fixture();
    let tasks = snap.tasks_of("svc1aaaaaaaaaaaa");
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, vec!["task1new", "task2", "task1old"]);
    assert_eq!(tasks[0].label(), "shop_web.1");
    assert_eq!(tasks[0].node, "vps-1");
    assert_eq!(tasks[0].container_id.as_deref(), Some("c1"));
    assert_eq!(tasks[2].error.as_deref(), Some("task: non-zero exit (1)"));
    assert_eq!(tasks[2].image, "berth-test/web:bad");
    let global = snap.tasks_of("svc2bbbbbbbbbbbb");
    assert_eq!(
        global[0].label(),
        "agent.node1",
        "a global task is named by its node"
    );
}

#[test]
fn nodes_count_the_tasks_wanted_on_them() {
    let snap = fixture();
    let n = &snap.nodes[0];
    assert_eq!(
        (
            n.hostname.as_str(),
            n.role.as_str(),
            n.leader,
            n.availability.as_str()
        ),
        ("vps-1", "manager", true, "active")
    );
    assert_eq!(
        (n.status.as_str(), n.engine_version.as_str()),
        ("ready", "20.10.24")
    );
    assert_eq!(n.tasks, 3, "the failed task is no longer wanted");
    assert_eq!(n.cpus, 2.0);
    assert_eq!(snap.leader(), Some("vps-1"));
}

#[test]
fn task_logs_are_labelled_by_slot_and_earlier_tasks_by_id() {
    let snap = fixture();
    let named = snap.find("shop").unwrap();
    let sources = logs::sources_for(&snap, &named);
    let prefixes: Vec<&str> = sources.iter().map(|s| s.prefix.as_str()).collect();
    assert_eq!(prefixes, vec!["shop_web.1", "shop_web.1~task1o"]);
    assert_eq!(sources[0].id, "task:task1new");
}

#[test]
fn a_worker_says_a_manager_is_needed_and_where() {
    let one = Role::Worker {
        node_id: "n".into(),
        managers: vec!["10.0.0.1:2377".into()],
    };
    let msg = one.manager_needed().unwrap();
    assert!(
        msg.contains("worker") && msg.contains("manager (the leader) is at 10.0.0.1:2377"),
        "{msg}"
    );
    let none = worker_message(&[]);
    assert!(none.contains("no manager is known"), "{none}");
    assert!(Role::None.manager_needed().is_none());
}
