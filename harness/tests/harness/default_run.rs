use std::time::{Duration, Instant};

use p2psip_capture::{Event, read_all};
use serde_json::Value;

use crate::util::*;

/// The README's first command, against the built-in reference node.
#[test]
fn default_run_is_compliant_with_four_reports_and_readable_pcaps() {
    let d = Dir::new();
    let out = d.join("out");
    let started = Instant::now();
    let o = p2psip(
        &["run", "--report", out.to_str().unwrap(), "-q"],
        Duration::from_secs(120),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    eprintln!("default run: {:.1} s", started.elapsed().as_secs_f64());
    for f in ["report.json", "junit.xml", "summary.md", "report.html"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // junit.xml is well-formed XML with one testcase per case.
    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut testcases = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(e)) | Ok(quick_xml::events::Event::Empty(e))
                if e.name().as_ref() == b"testcase" =>
            {
                testcases += 1
            }
            Ok(_) => {}
            Err(e) => panic!("junit.xml is not well-formed: {e}"),
        }
    }
    let r: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(testcases, cases.len());
    assert!(cases.len() >= 40, "{}", cases.len());
    // Every case's pcap holds what its ladder shows.
    for c in cases {
        let ev = &c["evidence"];
        // A skipped case (a role the reference node does not claim) never
        // ran: no packets, only the reason.
        if c["verdict"] == "skip" {
            assert!(!c["detail"].as_str().unwrap().is_empty(), "{}", c["id"]);
            continue;
        }
        let Some(pcap) = ev["pcap"].as_str() else {
            panic!("{} has no pcap", c["id"]);
        };
        let events = read_all(&std::fs::read(out.join(pcap)).unwrap()).unwrap();
        let udp = |e: &&Event| {
            matches!(
                e,
                Event::Datagram {
                    transport: p2psip_capture::Transport::Udp,
                    ..
                }
            )
        };
        let datagrams = events.iter().filter(udp).count();
        let ladder = ev["ladder"].as_array().unwrap();
        let udp_entries = ladder.iter().filter(|l| l["transport"] == "udp").count();
        // UDP: one datagram per ladder entry. TCP: the ladder shows each
        // write, the capture each framed message.
        assert_eq!(datagrams, udp_entries, "{}", c["id"]);
        let tcp_entries = ladder.iter().filter(|l| l["transport"] == "tcp").count();
        let tcp_events = events.len() - datagrams;
        assert_eq!(tcp_entries > 0, tcp_events > 0, "{}", c["id"]);
    }
    // With tshark, a case's pcap dissects as SIP.
    let pcap = out.join("cases/transactions.options-answered-200.pcap");
    match std::process::Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-Y",
            "sip",
            "-T",
            "fields",
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
        ])
        .output()
    {
        Err(_) => eprintln!("tshark not installed: skipping the Wireshark dissection check"),
        Ok(t) => {
            let s = String::from_utf8_lossy(&t.stdout);
            assert!(
                t.status.success(),
                "tshark failed: {}",
                String::from_utf8_lossy(&t.stderr)
            );
            assert!(
                s.contains("OPTIONS") && s.contains("200"),
                "tshark did not dissect SIP:\n{s}"
            );
        }
    }
}
