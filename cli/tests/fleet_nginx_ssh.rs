//! Fleet sync to a real nginx through a real `sshd` on loopback: the test
//! starts `/usr/sbin/sshd` (Debian's openssh-server) as a child with its
//! own host key and authorized key, and nginx on a prefix directory whose
//! name is hostile to a shell; the fleet file names that prefix as
//! `ssh://USER@127.0.0.1:PORT/...`, so every step (read, stage, `nginx -t`,
//! swap, reload, verify, rollback) goes through the `ssh` client. sshd and
//! nginx are stopped when the test ends (guards kill them on drop).

use crate::support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::gateways::{
    example, free_port, get, never_applied_plan, nginx_boot as boot, nginx_managed as managed,
    wait_for,
};
use support::{both, gatefold, json, scratch, text, LIMIT};

/// A prefix name with a quote, spaces and `$( )`: quoted wrongly anywhere
/// in a remote command, it breaks the step or runs `touch`. (No `;`: the
/// Lua module path nginx is given splits on it, whoever quotes it.)
const HOSTILE: &str = "it's a $(touch PWNED) dir";

/// `sshd -D` on 127.0.0.1, killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    /// Options for `ssh` (the fleet file's `ssh-options`).
    options: Vec<String>,
    /// sshd's log (`-e`, level INFO: one line per login).
    log: PathBuf,
}

impl Sshd {
    /// The logins sshd has accepted so far.
    fn logins(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen failed");
}

fn user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    text(&out.stdout).trim().to_string()
}

impl Sshd {
    fn start(dir: &Path) -> Sshd {
        let sshd = Path::new("/usr/sbin/sshd");
        assert!(
            sshd.exists(),
            "/usr/sbin/sshd is missing: run scripts/install-runtimes.sh (it installs openssh-server)"
        );
        let dir = dir.join("ssh");
        std::fs::create_dir_all(&dir).unwrap();
        keygen(&dir.join("host_key"));
        keygen(&dir.join("id"));
        std::fs::copy(dir.join("id.pub"), dir.join("authorized_keys")).unwrap();
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let port = free_port().port();
        let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let mut words = host_pub.split_whitespace();
        let (kind, key) = (words.next().unwrap(), words.next().unwrap());
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {kind} {key}\n"),
        )
        .unwrap();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
             PidFile {d}/sshd.pid\nUsePAM no\nStrictModes no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nAllowTcpForwarding yes\nLogLevel INFO\n",
            d = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config).unwrap();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let options: Vec<String> = [
            "-F",
            "/dev/null",
            "-i",
            &dir.join("id").display().to_string(),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            &format!("UserKnownHostsFile={}", dir.join("known_hosts").display()),
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "LogLevel=ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut sshd = Sshd {
            child,
            port,
            options,
            log: dir.join("sshd.log"),
        };
        // Ready once a login runs a command.
        let deadline = Instant::now() + LIMIT;
        loop {
            let ok = Command::new("ssh")
                .args(&sshd.options)
                .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"])
                .arg("-p")
                .arg(port.to_string())
                .arg(format!("{}@127.0.0.1", user()))
                .arg("true")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            if ok.status.success() {
                break;
            }
            if let Ok(Some(status)) = sshd.child.try_wait() {
                panic!(
                    "sshd exited ({status}): {}",
                    std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not accept a login: {}",
                both(&ok)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        sshd
    }
}

fn fleet_file(dir: &Path, spec: &Path, prefix: &Path, listen: SocketAddr, sshd: &Sshd) -> String {
    let options: Vec<String> = sshd.options.iter().map(|o| format!("{o:?}")).collect();
    let gateway = format!(
        "nginx-1:\n  provider: nginx\n  config-dir: {:?}\n  listen: \"{listen}\"\n  ssh-options: [{}]",
        format!("ssh://{}@127.0.0.1:{}{}", user(), sshd.port, prefix.display()),
        options.join(", ")
    );
    let path = support::write_fleet(dir, spec, [gateway], "");
    path.to_str().unwrap().to_string()
}

fn run(args: &[&str]) -> std::process::Output {
    gatefold(args, &[], &[])
}

/// No `touch PWNED` ran anywhere a hostile name could have been expanded:
/// the remote login's directories, or anywhere under the scratch folder
/// (the steps `cd` into the prefix and its `.gatefold/`).
fn no_injection(dir: &Path) {
    fn walk(d: &Path) {
        assert!(
            !d.join("PWNED").exists(),
            "a path ran as a command in {d:?}"
        );
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path());
            }
        }
    }
    walk(dir);
    let home = std::env::var("HOME").unwrap_or_default();
    for d in [PathBuf::from(home), PathBuf::from("/")] {
        assert!(
            !d.join("PWNED").exists(),
            "a path ran as a command in {d:?}"
        );
    }
}

