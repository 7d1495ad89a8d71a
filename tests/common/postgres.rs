//! A throwaway PostgreSQL cluster for the tests: one per test binary, started
//! on first use, a fresh database per test. It listens on 127.0.0.1 on a free
//! port with password authentication, like a real server; the harness itself
//! talks to it over a private Unix socket. Debian's own cluster on 5432, if
//! any, is never used.

use std::io::Write as _;
use std::os::fd::AsFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The superuser's password. `@`, `/` and `:` break a URL's userinfo, which
/// is why the store configuration takes the password in a key of its own.
pub const PASSWORD: &str = "p@ss/wörd:1";
/// The superuser, owner of every test's database.
pub const USER: &str = "scarecrow";
/// PostgreSQL refuses to run as root; as root, the server runs as this user.
const UNPRIVILEGED: &str = "nobody";

/// The binary's cluster, started by the first caller; `None` (after failing
/// under CI or printing SKIPPED) when PostgreSQL is not installed, and the
/// test then returns.
pub fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    // Looked up on every call, so every test that skips says so.
    let bin = server_bin()?;
    Some(CLUSTER.get_or_init(|| Cluster::boot(bin)))
}

/// The highest installed version's bin directory: Debian keeps `initdb` and
/// `pg_ctl` off `PATH`, and several versions may be installed side by side.
fn server_bin() -> Option<PathBuf> {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .filter(|(_, dir)| dir.join("bin/initdb").is_file())
        .max()
        .map(|(_, dir)| dir.join("bin"));
    if found.is_none() {
        super::tools::missing(
            "PostgreSQL (/usr/lib/postgresql/*/bin/initdb)",
            "postgresql",
        );
    }
    found
}

/// The test binary's PostgreSQL server and the directory it lives in.
pub struct Cluster {
    /// The server's bin directory, for a `psql` of the same version.
    pub bin: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// Holds `data/`, `socket/` and `server.log`; the watchdog removes it.
    dir: PathBuf,
    as_root: bool,
    databases: AtomicUsize,
    /// Never waited for: it outlives this process, and its stdin's write
    /// end, never written to, stays open as long as this process lives.
    watchdog: Child,
}

impl Cluster {
    fn boot(bin: PathBuf) -> Cluster {
        let as_root = rustix::process::geteuid().is_root();
        // Kept, not removed on drop: statics are never dropped, so the
        // watchdog removes it.
        let dir = super::scratch("postgres").keep();
        let cluster = Cluster {
            watchdog: watchdog(&dir, server_command(as_root, &bin.join("pg_ctl"), &dir)),
            bin,
            port: super::free_port(),
            dir,
            as_root,
            databases: AtomicUsize::new(0),
        };
        cluster.initdb();
        cluster.start();
        cluster
    }

