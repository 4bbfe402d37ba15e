//! A real PostgreSQL server for tests and benchmarks: Debian's `postgresql` binaries,
//! initialised in a temporary directory, listening on a free loopback port, one per test
//! process, with a fresh database for each caller. `scripts/test` installs the package; a
//! machine without it fails the tests that need it, saying so (nothing is skipped).
//!
//! As root, the server runs as the `postgres` user (PostgreSQL refuses root). It dies with
//! the process that started it (a parent-death signal), and the next test process removes
//! the directories of servers whose process is gone.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where the directories of test servers are made, beside one another.
const DIR_PREFIX: &str = "swarmpilot-pg-test-";

/// A PostgreSQL server started for this process.
pub struct TestServer {
    port: u16,
    bin: PathBuf,
    /// The server's process, kept so that it is not reaped by anyone else.
    _child: Child,
    databases: AtomicUsize,
}

impl TestServer {
    /// The server of this process, started on first use; it skips fsync (tests want speed,
    /// not durability).
    pub fn shared() -> &'static TestServer {
        static SERVER: OnceLock<TestServer> = OnceLock::new();
        SERVER.get_or_init(|| TestServer::started(false))
    }

    /// A server with PostgreSQL's durable defaults (fsync on every commit), for benchmarks.
    pub fn durable() -> &'static TestServer {
        static SERVER: OnceLock<TestServer> = OnceLock::new();
        SERVER.get_or_init(|| TestServer::started(true))
    }

    fn started(durable: bool) -> TestServer {
        // Started from a thread that never ends, so that the parent-death signal fires only
        // when the process does.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("test-postgres".into())
            .spawn(move || {
                tx.send(TestServer::start(durable))
                    .expect("the test waits for its server");
                loop {
                    std::thread::park();
                }
            })
            .expect("a thread for the test server");
        match rx.recv().expect("the server thread answers") {
            Ok(server) => server,
            Err(why) => panic!("cannot start a PostgreSQL server for the tests: {why}"),
        }
    }

    /// A URL of a new, empty database on the server.
    pub fn fresh_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{n}");
        let status = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "swarmpilot", &name])
            .status()
            .expect("createdb runs");
        assert!(status.success(), "createdb {name} failed");
        self.url(&name)
    }

    /// The URL of database `name` on the server.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://swarmpilot@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn start(durable: bool) -> Result<TestServer, String> {
        let bin = postgres_bin()?;
        remove_stale_dirs();
        let dir = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}{}",
            std::process::id(),
            if durable { "-durable" } else { "" }
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let user = server_user()?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let output = as_user(Command::new(bin.join("initdb")), user)
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "swarmpilot",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let port = free_port()?;
        let mut command = as_user(Command::new(bin.join("postgres")), user);
        command
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(&dir)
            .args(["-c", if durable { "fsync=on" } else { "fsync=off" }])
            .args(["-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?,
            ));
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| format!("postgres: {e}"))?;
        let server = TestServer {
            port,
            bin,
            _child: child,
            databases: AtomicUsize::new(0),
        };
        server.wait_ready(&dir)?;
        Ok(server)
    }

    /// Waits, with a deadline, until the server answers.
    fn wait_ready(&self, dir: &Path) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                return Err(format!("the server did not answer within 30 s:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The directory of Debian's PostgreSQL server binaries (the newest version installed).
fn postgres_bin() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(
            |_| "no /usr/lib/postgresql: run scripts/test, which installs Debian's postgresql",
        )?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        "no PostgreSQL server under /usr/lib/postgresql: run scripts/test, which installs it"
            .to_string()
    })
}

/// The uid and gid the server runs as: the `postgres` user when this process is root.
fn server_user() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: getuid cannot fail; getpwnam's answer is read before any other call.
    unsafe {
        if libc::getuid() != 0 {
            return Ok(None);
        }
        let pw = libc::getpwnam(c"postgres".as_ptr());
        if pw.is_null() {
            return Err("running as root and no `postgres` user to run the server as".into());
        }
        Ok(Some(((*pw).pw_uid, (*pw).pw_gid)))
    }
}

fn as_user(mut command: Command, user: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Removes the directories of test servers whose process has ended.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let pid = rest.trim_end_matches("-durable");
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
