//! Reading throughput: a ~20 MB in-memory capture of SIP over UDP and TCP
//! (several connections, big messages split over segments, keep-alives),
//! read with the zero-copy callback and with the owning iterator.
//!
//! `cargo bench -p p2psip-capture --bench read` reports MiB/s.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use p2psip_capture::{CaptureReader, Event, PcapWriter, Timestamp};

fn message(n: usize, body: usize) -> Vec<u8> {
    let mut m = format!(
        "INVITE sip:peer{n}@overlay.example SIP/2.0\r\n\
         Via: SIP/2.0/TCP 192.0.2.{}:5060;branch=z9hG4bK{n:08x}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:peer{n}@overlay.example>\r\n\
         From: <sip:node@overlay.example>;tag={n:x}\r\n\
         Call-ID: {n:016x}@overlay.example\r\n\
         CSeq: {n} INVITE\r\n\
         Contact: <sip:node@192.0.2.1:5060>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {body}\r\n\r\n",
        n % 250
    )
    .into_bytes();
    m.extend((0..body).map(|i| b'a' + (i % 26) as u8));
    m
}

/// About `target` bytes of capture; `bodies` cycles through body sizes.
fn capture(target: usize, bodies: &[usize]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::with_capacity(target + 100_000))
        .expect("header")
        .with_tcp_segment_size(1448);
    let peers: Vec<SocketAddr> = (1..=8)
        .map(|i| format!("192.0.2.{i}:5060").parse().expect("address"))
        .collect();
    for i in 0..peers.len() / 2 {
        w.write_tcp_handshake(Timestamp::ZERO, peers[2 * i], peers[2 * i + 1])
            .expect("write");
    }
    let mut n = 0usize;
    let mut size = 0;
    while size < target {
        let ts = Timestamp::from_nanos(1_700_000_000_000_000_000 + n as i64 * 1000);
        let body = bodies[n % bodies.len()];
        let m = message(n, body);
        let pair = n % 4;
        let (a, b) = (peers[2 * pair], peers[2 * pair + 1]);
        let (src, dst) = if n.is_multiple_of(3) { (b, a) } else { (a, b) };
        if n.is_multiple_of(2) {
            w.write_udp(ts, src, dst, &m).expect("write");
        } else if n.is_multiple_of(11) {
            w.write_tcp(ts, src, dst, b"\r\n\r\n").expect("write");
        } else {
            w.write_tcp(ts, src, dst, &m).expect("write");
        }
        size += m.len() + 70;
        n += 1;
    }
    w.into_inner().expect("flush")
}

fn bench_capture(c: &mut Criterion, name: &str, data: &[u8]) {
    let mut check = (0u64, 0u64);
    CaptureReader::new(data)
        .expect("capture")
        .for_each(|e| match e {
            Event::Datagram { .. } => check.0 += 1,
            Event::Finding { .. } => check.1 += 1,
        })
        .expect("read");
    assert_eq!(check.1, 0, "the generated capture reads without findings");
    eprintln!("{name}: {} bytes, {} payload events", data.len(), check.0);

    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(20);
    g.bench_function("callback", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            let mut r = CaptureReader::new(black_box(data)).expect("capture");
            r.for_each(|e| {
                if let Event::Datagram { payload, .. } = e {
                    bytes += payload.len();
                }
            })
            .expect("read");
            bytes
        })
    });
    g.bench_function("owned_iterator", |b| {
        b.iter(|| {
            CaptureReader::new(black_box(data))
                .expect("capture")
                .events()
                .filter_map(Result::ok)
                .count()
        })
    });
    g.finish();
}

fn bench(c: &mut Criterion) {
    // Typical mix: bodyless requests up to 3 kB ones split over segments.
    bench_capture(
        c,
        "read_20MB_mixed",
        &capture(20_000_000, &[0, 150, 400, 900, 3000]),
    );
    // Small messages only: per-packet costs dominate.
    bench_capture(c, "read_20MB_small", &capture(20_000_000, &[0]));
}

criterion_group!(benches, bench);
criterion_main!(benches);
