//! A private PostgreSQL cluster for tests: `initdb` in a temporary directory, `pg_ctl start`
//! on a free local port with its own socket directory, a fresh database per test, and
//! `pg_ctl -m fast stop` when the [`PgCluster`] guard is dropped, also while a failing test
//! unwinds. Nothing depends on a system PostgreSQL: only Debian's server binaries
//! (`/usr/lib/postgresql/<version>/bin`, installed by `scripts/test` when missing).
//!
//! `initdb` refuses to run as root, so as root the cluster's directory is given to `nobody`
//! and the server binaries run through `runuser -u nobody`. Authentication is `trust` for the
//! superuser `test`; the server listens on 127.0.0.1 only.
//!
//! Not for production, and not a client: tests connect with their own driver to
//! [`PgCluster::create_database`]'s URL.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser of every test cluster.
pub const USER: &str = "test";

/// Why a cluster could not be started or used.
#[derive(Debug)]
pub struct PgError(pub String);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PgError {}

/// A running private cluster; dropping it stops the server and removes its files.
pub struct PgCluster {
    bin: PathBuf,
    /// Holds `data/`, `sock/` and `server.log`; removed after the server stopped.
    root: tempfile::TempDir,
    port: u16,
    /// `Some(user)` when the server binaries run as another user (we are root).
    run_as: Option<&'static str>,
    stopped: bool,
}

impl PgCluster {
    /// `initdb` and start a new cluster on a free port.
    pub fn start() -> Result<PgCluster, PgError> {
        let bin = server_bin_dir()?;
        let root = tempfile::Builder::new()
            .prefix("auditlog-pg-")
            .tempdir()
            .map_err(|e| PgError(format!("create a temporary directory: {e}")))?;
        let run_as = is_root().then_some("nobody");
        if let Some(user) = run_as {
            let (uid, gid) = user_ids(user)?;
            std::os::unix::fs::chown(root.path(), Some(uid), Some(gid))
                .map_err(|e| PgError(format!("chown {}: {e}", root.path().display())))?;
        }
        let mut cluster = PgCluster {
            bin,
            root,
            port: 0,
            run_as,
            stopped: true,
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-A",
                "trust",
                "-U",
                USER,
                "--no-sync",
                "-E",
                "UTF8",
            ],
        )?;
        let sock = cluster.socket_dir();
        cluster.run("sh", &["-c", &format!("mkdir -p '{}'", path_str(&sock)?)])?;
        // A port another process takes between our probe and the server's bind makes the
        // start fail; try a few.
        let mut last_error = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                cluster.port,
                path_str(&sock)?
            );
            let log = cluster.log_path();
            match cluster.run(
                "pg_ctl",
                &[
                    "-w",
                    "-D",
                    path_str(&data)?,
                    "-l",
                    path_str(&log)?,
                    "-o",
                    &options,
                    "start",
                ],
            ) {
                Ok(_) => {
                    cluster.stopped = false;
                    return Ok(cluster);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| PgError("pg_ctl start failed".into())))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory (`postmaster.pid` is there while it runs).
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.root.path().join("sock")
    }

    fn log_path(&self) -> PathBuf {
        self.root.path().join("server.log")
    }

    /// The server's log so far (for a failing test's message).
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The URL of database `name` (which need not exist).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Create a fresh database and give its URL. `name`: 1-63 of `a-z`, `0-9`, `_`, not
    /// starting with a digit.
    pub fn create_database(&self, name: &str) -> Result<String, PgError> {
        let valid = !name.is_empty()
            && name.len() <= 63
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(PgError(format!("invalid database name {name:?}")));
        }
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(name))
    }

    /// Run one SQL command with `psql` in database `db`; its unaligned, tuples-only output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, PgError> {
        let port = self.port.to_string();
        let output = self.run(
            "psql",
            &[
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                USER,
                "-d",
                db,
                "-c",
                sql,
            ],
        )?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Stop the server now (`pg_ctl -m fast stop`); dropping the guard does it otherwise.
    pub fn stop(&mut self) -> Result<(), PgError> {
        if self.stopped {
            return Ok(());
        }
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-w", "-D", path_str(&data)?, "-m", "fast", "stop"],
        )?;
        self.stopped = true;
        Ok(())
    }

    /// Run a server binary (or `sh`) as the cluster's user; an error names its output.
    fn run(&self, program: &str, args: &[&str]) -> Result<Output, PgError> {
        let program_path = if program == "sh" {
            PathBuf::from("/bin/sh")
        } else {
            self.bin.join(program)
        };
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&program_path);
                command
            }
            None => Command::new(&program_path),
        };
        // The cluster's user may not read the test's working directory.
        command.args(args).current_dir(self.root.path());
        let output = command
            .output()
            .map_err(|e| PgError(format!("run {}: {e}", program_path.display())))?;
        if !output.status.success() {
            return Err(PgError(format!(
                "{program} {args:?} failed ({}): {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        Ok(output)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!(
                "stopping the test PostgreSQL failed: {e}\n{}",
                self.log_text()
            );
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn server_bin_dir() -> Result<PathBuf, PgError> {
    let base = Path::new("/usr/lib/postgresql");
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir(base)
        .map_err(|e| {
            PgError(format!(
                "no PostgreSQL in {} ({e}); run scripts/test, which installs Debian's postgresql",
                base.display()
            ))
        })?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or_else(|| {
        PgError(format!(
            "no initdb under {}/*/bin; run scripts/test, which installs Debian's postgresql",
            base.display()
        ))
    })
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    // The owner of a file we just created is our effective uid.
    match tempfile::NamedTempFile::new().and_then(|file| file.as_file().metadata()) {
        Ok(meta) => meta.uid() == 0,
        Err(_) => false,
    }
}

fn user_ids(user: &str) -> Result<(u32, u32), PgError> {
    let id = |flag: &str| -> Result<u32, PgError> {
        let output = Command::new("id")
            .args([flag, user])
            .output()
            .map_err(|e| PgError(format!("run id {flag} {user}: {e}")))?;
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| PgError(format!("no user {user}")))
    };
    Ok((id("-u")?, id("-g")?))
}

fn free_port() -> Result<u16, PgError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| PgError(format!("find a free port: {e}")))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| PgError(format!("find a free port: {e}")))
}

fn path_str(path: &Path) -> Result<&str, PgError> {
    path.to_str()
        .ok_or_else(|| PgError(format!("path {} is not UTF-8", path.display())))
}
