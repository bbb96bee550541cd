//! `p2psip pcap check` and `p2psip pcap replay` on the committed sample
//! captures (vectors/pcap): verdicts, exit codes, reports, and that a
//! replay reaps every instance it started.

#[allow(dead_code)]
#[path = "harness/util.rs"]
mod util;

use std::path::PathBuf;
use std::time::Duration;

use p2psip_harness::iut::NODE_ARGS;
use serde_json::Value;
use util::*;

/// The samples' timers (vectors/pcap/README.md).
const TIMERS: &[&str] = &[
    "--t1-ms",
    "50",
    "--stabilize-ms",
    "1000",
    "--keepalive-ms",
    "2000",
];

/// The client of the sample scenario that queries one peer every 50 ms.
const CLIENT: &str = "127.119.200.253:50361";

fn sample(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/pcap")
        .join(name)
        .display()
        .to_string()
}

fn check(file: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["pcap", "check", file];
    args.extend_from_slice(TIMERS);
    args.extend_from_slice(extra);
    p2psip(&args, Duration::from_secs(60))
}

/// `p2psip pcap replay clean.pcap EXTRA...`, killed after `limit`.
fn replay_clean(extra: &[&str], limit: Duration) -> std::process::Output {
    let clean = sample("clean.pcap");
    let mut args = vec!["pcap", "replay", clean.as_str()];
    args.extend_from_slice(extra);
    p2psip(&args, limit)
}

