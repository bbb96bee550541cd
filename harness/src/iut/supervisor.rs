/*!
One running instance of an implementation (or of the reference node):
spawned from its command template in its own process group, its stdout
and stderr captured line by line (a bounded ring of timestamped lines,
also appended to `iut.log` in its fresh data directory), its exit noticed
at once, and stopped with SIGTERM to the group, a grace period, then
SIGKILL, always reaped.

Readiness (TXN-4: an OPTIONS probe answered 200) is the caller's job,
since probes go through a case's recorded sockets ([`crate::probe`]).

Nothing here outlives the harness: every group is in the
[`registry`](super::registry) from spawn until it is gone, and dropping
an [`Instance`] that was not stopped kills its group.
*/

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::file::{IutSpec, StopMode};
use super::params::Params;
use super::registry;
use super::template::Template;

/// Lines kept per instance.
const LOG_CAP: usize = 5_000;
/// Characters kept per line.
const LINE_CAP: usize = 4_000;

/// Where and how to start one instance.
#[derive(Debug, Clone)]
pub struct Launch {
    /// `iut1`, `ref2`: names the instance in logs and evidence.
    pub label: String,
    /// `{ip}:{port}`.
    pub addr: SocketAddr,
    /// `{bootstrap}`: empty for the first peer.
    pub bootstrap: Option<SocketAddr>,
    /// `{advertise}`: the public address; `{ip}:{port}` when `None`.
    pub advertise: Option<SocketAddr>,
    pub params: Params,
    /// Reuse this data directory (a restart) instead of a fresh one.
    pub data_dir: Option<Arc<tempfile::TempDir>>,
}

/// Why an instance could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot create a data directory: {0}")]
    DataDir(std::io::Error),
    #[error("cannot start {program:?}: {source}")]
    Exec {
        program: String,
        source: std::io::Error,
    },
}

/// One captured output line.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub at: Instant,
    /// `out` or `err`.
    pub stream: &'static str,
    pub text: String,
}

/// The captured output of one instance.
pub struct LogRing {
    lines: Mutex<VecDeque<LogLine>>,
    file: Mutex<Option<std::fs::File>>,
    dropped: Mutex<usize>,
}

impl LogRing {
    fn new(file: Option<std::fs::File>) -> LogRing {
        LogRing {
            lines: Mutex::new(VecDeque::new()),
            file: Mutex::new(file),
            dropped: Mutex::new(0),
        }
    }

    fn push(&self, stream: &'static str, mut text: String) {
        if text.len() > LINE_CAP {
            let cut = crate::text::floor_boundary(&text, LINE_CAP);
            text.truncate(cut);
            text.push_str(" [...]");
        }
        if let Some(f) = self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = writeln!(f, "{stream}: {text}");
        }
        let mut g = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() == LOG_CAP {
            g.pop_front();
            *self.dropped.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
        g.push_back(LogLine {
            at: Instant::now(),
            stream,
            text,
        });
    }

    /// Lines captured at or after `since`.
    pub fn since(&self, since: Instant) -> Vec<LogLine> {
        let g = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        g.iter().filter(|l| l.at >= since).cloned().collect()
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let g = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        g.iter().skip(g.len().saturating_sub(n)).cloned().collect()
    }
}

/// How an instance ended, in words: `exit code 3`, `killed by signal 9 (SIGKILL)`.
pub fn describe_status(st: &ExitStatus) -> String {
    if let Some(c) = st.code() {
        return format!("exit code {c}");
    }
    if let Some(s) = st.signal() {
        let name = Signal::try_from(s).map(|s| s.as_str()).unwrap_or("?");
        return format!("killed by signal {s} ({name})");
    }
    format!("{st}")
}

/// A started instance.
pub struct Instance {
    pub label: String,
    pub addr: SocketAddr,
    pub argv: Vec<String>,
    pub started: Instant,
    pgid: i32,
    exit: watch::Receiver<Option<ExitStatus>>,
    logs: Arc<LogRing>,
    data_dir: Arc<tempfile::TempDir>,
    readers: Vec<JoinHandle<()>>,
    /// Stopped (or killed) on purpose: the group is gone and reaped.
    finished: bool,
}

