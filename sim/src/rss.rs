/*!
The process's resident memory, from `/proc/self/status` (Linux): the real
figure behind the estimates of [`p2psip_node::Node::memory`] (allocator
overhead and fragmentation included).
*/

/// Resident set size now (`VmRSS`) and at its peak (`VmHWM`), in bytes;
/// `None` where `/proc` is not there.
pub fn rss() -> (Option<u64>, Option<u64>) {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return (None, None);
    };
    (field(&status, "VmRSS:"), field(&status, "VmHWM:"))
}

/// A `Name:   1234 kB` line, in bytes.
fn field(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let kb: u64 = line[name.len()..]
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kilobyte_fields() {
        let s = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(field(s, "VmRSS:"), Some(1024 * 1024));
        assert_eq!(field(s, "VmHWM:"), Some(2048 * 1024));
        assert_eq!(field(s, "VmSwap:"), None);
        if cfg!(target_os = "linux") {
            let (now, peak) = rss();
            assert!(now.is_some() && peak >= now);
        }
    }
}
