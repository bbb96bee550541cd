//! Replays the fuzz corpus (capture/fuzz/corpus/read_capture/, if present)
//! through the fuzz target's body on stable Rust, which also keeps that
//! body compiling.

mod common;

use std::path::{Path, PathBuf};

include!("../fuzz/fuzz_targets/read_capture_body.rs");

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/read_capture")
}

#[test]
fn replay_fuzz_corpus() {
    let Ok(entries) = std::fs::read_dir(corpus_dir()) else {
        return;
    };
    let mut n = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() {
            let data = std::fs::read(&path).expect("readable corpus file");
            run(&data);
            n += 1;
        }
    }
    eprintln!("replayed {n} corpus files");
}

#[test]
fn body_runs_on_simple_inputs() {
    for data in [
        &b""[..],
        b"\x0a\x0d\x0d\x0a",
        b"\xd4\xc3\xb2\xa1",
        &seeds()[0].1,
    ] {
        run(data);
    }
}

/// Small valid captures to start fuzzing from.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use common::*;
    let a = addr("10.0.0.1:5060");
    let b = addr("10.0.0.2:5060");
    let m = sip(1, 10);
    let mut ng = Ng::new(false);
    ng.idb(1, Some(9), Some(1));
    ng.idb(113, None, None);
    ng.epb(0, 1, &eth(&[(0x8100, 3)], &ip_udp(a, b, &m)));
    ng.epb(1, 2, &sll(&ip_tcp(a, b, 7, Flags::default(), &m[..30])));
    ng.epb(1, 3, &sll(&ip_tcp(a, b, 37, Flags::default(), &m[30..])));
    ng.spb(&eth(
        &[],
        &ip_udp(addr("[::1]:5060"), addr("[::2]:5060"), b"\r\n\r\n"),
    ));
    let mut w = p2psip_capture::PcapWriter::new(Vec::new())
        .unwrap()
        .with_udp_mtu(200);
    let t = p2psip_capture::Timestamp::from_nanos(1);
    w.write_udp(t, a, b, &sip(2, 300)).unwrap();
    w.write_tcp_handshake(t, a, b).unwrap();
    w.write_tcp(
        t,
        a,
        b,
        &[m.clone(), b"\r\n\r\n".to_vec(), m.clone()].concat(),
    )
    .unwrap();
    w.write_tcp_fin(t, a, b).unwrap();
    vec![
        ("pcapng-two-interfaces", ng.buf),
        ("pcap-writer-fragments-tcp", w.into_inner().unwrap()),
        (
            "pcap-be-null",
            pcap(true, false, 0, &[(0, null(true, &ip_udp(a, b, &m)))]),
        ),
    ]
}

/// Writes the seeds: `cargo test -p p2psip-capture --test fuzz_replay --
/// --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir).unwrap();
    for (name, data) in seeds() {
        std::fs::write(dir.join(name), data).unwrap();
    }
}