    fn initdb(&self) {
        let pwfile = self.dir.join("pwfile");
        std::fs::write(&pwfile, PASSWORD).expect("write the password file");
        std::fs::create_dir(self.socket()).expect("create the socket directory");
        if self.as_root {
            run(Command::new("chown")
                .args(["-R", UNPRIVILEGED])
                .arg(&self.dir));
        }
        // Debian's libc-bin ships C.UTF-8; a C locale also holds UTF-8 text.
        let locale = if Path::new("/usr/lib/locale/C.utf8").exists() {
            "--locale=C.UTF-8"
        } else {
            "--no-locale"
        };
        run(self
            .server("initdb")
            .args(["--username", USER, "--pwfile"])
            .arg(&pwfile)
            .args(["--auth-local", "trust", "--auth-host", "scram-sha-256"])
            .args(["--encoding", "UTF8", locale, "--pgdata"])
            .arg(self.data()));
        // Durability is worth nothing in a cluster thrown away after the run.
        let settings = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n",
            self.port,
            self.socket().display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data().join("postgresql.conf"))
            .and_then(|mut f| f.write_all(settings.as_bytes()))
            .expect("append to postgresql.conf");
        // Only these two ways in: the harness's psql over the socket, the
        // code under test over TCP with the password.
        std::fs::write(
            self.data().join("pg_hba.conf"),
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )
        .expect("write pg_hba.conf");
    }

    /// Starts the server (again, after [`Cluster::stop`]) on the same data
    /// and port; returns once it accepts connections.
    pub fn start(&self) {
        let out = self
            .server("pg_ctl")
            .args(["start", "--wait", "--timeout=30", "--pgdata"])
            .arg(self.data())
            .arg("--log")
            .arg(self.log())
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "PostgreSQL did not accept connections within 30 s: {}\n--- {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log().display(),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
    }

    /// Stops the server (fast: open sessions are ended) and waits until it
    /// has.
    pub fn stop(&self) {
        run(self
            .server("pg_ctl")
            .args(["stop", "--wait", "--mode=fast", "--pgdata"])
            .arg(self.data()));
    }

    /// Serves TLS from now on with `cert` and `key` (PEM), for new
    /// connections (a reload, no restart); plain connections stay allowed.
    pub fn serve_tls(&self, cert: &str, key: &str) {
        let (cert_file, key_file) = (
            self.data().join("server.crt"),
            self.data().join("server.key"),
        );
        std::fs::write(&cert_file, cert).expect("write the certificate");
        std::fs::write(&key_file, key).expect("write the key");
        // The server refuses a key others can read.
        run(Command::new("chmod").arg("600").arg(&key_file));
        if self.as_root {
            run(Command::new("chown")
                .arg(UNPRIVILEGED)
                .arg(&cert_file)
                .arg(&key_file));
        }
        // ALTER SYSTEM runs outside a transaction: one statement per call.
        for sql in [
            format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert_file.display()),
            format!("ALTER SYSTEM SET ssl_key_file = '{}'", key_file.display()),
            "ALTER SYSTEM SET ssl = on".to_owned(),
            "SELECT pg_reload_conf()".to_owned(),
        ] {
            self.psql("postgres", &sql);
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.psql("postgres", "SHOW ssl") != "on" {
            assert!(
                std::time::Instant::now() < deadline,
                "TLS did not come on: {}",
                std::fs::read_to_string(self.log()).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// A new, empty database of its own, named after `name`.
    pub fn database(&'static self, name: &str) -> Database {
        let stem: String = name
            .chars()
            .take(40)
            .map(|c| match c {
                'a'..='z' | '0'..='9' => c,
                'A'..='Z' => c.to_ascii_lowercase(),
                _ => '_',
            })
            .collect();
        let name = format!("{stem}_{}", self.databases.fetch_add(1, Ordering::Relaxed));
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        Database {
            url: format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port),
            password: PASSWORD.to_owned(),
            name,
            cluster: self,
        }
    }

    /// Runs `sql` as the superuser over the socket, which trusts it; the
    /// output is tuples only, unaligned, without command tags.
    fn psql(&self, database: &str, sql: &str) -> String {
        let out = run(Command::new(self.bin.join("psql"))
            .arg("--host")
            .arg(self.socket())
            .args(["--port", &self.port.to_string(), "--username", USER])
            .args(["--dbname", database, "--no-psqlrc", "--quiet", "-At"])
            .args(["--set", "ON_ERROR_STOP=1", "--command", sql]));
        out.strip_suffix('\n').unwrap_or(&out).to_owned()
    }

    /// One of the server's tools, run as the user who owns the data. Its
    /// stdout, drained unread, is the watchdog's stdin: a tool still running
    /// when this process dies (initdb, pg_ctl start) holds the watchdog back
    /// until it ends, so no server comes up after the watchdog stopped it.
    /// The server itself writes to its log, not to that pipe.
    fn server(&self, tool: &str) -> Command {
        let pipe = self.watchdog.stdin.as_ref().expect("the watchdog's stdin");
        let cue = pipe.as_fd().try_clone_to_owned();
        let mut command = server_command(self.as_root, &self.bin.join(tool), &self.dir);
        command.stdout(cue.expect("share the watchdog's pipe"));
        command
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("socket")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }
}

/// One test's database on the cluster.
pub struct Database {
    /// `postgres://scarecrow@127.0.0.1:PORT/NAME`, without the password.
    pub url: String,
    pub password: String,
    pub name: String,
    cluster: &'static Cluster,
}

impl Database {
    /// Runs `sql` in this database and returns its rows, one a line, columns
    /// separated by `|`, without the last newline; panics when it fails.
    pub fn psql(&self, sql: &str) -> String {
        self.cluster.psql(&self.name, sql)
    }
}

fn server_command(as_root: bool, program: &Path, dir: &Path) -> Command {
    let mut command = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", UNPRIVILEGED, "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    // The server's user may not enter the caller's working directory.
    command.current_dir(dir);
    command
}

/// Stops the server and removes `dir` when this process ends. A test binary
/// that passes, panics or is killed runs no destructor of a static, and the
/// server, detached by pg_ctl, would outlive it. The watchdog waits for the
/// end of its stdin, which comes when the kernel has closed every write end:
/// this process's, however it ended, and those of the tools it ran. It is a
/// process group of its own, so a Ctrl-C to the tests leaves it running.
fn watchdog(dir: &Path, pg_ctl: Command) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(r#"cat >/dev/null; dir=$1; shift; "$@" stop --mode=immediate --pgdata "$dir/data"; rm -rf "$dir""#)
        .arg("postgres-watchdog")
        .arg(dir)
        .arg(pg_ctl.get_program())
        .args(pg_ctl.get_args())
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start the PostgreSQL watchdog")
}

/// Runs `command` to success and returns its stdout; panics with its stderr.
fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", command.get_program()));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
