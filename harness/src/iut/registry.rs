/*!
The process-wide registry of live process groups the harness started.

Every instance registers its process group when it is spawned and leaves
the registry once the group is gone. [`kill_all`] sends SIGKILL to every
registered group: the `run` command calls it when the harness is
interrupted (Ctrl-C, SIGTERM) and before it exits, so no IUT process
outlives the run even when case code never reaches its own cleanup.
*/

use std::collections::BTreeSet;
use std::sync::Mutex;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

static GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

fn groups() -> std::sync::MutexGuard<'static, BTreeSet<i32>> {
    GROUPS.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn register(pgid: i32) {
    groups().insert(pgid);
}

pub fn deregister(pgid: i32) {
    groups().remove(&pgid);
}

/// How many groups are registered.
pub fn live() -> usize {
    groups().len()
}

/// SIGKILL to every registered group. Safe to call from any thread, any
/// number of times.
pub fn kill_all() {
    let all: Vec<i32> = groups().iter().copied().collect();
    for pgid in all {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// Whether any process of group `pgid` is still running (zombies, which
/// only wait to be reaped, do not count). Reads /proc on Linux; elsewhere
/// asks the kernel with signal 0.
pub fn group_alive(pgid: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return killpg(Pid::from_raw(pgid), None).is_ok();
        };
        for e in dir.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // pid (comm) state ppid pgrp ...: comm may hold spaces and
            // parentheses, so parse from the last ')'.
            let Some(close) = stat.rfind(')') else {
                continue;
            };
            let mut fields = stat[close + 1..].split_whitespace();
            let state = fields.next().unwrap_or("");
            let _ppid = fields.next();
            let pgrp = fields.next().and_then(|s| s.parse::<i32>().ok());
            if pgrp == Some(pgid) && state != "Z" && state != "X" {
                return true;
            }
        }
        false
    }
    #[cfg(not(target_os = "linux"))]
    {
        killpg(Pid::from_raw(pgid), None).is_ok()
    }
}
