//! Helpers: a scratch directory per test, the `p2psip` binary with a
//! deadline, IUT files for the stub peer, a tiny suite, and process checks.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const P2PSIP: &str = env!("CARGO_BIN_EXE_p2psip");

/// A scratch directory, removed at the end of the test.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::Builder::new()
                .prefix("p2psip-test-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    /// An IUT file running the stub peer with `extra` arguments.
    pub fn stub_iut(&self, name: &str, extra: &[&str]) -> PathBuf {
        let mut cmd: Vec<String> = vec![
            P2PSIP.into(),
            "stub-peer".into(),
            "--listen".into(),
            "{ip}:{port}".into(),
        ];
        cmd.extend(extra.iter().map(|s| s.to_string()));
        self.iut_file(name, &cmd, "")
    }

    /// An IUT file with this argv and extra `[iut]` lines.
    pub fn iut_file(&self, name: &str, argv: &[String], extra: &str) -> PathBuf {
        let quoted: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
        self.write(
            name,
            &format!(
                "[iut]\nname = \"{name}\"\nversion = \"0.0-test\"\ncommand = [{}]\nready_timeout_ms = 2000\nstop_grace_ms = 300\n{extra}",
                quoted.join(", ")
            ),
        )
    }

    /// A shell command as IUT that records its pid (and those of the
    /// children it starts) in `pids`, one per line.
    pub fn shell_iut(&self, name: &str, script: &str) -> PathBuf {
        let pids = self.join("pids");
        let script = script.replace("PIDS", &pids.display().to_string());
        self.iut_file(name, &["sh".into(), "-c".into(), script], "")
    }

    /// `p2psip run --iut IUT --suites DIR/suites --report DIR/out EXTRA...`,
    /// killed after 30 s.
    pub fn run(&self, iut: &Path, extra: &[&str]) -> Output {
        let suites = self.join("suites");
        let out = self.join("out");
        let mut args = vec![
            "run",
            "--iut",
            iut.to_str().unwrap(),
            "--suites",
            suites.to_str().unwrap(),
            "--report",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        p2psip(&args, Duration::from_secs(30))
    }

    pub fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.join("pids"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

/// Runs `p2psip` with `args`, killing it after `limit`.
pub fn p2psip(args: &[&str], limit: Duration) -> Output {
    let child = Command::new(P2PSIP)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    wait_output(child, limit)
}

pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "p2psip ran longer than {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Whether process `pid` still runs (a zombie does not).
pub fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
    }
}

/// Asserts every pid is gone within a second (SIGKILLed processes may
/// take a moment to be reaped by their parent).
pub fn assert_gone(pids: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left: Vec<i32> = pids.iter().copied().filter(|p| running(*p)).collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("processes left behind: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tiny suite: one passing MUST case, one failing MUST case, one
/// failing SHOULD case, one case needing two instances.
pub const TINY: &str = r#"
suite = "tiny"
title = "Tiny"

[[case]]
id = "tiny.options-200"
title = "OPTIONS gets 200"
requirements = ["TXN-4"]
level = "MUST"
desc = "A puppet sends OPTIONS."
expect = "200."
topology = { iut = 1, puppets = ["p"] }
steps = [
  { do = "start", node = "iut1" },
  { do = "send", from = "p", msg = "options" },
  { do = "expect", at = "p", response = 200, checks = ["msg.options-200"] },
]

[[case]]
id = "tiny.options-404"
title = "OPTIONS gets 404 (a wrong expectation: fails)"
requirements = ["TXN-4"]
level = "MUST"
desc = "A puppet sends OPTIONS."
expect = "404 (which no peer answers)."
topology = { iut = 1, puppets = ["p"] }
steps = [
  { do = "start", node = "iut1" },
  { do = "send", from = "p", msg = "options" },
  { do = "expect", at = "p", response = 404, within_ms = 300 },
]

[[case]]
id = "tiny.should-fail"
title = "A SHOULD case that fails"
requirements = ["QUERY-8"]
level = "SHOULD"
desc = "A puppet sends OPTIONS."
expect = "A 302 (which no peer answers)."
topology = { iut = 1, puppets = ["p"] }
steps = [
  { do = "start", node = "iut1" },
  { do = "send", from = "p", msg = "options" },
  { do = "expect", at = "p", response = 302, within_ms = 300 },
]

[[case]]
id = "tiny.two-instances"
title = "Two IUT instances answer OPTIONS"
requirements = ["TXN-4"]
level = "MUST"
desc = "Two instances; a puppet sends OPTIONS to the second."
expect = "200."
topology = { iut = 2, puppets = ["p"] }
steps = [
  { do = "start", nodes = ["iut1", "iut2"] },
  { do = "send", from = "p", to = "iut2", msg = "options" },
  { do = "expect", at = "p", response = 200 },
]
"#;

/// The libtest status of case `id` in `stdout` (`ok`, `FAILED`, `ignored...`).
pub fn status_of(stdout: &str, id: &str) -> String {
    stdout
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("test ")?;
            let (name, status) = rest.split_once(" ... ")?;
            (name.trim() == id).then(|| status.trim().to_string())
        })
        .unwrap_or_default()
}