impl Instance {
    /// Expands the command template for `launch` and starts it in its
    /// own process group. Must run inside a tokio runtime.
    pub fn spawn(spec: &IutSpec, launch: &Launch) -> Result<Instance, SpawnError> {
        let data_dir = match &launch.data_dir {
            Some(d) => d.clone(),
            None => Arc::new(
                tempfile::Builder::new()
                    .prefix(&format!("p2psip-{}-", launch.label))
                    .tempdir()
                    .map_err(SpawnError::DataDir)?,
            ),
        };
        let values = values(launch, data_dir.path());
        let (argv, mut cmd) = command(&spec.command, &spec.env, &values);
        // Explicit: the group is killed and reaped by stop/Drop.
        cmd.kill_on_drop(false);
        let mut child = cmd.spawn().map_err(|source| SpawnError::Exec {
            program: argv[0].clone(),
            source,
        })?;
        // A child that has not been waited for always has an id.
        let pid = child.id().expect("a fresh child has a pid") as i32;
        registry::register(pid);
        let log_file = std::fs::File::create(data_dir.path().join("iut.log")).ok();
        let logs = Arc::new(LogRing::new(log_file));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(read_lines(out, "out", logs.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(read_lines(err, "err", logs.clone())));
        }
        tracing::info!(label = %launch.label, pid, argv = %argv.join(" "), "instance started");
        let (tx, rx) = watch::channel(None);
        tokio::spawn(async move {
            let st = child.wait().await;
            // wait() only fails if the child was already reaped elsewhere.
            let _ = tx.send(Some(st.unwrap_or_else(|_| ExitStatus::from_raw(0))));
        });
        Ok(Instance {
            label: launch.label.clone(),
            addr: launch.addr,
            argv,
            started: Instant::now(),
            pgid: pid,
            exit: rx,
            logs,
            data_dir,
            readers,
            finished: false,
        })
    }

    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    pub fn data_dir(&self) -> &Arc<tempfile::TempDir> {
        &self.data_dir
    }

    pub fn log_path(&self) -> PathBuf {
        self.data_dir.path().join("iut.log")
    }

    pub fn logs(&self) -> &LogRing {
        &self.logs
    }

    /// A receiver that sees the exit status once the main process exits.
    pub fn exit_watch(&self) -> watch::Receiver<Option<ExitStatus>> {
        self.exit.clone()
    }

    /// The exit status, once the main process has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.borrow()
    }

    /// Resolves when the main process exits.
    pub async fn exited(&self) -> ExitStatus {
        let mut rx = self.exit.clone();
        loop {
            if let Some(st) = *rx.borrow_and_update() {
                return st;
            }
            if rx.changed().await.is_err() {
                // The waiter task is gone (runtime shutdown): report as killed.
                return ExitStatus::from_raw(9);
            }
        }
    }

    async fn exited_within(&self, d: Duration) -> Option<ExitStatus> {
        tokio::time::timeout(d, self.exited()).await.ok()
    }

    /// Stops the instance: SIGTERM to the group and up to `grace` for it
    /// to exit (with [`StopMode::Sigterm`]), then SIGKILL to the group;
    /// waits until it is reaped and its group is empty. Returns the exit
    /// status of the main process and whether it exited before SIGKILL.
    pub async fn stop(&mut self, mode: StopMode, grace: Duration) -> (Option<ExitStatus>, bool) {
        let pg = Pid::from_raw(self.pgid);
        let mut graceful = self.exit_status().is_some();
        if !graceful && mode == StopMode::Sigterm {
            let _ = killpg(pg, Signal::SIGTERM);
            graceful = self.exited_within(grace).await.is_some();
        }
        // Always: stragglers of the group go too.
        let _ = killpg(pg, Signal::SIGKILL);
        let st = self.exited_within(Duration::from_secs(10)).await;
        let gone_by = Instant::now() + Duration::from_secs(5);
        while registry::group_alive(self.pgid) && Instant::now() < gone_by {
            let _ = killpg(pg, Signal::SIGKILL);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Output readers end at EOF once every writer is gone; give them a
        // moment to drain the last lines.
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_millis(500), r).await;
        }
        registry::deregister(self.pgid);
        self.finished = true;
        tracing::info!(
            label = %self.label,
            status = %st.as_ref().map_or("not reaped".to_string(), describe_status),
            graceful,
            "instance stopped"
        );
        (st, graceful)
    }

    /// SIGKILL now (a failure of the peer, as a case's `kill` step means).
    pub async fn kill(&mut self) -> Option<ExitStatus> {
        self.stop(StopMode::Sigkill, Duration::ZERO).await.0
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if !self.finished {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
            registry::deregister(self.pgid);
        }
        for r in &self.readers {
            r.abort();
        }
    }
}

/// Why the IUT's `register_command` did not register.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the IUT file has no register_command (and the case needs one)")]
    NoCommand,
    #[error("cannot start {program:?}: {source}")]
    Exec {
        program: String,
        source: std::io::Error,
    },
    #[error("register_command failed ({status}): {output}")]
    Failed { status: String, output: String },
    #[error("register_command did not finish within {0:?}")]
    Timeout(Duration),
}