/// Plan, apply and verify, no false changes, a spec change with its
/// semantic diff, a hand edit on the remote shown as drift, and a rollback
/// that puts the files back byte for byte, all over SSH.
#[test]
fn nginx_over_ssh_plan_apply_drift_and_rollback() {
    let dir = scratch("nginx-ssh-cycle");
    let sshd = Sshd::start(&dir);
    let prefix = dir.join(HOSTILE);
    let listen = free_port();
    let _nginx = boot(&prefix, &example().replace("[rex, tom]", "[boot]"), listen);
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let fleet = fleet_file(&dir, &spec, &prefix, listen, &sshd);

    let first = never_applied_plan(&run(&["plan", &fleet, "--format", "json"]));

    let out = run(&["apply", &fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(get(listen, "localhost", "/pets").1.contains("tom"));
    assert_eq!(
        get(listen, "gatefold-version.invalid", "/.gatefold/version"),
        (200, first.clone())
    );
    assert!(prefix.join(".gatefold/manifest.json").is_file());
    assert!(prefix
        .join(".gatefold/previous/set/conf/nginx.conf")
        .is_file());

    let out = run(&["plan", &fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = run(&["drift", &fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // A spec change: exit 2 with the route's semantic diff, then applied.
    // Its new upstream is a host name, resolved per request with the DNS
    // servers of the remote host's /etc/resolv.conf (`resolver.conf`,
    // written over SSH). Its route is not asked: the query would leave
    // the machine.
    let first_files = managed(&prefix);
    let changed = example().replace("[rex, tom]", "[rex, tom, kit]").replace(
        "apis:\n",
        "upstreams:\n  gone:\n    targets:\n      - url: http://gatefold-nowhere.invalid:80\n\napis:\n  gone:\n    upstream: gone\n    routes:\n      all: { path: /gone, methods: [GET] }\n",
    );
    std::fs::write(&spec, changed).unwrap();
    let logins = sshd.logins();
    let out = run(&["plan", &fleet]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    // Each run's steps share one connection: one login per run.
    assert_eq!(
        sshd.logins(),
        logins + 1,
        "the plan logged in more than once"
    );
    let plan = text(&out.stdout);
    assert!(plan.contains("pets.list") && plan.contains("kit"), "{plan}");
    assert!(!plan.contains("hello.hello"), "only pets changed:\n{plan}");
    let out = run(&["apply", &fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        sshd.logins(),
        logins + 2,
        "the apply logged in more than once"
    );
    assert!(get(listen, "localhost", "/pets").1.contains("kit"));
    let resolver = std::fs::read_to_string(prefix.join("resolver.conf")).unwrap();
    assert!(resolver.starts_with("resolver "), "{resolver}");

    // A hand edit on the remote host: drift.
    let conf = prefix.join("conf/nginx.conf");
    let applied = std::fs::read(&conf).unwrap();
    let mut edited = applied.clone();
    edited.extend_from_slice(b"# edited by hand\n");
    std::fs::write(&conf, &edited).unwrap();
    let out = run(&["drift", &fleet, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert_eq!(json(&out)["gateways"][0]["state"], "drift");

    // Undo it, roll back: the files of the first apply, byte for byte.
    std::fs::write(&conf, &applied).unwrap();
    let out = run(&["rollback", &fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(managed(&prefix), first_files, "not back byte for byte");
    let body = wait_for(listen, "/pets", "tom");
    assert!(!body.contains("kit"), "{body}");
    assert_eq!(
        get(listen, "gatefold-version.invalid", "/.gatefold/version").1,
        first
    );
    no_injection(&dir);
    drop(sshd);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A staged config that the remote `nginx -t` refuses leaves the old one
/// serving; with sshd stopped, the gateway is reported unreachable and
/// nothing on it changes.
#[test]
fn a_refused_config_and_an_unreachable_host_change_nothing() {
    let dir = scratch("nginx-ssh-faults");
    let sshd = Sshd::start(&dir);
    let prefix = dir.join(HOSTILE);
    let listen = free_port();
    let _nginx = boot(&prefix, &example(), listen);
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, example()).unwrap();
    let fleet = fleet_file(&dir, &spec, &prefix, listen, &sshd);
    let out = run(&["apply", &fleet, "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let before = managed(&prefix);
    let manifest = std::fs::read(prefix.join(".gatefold/manifest.json")).unwrap();

    let refused = example().replace(
        "apis:\n",
        "upstreams:\n  busy:\n    targets:\n      - url: http://127.0.0.1:9\n\napis:\n  busy:\n    upstream: busy\n    routes:\n      all:\n        path: /busy\n        methods: [GET]\n        policies:\n          - native: { nginx: { directives: [\"proxy_busy_buffers_size 1m;\"] } }\n",
    );
    std::fs::write(&spec, &refused).unwrap();
    let out = run(&["apply", &fleet, "--yes"]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    let all = both(&out);
    assert!(all.contains("nginx -t"), "{all}");
    assert!(all.contains("proxy_busy_buffers_size"), "{all}");
    assert_eq!(managed(&prefix), before, "a refused config changed files");
    assert!(get(listen, "localhost", "/pets").1.contains("tom"));
    let out = run(&["drift", &fleet]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // sshd stopped: unreachable, within the connect timeout, untouched.
    drop(sshd);
    std::fs::write(&spec, example().replace("[rex, tom]", "[rex, tom, kit]")).unwrap();
    let started = Instant::now();
    let out = run(&["plan", &fleet]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(text(&out.stdout).contains("unreachable"), "{}", both(&out));
    let out = run(&["apply", &fleet, "--yes", "--format", "json"]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert!(both(&out).contains("unreachable"), "{}", both(&out));
    assert!(started.elapsed() < Duration::from_secs(60), "ssh hung");
    assert_eq!(managed(&prefix), before, "an unreachable host was changed");
    assert_eq!(
        std::fs::read(prefix.join(".gatefold/manifest.json")).unwrap(),
        manifest
    );
    assert!(get(listen, "localhost", "/pets").1.contains("tom"));
    no_injection(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}
