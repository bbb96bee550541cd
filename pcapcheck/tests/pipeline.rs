//! The two-thread pass (`check_pipelined`) judges exactly as the one-thread
//! pass (`check`): the same findings in the same order with the same frame
//! numbers, the same counters and notes, whatever the cut of the work
//! (epochs down to one message, chunks of one, a lookahead of one), on
//! every committed sample, on generated captures with and without faults,
//! over TCP, and on a truncated file.

mod common;

use std::io::{self, Read};

use p2psip_capture::{PcapWriter, Timestamp};
use p2psip_node::testnet::Datagram;
use p2psip_pcapcheck::{Analysis, Tuning, check, check_bytes, check_pipelined_with};

fn tunings() -> Vec<Tuning> {
    vec![
        Tuning::default(),
        Tuning {
            epoch_bytes: 1,
            chunk: 1,
            lookahead: 1,
        },
        Tuning {
            epoch_bytes: 4096,
            chunk: 3,
            lookahead: 2,
        },
        Tuning {
            epoch_bytes: 64 << 10,
            chunk: 16,
            lookahead: 8,
        },
    ]
}

fn assert_same(name: &str, capture: &[u8]) -> Analysis {
    let one = check_bytes(capture, &common::options()).expect("readable");
    for t in tunings() {
        let two = check_pipelined_with(capture, &common::options(), t).expect("readable");
        // Field by field first, for a readable failure.
        assert_eq!(one.findings, two.findings, "{name}, {t:?}: findings");
        assert_eq!(one.counters, two.counters, "{name}, {t:?}: counters");
        assert_eq!(one, two, "{name}, {t:?}");
    }
    one
}

#[test]
fn every_sample_capture() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/pcap");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("the samples")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    let mut with_findings = 0;
    for path in names {
        let bytes = std::fs::read(&path).expect("a sample");
        let a = assert_same(&path.display().to_string(), &bytes);
        with_findings += usize::from(!a.findings.is_empty());
    }
    // The comparison covers findings, not only empty lists.
    assert!(with_findings >= 3, "{with_findings} samples with findings");
}

#[test]
fn generated_captures_with_faults() {
    for (fault, _) in common::OBSERVABLE.iter().take(4) {
        let cap = common::simulated(Some(*fault), 10, 3);
        let a = assert_same(fault.name(), &cap);
        assert!(!a.findings.is_empty(), "{}", fault.name());
    }
}

#[test]
fn generated_capture_over_several_epochs() {
    let mut cap = Vec::new();
    common::replicated(&mut cap, 3 << 20);
    assert_same("replicated", &cap);
    // Default epochs too, with several of them.
    let tuning = Tuning {
        epoch_bytes: 256 << 10,
        ..Tuning::default()
    };
    let one = check_bytes(&cap, &common::options()).expect("readable");
    let two = check_pipelined_with(&cap[..], &common::options(), tuning).expect("readable");
    assert_eq!(one, two);
}

/// Payloads reassembled from TCP segments are the reader's own copies, not
/// slices of the file: the pipeline copies those too.
#[test]
fn generated_capture_over_tcp() {
    let trace: Vec<Datagram> = common::simulate(None, 10, 3);
    let mut w = PcapWriter::new(Vec::new()).expect("pcap header");
    let base = Timestamp::from_secs_nanos(1_700_000_000, 0);
    for (n, d) in trace.iter().enumerate() {
        let ts = base.saturating_add(d.at.as_duration());
        // Every third message over TCP.
        if n % 3 == 0 {
            w.write_tcp(ts, d.from, d.to, &d.bytes)
        } else {
            w.write_udp(ts, d.from, d.to, &d.bytes)
        }
        .expect("a record");
    }
    let cap = w.into_inner().expect("flush");
    let a = assert_same("tcp", &cap);
    assert!(a.capture.tcp_segments > 0);
}

/// Reader findings (here: the truncated end) keep their place among the
/// messages.
#[test]
fn truncated_capture() {
    let cap = common::simulated(Some(common::OBSERVABLE[2].0), 10, 3);
    for cut in [cap.len() / 3 + 7, cap.len() - 5] {
        let a = assert_same(&format!("cut at {cut}"), &cap[..cut]);
        assert!(!a.capture_problems.is_empty(), "cut at {cut}");
    }
}

/// A read error ends both passes with the error.
#[test]
fn read_error_is_an_error() {
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len()).min(4096);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let cap = common::simulated(None, 10, 3);
    let half = &cap[..cap.len() / 2];
    assert!(check(Failing(half), &common::options()).is_err());
    for t in tunings() {
        let r = check_pipelined_with(Failing(half), &common::options(), t);
        assert!(r.is_err(), "{t:?}");
    }
}