#[test]
fn check_a_clean_sample_is_compliant_and_writes_every_report() {
    let d = Dir::new();
    let dir = d.join("report");
    let o = check(&sample("clean.pcap"), &["--report", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("886 SIP messages"), "{out}");
    assert!(out.contains("COMPLIANT"), "{out}");
    for f in ["report.json", "junit.xml", "summary.md", "report.html"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let json: Value = serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap())
        .expect("report.json is JSON");
    assert_eq!(json["summary"]["verdict"], "compliant", "{json}");
}

#[test]
fn check_fault_samples_fail_naming_the_requirement_and_the_frame() {
    for (file, req, frame) in [
        ("wrong-302.pcap", "QUERY-2", 34),
        ("upper-hex.pcap", "ID-1", 1),
        ("ignore-rport.pcap", "NAT-2", 13),
        ("no-id-check.pcap", "ID-7", 241),
        ("no-stabilize.pcap", "STAB-1", 360),
    ] {
        let d = Dir::new();
        let dir = d.join("report");
        let o = check(&sample(file), &["--report", dir.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{file}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("NON-COMPLIANT"), "{file}: {out}");
        let finding = format!("frame {frame}");
        let line = out
            .lines()
            .find(|l| l.contains(req) && l.contains(&finding))
            .unwrap_or_else(|| panic!("{file}: no {req} finding at {finding}:\n{out}"));
        assert!(!line.is_empty());
        // The reports say it too.
        let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
        assert!(md.contains(req), "{file}: summary.md without {req}");
        let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
        assert!(
            junit.contains(&finding),
            "{file}: junit.xml without {finding}"
        );
    }
}

#[test]
fn check_on_one_thread_prints_what_two_threads_print() {
    for file in ["clean.pcap", "wrong-302.pcap", "no-stabilize.pcap"] {
        let one = check(&sample(file), &["--threads", "1"]);
        let two = check(&sample(file), &["--threads", "2"]);
        assert_eq!(one.status.code(), two.status.code(), "{file}");
        assert_eq!(
            String::from_utf8_lossy(&one.stdout),
            String::from_utf8_lossy(&two.stdout),
            "{file}"
        );
    }
    let o = check(&sample("clean.pcap"), &["--threads", "3"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn check_refuses_what_is_not_a_capture_with_exit_2() {
    let d = Dir::new();
    let garbage = d.write("garbage.pcap", "this is not a capture at all\n");
    let o = p2psip(
        &["pcap", "check", garbage.to_str().unwrap()],
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot read") && err.contains("not a pcap or pcapng file"),
        "{err}"
    );
    let empty = d.write("empty.pcap", "");
    let o = p2psip(
        &["pcap", "check", empty.to_str().unwrap()],
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let missing = d.join("missing.pcap");
    let o = p2psip(
        &["pcap", "check", missing.to_str().unwrap()],
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot open"),
        "{}",
        text(&o)
    );
    let o = p2psip(
        &["pcap", "replay", garbage.to_str().unwrap()],
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a pcap or pcapng file"),
        "{}",
        text(&o)
    );
}

#[test]
fn check_of_hostile_captures_gives_clear_messages() {
    let d = Dir::new();
    let clean = std::fs::read(sample("clean.pcap")).unwrap();
    // Truncated inside a record: judged up to there, the cut reported.
    let cut = d.join("cut.pcap");
    std::fs::write(&cut, &clean[..50_000]).unwrap();
    let o = check(cut.to_str().unwrap(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("TruncatedFile: the file is truncated after frame"),
        "{out}"
    );
    assert!(out.contains("1 warned"), "{out}");
    // An absurd snaplen and a first record of 2 GB: nothing readable.
    let mut bad = clean[..2000].to_vec();
    bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    bad[32..36].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    let bad_file = d.join("bad.pcap");
    std::fs::write(&bad_file, &bad).unwrap();
    let o = check(bad_file.to_str().unwrap(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("BlockTooLarge"), "{out}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no SIP message in the capture"),
        "{}",
        text(&o)
    );
}

#[test]
fn replay_of_an_endpoint_the_capture_does_not_hold_exits_2_listing_the_senders() {
    let o = replay_clean(&["--as", "10.9.9.9:5060"], Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("10.9.9.9:5060 sent no request") && err.contains(CLIENT),
        "{err}"
    );
}

/// The summary line of a replay: (alike, explained, different).
fn tally(out: &str) -> (usize, usize, usize) {
    let line = out
        .lines()
        .find(|l| l.starts_with("ALIKE:") || l.starts_with("DIFFERENT:"))
        .unwrap_or_else(|| panic!("no summary line:\n{out}"));
    let n: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|x| x.parse().ok())
        .collect();
    (n[0], n[1], n[2])
}

#[test]
fn replay_of_the_clean_sample_against_the_reference_node_differs_only_in_explained_ways() {
    let d = Dir::new();
    let dir = d.join("report");
    let o = replay_clean(
        &["--as", CLIENT, "--report", dir.to_str().unwrap()],
        Duration::from_secs(120),
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let (alike, explained, differ) = tally(&out);
    assert_eq!(differ, 0, "{out}");
    // The 68 queries of the client, most answered exactly as recorded;
    // the rest while the captured overlay was still changing.
    assert_eq!(alike + explained, 68, "{out}");
    assert!(alike >= 34, "{out}");
    assert!(out.contains("replayed 68 request(s) of 127.119.200.253:50361 to 127.119.200.2:53467"));
    for f in [
        "report.json",
        "junit.xml",
        "summary.md",
        "report.html",
        "replay.pcap",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let json: Value =
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["summary"]["verdict"], "compliant", "{json}");
}

#[test]
fn replay_with_the_default_endpoint_picks_the_busiest_sender() {
    let o = replay_clean(&[], Duration::from_secs(120));
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        out.contains("of 127.119.200.2:53467 to 127.119.200.3:60887"),
        "{out}"
    );
    assert_eq!(tally(&out).2, 0, "{out}");
}

/// An IUT file: the reference node with `fault` (the built-in default's
/// arguments), through a shell that records its pid.
fn faulty_iut(d: &Dir, fault: &str) -> PathBuf {
    let args: Vec<String> = NODE_ARGS.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "echo $$ >> PIDS; exec {P2PSIP} node {} --fault {fault}",
        args.join(" ")
    );
    d.shell_iut(&format!("{fault}.toml"), &script)
}

#[test]
fn replay_against_faulty_nodes_reports_the_differences_and_reaps_them() {
    for (fault, expect) in [
        ("wrong-302", "redirects to 127.119.200.105:53529"),
        ("upper-hex", "upper-case hex digits in an ID (ID-1)"),
    ] {
        let d = Dir::new();
        let iut = faulty_iut(&d, fault);
        let o = replay_clean(
            &["--as", CLIENT, "--iut", iut.to_str().unwrap()],
            Duration::from_secs(120),
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(o.status.code(), Some(1), "{fault}: {}", text(&o));
        assert!(out.contains(expect), "{fault}: {out}");
        assert!(tally(&out).2 > 0, "{fault}: {out}");
        let pids = d.pids();
        assert_eq!(pids.len(), 1, "{fault}: {pids:?}");
        assert_gone(&pids);
    }
}

#[test]
fn replay_with_an_iut_that_does_not_start_exits_2_with_its_output() {
    let d = Dir::new();
    let iut = d.shell_iut(
        "broken.toml",
        "echo PIDS >/dev/null; echo cannot bind {ip}:{port} >&2; exit 3",
    );
    let o = replay_clean(
        &["--as", CLIENT, "--iut", iut.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("did not answer OPTIONS"), "{err}");
    assert!(err.contains("exited (exit code 3)"), "{err}");
    assert!(err.contains("cannot bind"), "{err}");
}

#[test]
fn replay_stops_when_the_iut_goes_silent_or_exits() {
    for (then, expect) in [
        (
            "silent",
            "requests in a row unanswered; the replay stopped here",
        ),
        (
            "exit",
            "the IUT exited (exit code 3); the replay stopped here",
        ),
    ] {
        let d = Dir::new();
        // Answers the readiness probe and two requests, then `then`.
        let iut = d.stub_iut(&format!("{then}.toml"), &["--answer", "3", "--then", then]);
        let o = replay_clean(
            &[
                "--as",
                CLIENT,
                "--no-ring",
                "--t1-ms",
                "20",
                "--iut",
                iut.to_str().unwrap(),
            ],
            Duration::from_secs(60),
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(o.status.code(), Some(1), "{then}: {}", text(&o));
        assert!(out.contains(expect), "{then}: {out}");
        assert!(!out.contains("replayed 68 request"), "{then}: {out}");
    }
}

/// The source of the first SIP message sent over TCP in `pcap`.
fn first_tcp_sender(pcap: &std::path::Path) -> std::net::SocketAddr {
    use p2psip_capture::{CaptureReader, Event, PayloadKind, Transport};
    let mut reader = CaptureReader::new(std::fs::File::open(pcap).unwrap()).unwrap();
    let mut found = None;
    reader
        .for_each(|e| {
            if let Event::Datagram {
                src,
                transport: Transport::Tcp,
                kind: PayloadKind::Sip,
                ..
            } = e
            {
                found.get_or_insert(src);
            }
        })
        .unwrap();
    found.expect("a SIP message over TCP")
}

#[test]
fn replay_of_a_tcp_join_sends_it_as_the_peer_it_names() {
    // A harness case's own capture: a puppet joins over TCP from an
    // ephemeral port, naming its UDP address in DHT-PeerID and Via.
    let d = Dir::new();
    let out = d.join("out");
    let o = p2psip(
        &[
            "run",
            "--exact",
            "security.tcp-join-checked-against-via",
            "--report",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pcap = out.join("cases/security.tcp-join-checked-against-via.pcap");
    let sender = first_tcp_sender(&pcap).to_string();
    let o = p2psip(
        &["pcap", "replay", pcap.to_str().unwrap(), "--as", &sender],
        Duration::from_secs(60),
    );
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        out.contains(&format!("replayed 1 request(s) of {sender}")),
        "{out}"
    );
    // Admitted as it was: the replayed join comes from the IP of the
    // address its Peer-ID names (ID-7 over TCP), which no reference node
    // occupies.
    assert_eq!(tally(&out), (1, 0, 0), "{out}");
    let new_of = |line: &str| line.rsplit(" is replayed as ").next().map(str::to_owned);
    let news: Vec<String> = out
        .lines()
        .filter(|l| l.contains(" is replayed as ") && l.contains(sender.split(':').next().unwrap()))
        .filter_map(new_of)
        .collect();
    assert_eq!(news.len(), 2, "the TCP source and the peer it names: {out}");
    assert_eq!(news[0], news[1], "{out}");
}
