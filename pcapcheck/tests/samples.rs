//! The committed sample captures (`vectors/pcap/`, real loopback captures
//! of a reference-node ring by tcpdump): the clean one checks clean, each
//! fault one reports the requirement its fault switch breaks, and the
//! reports render with frame numbers.

mod common;

use std::path::PathBuf;

use p2psip_pcapcheck::cli::{PcapCheckArgs, run_check_to};
use p2psip_pcapcheck::{Analysis, check};

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/pcap")
}

fn analyse(name: &str) -> Analysis {
    let file = std::fs::File::open(samples().join(format!("{name}.pcap"))).expect("a sample");
    check(std::io::BufReader::new(file), &common::options()).expect("readable")
}

fn args(name: &str) -> PcapCheckArgs {
    let mut a = PcapCheckArgs::new(samples().join(format!("{name}.pcap")));
    a.t1_ms = Some(common::T1.as_millis() as u64);
    a.stabilize_ms = Some(common::PERIOD.as_millis() as u64);
    a.keepalive_ms = Some(common::KEEPALIVE.as_millis() as u64);
    a
}

#[test]
fn clean_sample_checks_clean() {
    let a = analyse("clean");
    assert!(a.counters.messages > 300, "{:?}", a.counters);
    let shown: Vec<String> = a.findings.iter().map(|f| f.to_string()).collect();
    assert!(a.is_clean(), "{}", shown.join("\n"));
    assert!(a.capture_problems.is_empty(), "{:?}", a.capture_problems);
}

#[test]
fn fault_samples_report_their_requirement() {
    for (fault, req) in common::OBSERVABLE {
        let a = analyse(fault.name());
        let violated: Vec<&str> = a.violated().iter().map(|r| r.id()).collect();
        assert!(
            violated.contains(req),
            "{fault}: expected {req}, got {violated:?}"
        );
    }
}

#[test]
fn cli_exit_codes_and_reports() {
    let mut out = Vec::new();
    assert_eq!(run_check_to(&args("clean"), &mut out).expect("runs"), 0);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("COMPLIANT"), "{text}");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut a = args("wrong-302");
    a.report = Some(dir.path().to_path_buf());
    let mut out = Vec::new();
    assert_eq!(run_check_to(&a, &mut out).expect("runs"), 1);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("QUERY-2") && text.contains("frame "),
        "{text}"
    );
    for f in ["report.json", "junit.xml", "summary.md", "report.html"] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let md = std::fs::read_to_string(dir.path().join("summary.md")).expect("summary.md");
    assert!(
        md.contains("pcap.query-progress") && md.contains("frame "),
        "{md}"
    );
    let json = std::fs::read_to_string(dir.path().join("report.json")).expect("report.json");
    assert!(json.contains("\"QUERY-2\""), "{json}");

    let missing = PcapCheckArgs::new(dir.path().join("nope.pcap"));
    assert!(run_check_to(&missing, &mut Vec::new()).is_err());
}

#[test]
fn subjects_restrict_who_is_judged() {
    let all = analyse("wrong-302");
    let culprit = all
        .findings_of(p2psip_pcapcheck::Req::Query2)
        .next()
        .expect("a QUERY-2 finding")
        .src;
    let file = samples().join("wrong-302.pcap");
    let judge = |ip: std::net::IpAddr| {
        let opts = p2psip_pcapcheck::Options {
            subjects: vec![p2psip_pcapcheck::Subject { ip, port: None }],
            ..common::options()
        };
        let f = std::fs::File::open(&file).expect("a sample");
        check(std::io::BufReader::new(f), &opts).expect("readable")
    };
    assert!(!judge(culprit.ip()).is_compliant());
    let mut other = culprit.ip().to_string();
    other.truncate(other.rfind('.').expect("IPv4"));
    let bystander: std::net::IpAddr = format!("{other}.253").parse().expect("an address");
    let a = judge(bystander);
    assert!(a.is_clean(), "{:?}", a.violated());
    assert!(a.counters.not_judged > 0);
}

#[test]
#[ignore = "prints the table of vectors/pcap/README.md"]
fn table() {
    let mut names = vec!["clean".to_owned()];
    names.extend(common::OBSERVABLE.iter().map(|(f, _)| f.name().to_owned()));
    for n in names {
        let a = analyse(&n);
        let v: Vec<String> = a
            .requirements
            .iter()
            .filter(|r| r.violations > 0)
            .map(|r| {
                let first = a
                    .findings_of(r.requirement)
                    .next()
                    .map(|f| f.frame)
                    .unwrap_or(0);
                format!(
                    "{} ×{} (first frame {first})",
                    r.requirement.id(),
                    r.violations
                )
            })
            .collect();
        println!(
            "| `{n}.pcap` | {} | {} | {} |",
            a.capture.frames,
            a.counters.messages,
            v.join(", ")
        );
    }
}
