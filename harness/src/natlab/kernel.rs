/*!
The kernel backend (`backend = "kernel"`): the IUT in its own network
namespace behind nftables masquerade. It is not implemented; cases that
ask for it are skipped with the reason and with what this host would
allow, so a run says plainly why. `nat/README.md` ("Backends") says what
it would and would not emulate, and what it needs that the harness does
not do: start the IUT inside a namespace, and give parties non-loopback
addresses on veth links (the project binds loopback only).
*/

use std::path::{Path, PathBuf};

/// What this host offers a kernel NAT backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// CAP_SYS_ADMIN (create namespaces) in the effective set.
    pub sys_admin: bool,
    /// CAP_NET_ADMIN (veth links, nftables) in the effective set.
    pub net_admin: bool,
    /// The `nft` program, if on PATH.
    pub nft: Option<PathBuf>,
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// The effective capability mask from `/proc/self/status` text.
fn cap_eff(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Host {
    /// Reads the capabilities and looks for `nft`; starts nothing.
    pub fn detect() -> Host {
        let caps = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| cap_eff(&s))
            .unwrap_or(0);
        Host {
            sys_admin: caps & (1 << CAP_SYS_ADMIN) != 0,
            net_admin: caps & (1 << CAP_NET_ADMIN) != 0,
            nft: on_path("nft"),
        }
    }

    pub fn describe(&self) -> String {
        let yes = |b: bool| if b { "yes" } else { "no" };
        format!(
            "CAP_SYS_ADMIN {}, CAP_NET_ADMIN {}, nft {}",
            yes(self.sys_admin),
            yes(self.net_admin),
            self.nft
                .as_ref()
                .map_or("not installed".into(), |p| p.display().to_string())
        )
    }
}

/// Why cases with `backend = "kernel"` are skipped here (always, for now).
pub fn unavailable() -> Option<String> {
    Some(format!(
        "the kernel NAT backend is not implemented (nat/README.md, \"Backends\"): it needs the IUT started inside a network namespace and veth addresses outside 127.0.0.0/8; this host: {}",
        Host::detect().describe()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_read_from_the_status_text() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t0000000000201000\n";
        let caps = cap_eff(status).unwrap();
        assert!(caps & (1 << CAP_NET_ADMIN) != 0);
        assert!(caps & (1 << CAP_SYS_ADMIN) != 0);
        assert_eq!(cap_eff("CapEff:\tzz\n"), None);
        assert_eq!(cap_eff(""), None);
    }

    #[test]
    fn kernel_cases_are_skipped_with_the_host_described() {
        let why = unavailable().unwrap();
        assert!(why.contains("not implemented"), "{why}");
        assert!(why.contains("CAP_NET_ADMIN"), "{why}");
    }
}
