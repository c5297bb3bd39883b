//! A real registry for tests: Debian's `docker-registry` (the distribution registry) on a free
//! 127.0.0.1 port, with htpasswd basic auth or none, its storage in a temp dir; images are pushed
//! to it with the docker CLI (the engine treats 127.0.0.0/8 as an insecure registry), and the
//! local copies removed so a later pull really downloads. Dropping it stops the registry.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{OutputWithin, docker_cmd, docker_try, free_port, wait_until};

pub const USER: &str = "deploy";
pub const PASSWORD: &str = "s3cret-pw";

pub struct Registry {
    pub port: u16,
    /// A docker CLI config dir logged in to this registry (for pushes).
    pub docker_config: PathBuf,
    pub auth: bool,
    dir: tempfile::TempDir,
    child: Child,
    pushed: Vec<String>,
}

impl Registry {
    /// Starts a registry; `auth`: htpasswd basic auth with [`USER`] / [`PASSWORD`].
    pub fn start(auth: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .expect("htpasswd (apache2-utils; scripts/ensure-deps.sh installs it)");
            assert!(out.status.success());
            std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .expect("docker-registry (scripts/ensure-deps.sh installs it)");
        let docker_config = dir.path().join("docker");
        std::fs::create_dir_all(&docker_config).unwrap();
        let r = Registry {
            port,
            docker_config,
            auth,
            dir,
            child,
            pushed: vec![],
        };
        assert!(
            wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
                super::http_status(port, "/v2/").is_some()
            }),
            "the registry did not answer on {port}: {}",
            std::fs::read_to_string(r.dir.path().join("registry.log")).unwrap_or_default()
        );
        if auth {
            let mut login = docker_cmd();
            login.arg("--config").arg(&r.docker_config).args([
                "login",
                &r.host(),
                "-u",
                USER,
                "-p",
                PASSWORD,
            ]);
            let out = login.output_within(super::DOCKER_TIMEOUT).unwrap();
            assert!(
                out.status.success(),
                "docker login: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        r
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Writes a docker `config.json` with this registry's login (base64 `auth`) under `home`.
    pub fn login_file(&self, home: &Path, password: &str) {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
        let dir = home.join(".docker");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            format!(
                "{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}",
                self.host()
            ),
        )
        .unwrap();
    }

    /// Builds an image unique to this call (a layer naming `marker` on top of `base`), pushes it
    /// as `127.0.0.1:PORT/repo:tag` and removes every local copy, so a pull must download it.
    /// Pulls `reference` onto the engine through this registry's docker config.
    pub fn pull(&self, reference: &str) {
        let mut pull = docker_cmd();
        pull.arg("--config")
            .arg(&self.docker_config)
            .args(["pull", "-q", reference]);
        let out = pull.output_within(super::DOCKER_TIMEOUT).unwrap();
        assert!(
            out.status.success(),
            "docker pull {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn push_unique(&mut self, base: &str, repo: &str, tag: &str, marker: &str) -> String {
        let reference = format!("{}/{repo}:{tag}", self.host());
        let dockerfile = format!("FROM {base}\nRUN echo {marker} > /berth-marker\n");
        let mut build = docker_cmd();
        build
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "-q", "-t", &reference, "-"]);
        let out = {
            use std::io::Write;
            let mut child = build
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(dockerfile.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        };
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut push = docker_cmd();
        push.arg("--config")
            .arg(&self.docker_config)
            .args(["push", &reference]);
        let out = push.output_within(super::DOCKER_TIMEOUT).unwrap();
        assert!(
            out.status.success(),
            "docker push: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.pushed.push(reference.clone());
        let _ = docker_try(&["rmi", &reference]);
        reference
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in &self.pushed {
            let _ = docker_try(&["rmi", "-f", r]);
        }
    }
}
