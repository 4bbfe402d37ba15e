//! A real PostgreSQL server for tests and benchmarks: Debian's `postgresql` binaries,
//! initialised in a temporary directory of its own (0700), listening only on a Unix socket
//! there (no port to race for, and no one else can reach its trusting authentication), one
//! per test process, with a fresh database for each caller. `scripts/test` installs the package; a
//! machine without it fails the tests that need it, saying so (nothing is skipped).
//!
//! As root, the server runs as the `postgres` user (PostgreSQL refuses root). It dies with
//! the process that started it (a parent-death signal), and the next test process removes
//! the directories of servers whose process is gone.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where the directories of test servers are made, beside one another.
const DIR_PREFIX: &str = "swarmpilot-pg-test-";

/// A PostgreSQL server started for this process.
pub struct TestServer {
    /// The directory of its socket.
    dir: PathBuf,
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
            .arg("-h")
            .arg(&self.dir)
            .args(["-U", "swarmpilot", &name])
            .status()
            .expect("createdb runs");
        assert!(status.success(), "createdb {name} failed");
        self.url(&name)
    }

    /// The URL of database `name` on the server (its socket's directory, percent-encoded,
    /// as the host).
    pub fn url(&self, name: &str) -> String {
        let host: String = self
            .dir
            .to_string_lossy()
            .chars()
            .map(|c| match c {
                '/' => "%2F".to_string(),
                c => c.to_string(),
            })
            .collect();
        format!("postgres://swarmpilot@{host}/{name}")
    }

    fn start(durable: bool) -> Result<TestServer, String> {
        let bin = postgres_bin()?;
        remove_stale_dirs();
        let mut random = [0u8; 6];
        getrandom::fill(&mut random).map_err(|e| e.to_string())?;
        let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}-{suffix}{}",
            std::process::id(),
            if durable { "-durable" } else { "" }
        ));
        // A new directory, the owner's alone: never one that was there (or a link).
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let user = server_user()?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        let data = dir.join("data");
        let output = as_user(Command::new(bin.join("initdb")), user)
            .current_dir(&dir)
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
        let mut command = as_user(Command::new(bin.join("postgres")), user);
        command
            .current_dir(&dir)
            .arg("-D")
            .arg(&data)
            .args(["-c", "listen_addresses=", "-k"])
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
        let mut child = command.spawn().map_err(|e| format!("postgres: {e}"))?;
        wait_ready(&bin, &dir, &mut child)?;
        Ok(TestServer {
            dir,
            bin,
            _child: child,
            databases: AtomicUsize::new(0),
        })
    }
}

/// Waits, with a deadline, until the server in `dir` answers; fails at once if it exits.
fn wait_ready(bin: &Path, dir: &Path, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let log = || std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    loop {
        let ready = Command::new(bin.join("pg_isready"))
            .arg("-h")
            .arg(dir)
            .arg("-q")
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the server exited ({status}):\n{}", log()));
        }
        if Instant::now() > deadline {
            return Err(format!("the server did not answer within 30 s:\n{}", log()));
        }
        std::thread::sleep(Duration::from_millis(50));
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
        let pid = rest.split('-').next().unwrap_or_default();
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