/// Runs the IUT file's `register_command` for the instance `launch`
/// describes (RES-4: how an IUT without the adapter role is made to
/// register `aor` at `contact`). Exit status 0 means accepted. The
/// command runs in its own process group, killed at `timeout`.
pub async fn register(
    spec: &IutSpec,
    launch: &Launch,
    data_dir: &Path,
    aor: &str,
    contact: &str,
    timeout: Duration,
) -> Result<(), RegisterError> {
    let Some(template) = &spec.register_command else {
        return Err(RegisterError::NoCommand);
    };
    let mut v = values(launch, data_dir);
    v.insert("aor", aor.to_string());
    v.insert("contact", contact.to_string());
    let (argv, mut cmd) = command(template, &spec.env, &v);
    cmd.kill_on_drop(true);
    let child = cmd.spawn().map_err(|source| RegisterError::Exec {
        program: argv[0].clone(),
        source,
    })?;
    let pgid = child.id().map(|p| p as i32);
    if let Some(p) = pgid {
        registry::register(p);
    }
    let out = tokio::time::timeout(timeout, child.wait_with_output()).await;
    if let Some(p) = pgid {
        let _ = killpg(Pid::from_raw(p), Signal::SIGKILL);
        registry::deregister(p);
    }
    match out {
        Err(_) => Err(RegisterError::Timeout(timeout)),
        Ok(Err(source)) => Err(RegisterError::Exec {
            program: argv[0].clone(),
            source,
        }),
        Ok(Ok(o)) if o.status.success() => Ok(()),
        Ok(Ok(o)) => Err(RegisterError::Failed {
            status: describe_status(&o.status),
            output: String::from_utf8_lossy(&[o.stdout, o.stderr].concat())
                .chars()
                .take(2000)
                .collect(),
        }),
    }
}

/// The expanded argv and a command running it with `env` added, output
/// piped, stdin closed, in its own process group (so stopping it reaches
/// every process it starts).
fn command(
    argv: &[Template],
    env: &[(String, Template)],
    values: &HashMap<&'static str, String>,
) -> (Vec<String>, tokio::process::Command) {
    let argv: Vec<String> = argv.iter().map(|t| t.expand(values)).collect();
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, t) in env {
        cmd.env(k, t.expand(values));
    }
    (argv, cmd)
}

fn values(l: &Launch, data_dir: &Path) -> HashMap<&'static str, String> {
    let p = &l.params;
    let mut v = HashMap::new();
    v.insert("ip", l.addr.ip().to_string());
    v.insert("port", l.addr.port().to_string());
    v.insert(
        "bootstrap",
        l.bootstrap.map(|b| b.to_string()).unwrap_or_default(),
    );
    v.insert("overlay", p.overlay.clone());
    v.insert("replicas", p.replicas.to_string());
    v.insert("successors", p.successors.to_string());
    v.insert("stabilize_ms", p.stabilize_ms.to_string());
    v.insert("fix_fingers_ms", p.fix_fingers_ms.to_string());
    v.insert("keepalive_ms", p.keepalive_ms.to_string());
    v.insert("expires_s", p.expires_s.to_string());
    v.insert("t1_ms", p.t1_ms.to_string());
    v.insert("data_dir", data_dir.display().to_string());
    v.insert("advertise", l.advertise.unwrap_or(l.addr).to_string());
    v
}

async fn read_lines(r: impl AsyncRead + Unpin, stream: &'static str, logs: Arc<LogRing>) {
    let mut r = BufReader::new(r);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let chunk = match r.fill_buf().await {
            Ok([]) | Err(_) => {
                if !line.is_empty() {
                    logs.push(stream, String::from_utf8_lossy(&line).into_owned());
                }
                return;
            }
            Ok(c) => c,
        };
        let (take, end) = match memchr_nl(chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        // Bounded: a line that never ends is cut at LINE_CAP bytes.
        let room = (LINE_CAP + 8).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..take.min(room)]);
        r.consume(take);
        if end || line.len() >= LINE_CAP + 8 {
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            logs.push(stream, String::from_utf8_lossy(&line).into_owned());
            line.clear();
        }
    }
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|c| *c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cmd: &[&str]) -> IutSpec {
        let list: Vec<String> = cmd.iter().map(|c| format!("{c:?}")).collect();
        IutSpec::parse(
            &format!(
                "[iut]\nname = \"t\"\ncommand = [\"x\"]\nregister_command = [{}]\n",
                list.join(", ")
            ),
            "t.toml",
        )
        .unwrap()
    }

    #[tokio::test]
    async fn register_command_exit_status_decides() {
        let launch = Launch {
            label: "iut1".into(),
            addr: "127.1.2.3:4000".parse().unwrap(),
            bootstrap: None,
            advertise: None,
            params: Params::default(),
            data_dir: None,
        };
        let dir = std::env::temp_dir();
        let t = Duration::from_secs(5);
        let ok = spec(&[
            "sh",
            "-c",
            "test \"$0 $1 $2\" = \"sip:a@b <sip:a@1.2.3.4> 127.1.2.3:4000\"",
            "{aor}",
            "{contact}",
            "{ip}:{port}",
        ]);
        register(&ok, &launch, &dir, "sip:a@b", "<sip:a@1.2.3.4>", t)
            .await
            .unwrap();
        let bad = spec(&["sh", "-c", "echo refused; exit 4"]);
        let e = register(&bad, &launch, &dir, "sip:a@b", "x", t)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("exit code 4") && e.contains("refused"), "{e}");
        let slow = spec(&["sleep", "10"]);
        let e = register(&slow, &launch, &dir, "a", "b", Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(e, RegisterError::Timeout(_)));
    }
}
