//! TCP reassembly and framing through whole captures.

mod common;

use std::io::Read;

use common::*;
use p2psip_capture::{CaptureReader, Event, FindingKind, Limits, PayloadKind, Transport, read_all};

const A: &str = "10.0.0.1:40000";
const B: &str = "10.0.0.2:5060";

/// A raw-IP nanosecond capture of TCP segments A -> B: (seq, flags, data).
fn capture(segments: &[(u32, Flags, &[u8])]) -> Vec<u8> {
    let recs: Vec<(i64, Vec<u8>)> = segments
        .iter()
        .enumerate()
        .map(|(i, (seq, flags, data))| {
            (
                i as i64 * 1000,
                ip_tcp(addr(A), addr(B), *seq, *flags, data),
            )
        })
        .collect();
    pcap(false, true, 101, &recs)
}

fn data(seq: u32, d: &[u8]) -> (u32, Flags, &[u8]) {
    (seq, Flags::default(), d)
}

const SYN: Flags = Flags {
    syn: true,
    fin: false,
    rst: false,
};
const FIN: Flags = Flags {
    syn: false,
    fin: true,
    rst: false,
};
const RST: Flags = Flags {
    syn: false,
    fin: false,
    rst: true,
};

#[test]
fn in_order_with_handshake() {
    let m = sip(1, 5);
    let events = read_all(&capture(&[
        (100, SYN, b""),
        data(101, &m),
        (101 + m.len() as u32, FIN, b""),
    ]))
    .unwrap();
    assert_eq!(
        datagrams(&events),
        vec![(2, 2, Transport::Tcp, PayloadKind::Sip, m)]
    );
    assert!(findings(&events).is_empty(), "{events:?}");
}

#[test]
fn out_of_order_segments() {
    let m = sip(1, 40);
    let (p1, rest) = m.split_at(30);
    let (p2, p3) = rest.split_at(50);
    let s2 = 1000 + 30;
    let s3 = s2 + 50;
    let events = read_all(&capture(&[data(1000, p1), data(s3, p3), data(s2, p2)])).unwrap();
    // Completed by frame 3; its first byte came in frame 1.
    assert_eq!(
        datagrams(&events),
        vec![(3, 1, Transport::Tcp, PayloadKind::Sip, m)]
    );
}

#[test]
fn retransmissions_and_overlaps_are_dropped() {
    let m = sip(1, 100);
    let file = capture(&[
        data(0, &m[..60]),
        data(0, &m[..60]),
        data(30, &m[30..90]),
        data(0, &m[..10]),
        data(90, &m[90..]),
        data(90, &m[90..]),
    ]);
    let mut r = CaptureReader::new(&file[..]).unwrap();
    let mut events = Vec::new();
    r.for_each(|e| events.push(e.into_owned())).unwrap();
    assert_eq!(sip_payloads(&events), vec![m]);
    assert!(r.stats().tcp_duplicates >= 4, "{:?}", r.stats());
}

#[test]
fn two_messages_in_one_segment_and_keep_alives() {
    let m1 = sip(1, 3);
    let m2 = sip(2, 0);
    let seg = [&m1[..], b"\r\n\r\n", &m2[..], b"\r\n"].concat();
    let events = read_all(&capture(&[data(7, &seg)])).unwrap();
    let kinds: Vec<_> = datagrams(&events)
        .into_iter()
        .map(|d| (d.0, d.3, d.4))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, PayloadKind::Sip, m1),
            (1, PayloadKind::KeepAlivePing, b"\r\n\r\n".to_vec()),
            (1, PayloadKind::Sip, m2),
            (1, PayloadKind::KeepAlivePong, b"\r\n".to_vec()),
        ]
    );
}

#[test]
fn one_message_over_many_segments() {
    let m = [sip(1, 200), sip(2, 1)].concat();
    let first_len = sip(1, 200).len();
    let segs: Vec<(u32, Flags, &[u8])> = m
        .chunks(7)
        .enumerate()
        .map(|(i, c)| data(5 + 7 * i as u32, c))
        .collect();
    let events = read_all(&capture(&segs)).unwrap();
    let d = datagrams(&events);
    assert_eq!(d.len(), 2);
    assert_eq!((d[0].0, d[0].1), (first_len.div_ceil(7) as u64, 1));
    // The second message starts inside the segment that ended the first.
    assert_eq!(d[1].1, first_len.div_ceil(7) as u64);
    assert_eq!(d[1].0, segs.len() as u64);
    assert_eq!([d[0].4.clone(), d[1].4.clone()].concat(), m);
}

#[test]
fn stream_seen_mid_way_synchronises_on_a_start_line() {
    let tail = b"a=sendrecv\r\n".to_vec();
    let m = sip(3, 2);
    let seg1 = [&tail[..], &m[..10]].concat();
    let events = read_all(&capture(&[
        data(500, &seg1),
        data(500 + seg1.len() as u32, &m[10..]),
    ]))
    .unwrap();
    let d = datagrams(&events);
    assert_eq!(d.len(), 2, "{events:?}");
    assert_eq!((d[0].3, &d[0].4), (PayloadKind::Other, &tail));
    assert_eq!(
        (d[1].0, d[1].1, d[1].3, &d[1].4),
        (2, 1, PayloadKind::Sip, &m)
    );
}

#[test]
fn non_sip_stream_is_other() {
    let events = read_all(&capture(&[
        data(1, b"\x16\x03\x01\x00\x05hello"),
        data(11, b"world"),
    ]))
    .unwrap();
    let kinds: Vec<_> = datagrams(&events).into_iter().map(|d| d.3).collect();
    assert_eq!(kinds, vec![PayloadKind::Other, PayloadKind::Other]);
}

#[test]
fn lost_segment_is_a_gap_then_resync() {
    let m1 = sip(1, 50);
    let m2 = sip(2, 0);
    let m3 = sip(3, 0);
    let s2 = m1.len() as u32;
    let s3 = s2 + m2.len() as u32;
    // The second half of m1 is never captured.
    let limits = Limits {
        max_tcp_ooo_segments: 1,
        ..Limits::default()
    };
    let file = capture(&[data(0, &m1[..40]), data(s2, &m2), data(s3, &m3)]);
    let mut r = CaptureReader::with_limits(&file[..], limits).unwrap();
    let mut events = Vec::new();
    r.for_each(|e| events.push(e.into_owned())).unwrap();
    assert_eq!(sip_payloads(&events), vec![m2, m3]);
    assert_eq!(findings(&events), vec![(3, FindingKind::TcpGap)]);
}

#[test]
fn truncated_segment_makes_a_gap() {
    let m1 = sip(1, 50);
    let m2 = sip(2, 0);
    let mut seg = ip_tcp(addr(A), addr(B), 0, Flags::default(), &m1);
    seg.truncate(seg.len() - 10);
    let file = pcap(
        false,
        true,
        101,
        &[
            (0, seg),
            (
                1,
                ip_tcp(addr(A), addr(B), m1.len() as u32, Flags::default(), &m2),
            ),
        ],
    );
    let events = read_all(&file).unwrap();
    assert_eq!(sip_payloads(&events), vec![m2]);
    assert_eq!(findings(&events), vec![(1, FindingKind::TruncatedPacket)]);
}

#[test]
fn fin_and_rst_inside_a_message_are_reported() {
    let m = sip(1, 10);
    let events = read_all(&capture(&[data(0, &m[..20]), (20, FIN, b"")])).unwrap();
    assert_eq!(findings(&events), vec![(2, FindingKind::TcpIncomplete)]);
    // A retransmission after the FIN is absorbed, not reported.
    let events = read_all(&capture(&[
        data(0, &m),
        (m.len() as u32, FIN, b""),
        data(0, &m),
    ]))
    .unwrap();
    assert_eq!(sip_payloads(&events).len(), 1);
    assert!(findings(&events).is_empty());
    let events = read_all(&capture(&[data(0, &m[..20]), (20, RST, b"")])).unwrap();
    assert_eq!(findings(&events), vec![(2, FindingKind::TcpIncomplete)]);
}

#[test]
fn fin_out_of_order_waits_for_the_data() {
    let m = sip(1, 10);
    let events = read_all(&capture(&[
        data(0, &m[..20]),
        (m.len() as u32, FIN, b""),
        data(20, &m[20..]),
    ]))
    .unwrap();
    assert_eq!(sip_payloads(&events), vec![m]);
    assert!(findings(&events).is_empty(), "{events:?}");
}

#[test]
fn capture_ending_mid_message_is_reported() {
    let m = sip(1, 10);
    let events = read_all(&capture(&[data(0, &m[..20])])).unwrap();
    assert_eq!(findings(&events), vec![(1, FindingKind::TcpIncomplete)]);
}

#[test]
fn too_large_desynchronises_until_a_new_connection() {
    let limits = Limits {
        max_message: 300,
        ..Limits::default()
    };
    let big = sip(1, 500);
    let small = sip(2, 0);
    let file = capture(&[
        data(0, &big),
        data(big.len() as u32, &small),
        (9000, SYN, b""),
        data(9001, &small),
    ]);
    let mut r = CaptureReader::with_limits(&file[..], limits).unwrap();
    let mut events = Vec::new();
    r.for_each(|e| events.push(e.into_owned())).unwrap();
    assert_eq!(
        findings(&events),
        vec![(1, FindingKind::TcpMessageTooLarge)]
    );
    assert_eq!(
        datagrams(&events)
            .into_iter()
            .map(|d| d.0)
            .collect::<Vec<_>>(),
        vec![4]
    );
    assert!(r.stats().tcp_skipped_bytes >= small.len() as u64);
}

#[test]
fn bad_content_length_desynchronises() {
    let bad = b"OPTIONS sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n";
    let events = read_all(&capture(&[
        data(0, bad),
        data(bad.len() as u32, &sip(1, 0)),
    ]))
    .unwrap();
    assert_eq!(
        findings(&events),
        vec![(1, FindingKind::TcpBadContentLength)]
    );
    assert!(datagrams(&events).is_empty());
}

#[test]
fn sequence_numbers_wrap() {
    let m = sip(1, 30);
    let start = u32::MAX - 20;
    let segs: Vec<(u32, Flags, &[u8])> = m
        .chunks(16)
        .enumerate()
        .map(|(i, c)| data(start.wrapping_add(16 * i as u32), c))
        .rev()
        .collect();
    // Delivered in reverse order across the wrap: the last chunk first.
    let mut all = vec![data(
        start.wrapping_sub(16),
        b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n",
    )];
    all.extend(segs);
    let events = read_all(&capture(&all)).unwrap();
    assert_eq!(sip_payloads(&events), vec![m]);
}

#[test]
fn new_syn_on_same_addresses_is_a_new_connection() {
    let m = sip(1, 0);
    let events = read_all(&capture(&[
        (10, SYN, b""),
        data(11, &m[..30]),
        (70_000, SYN, b""),
        data(70_001, &m),
    ]))
    .unwrap();
    assert_eq!(sip_payloads(&events), vec![m]);
    assert_eq!(findings(&events), vec![(3, FindingKind::TcpIncomplete)]);
}

#[test]
fn stream_table_is_bounded_by_eviction() {
    let limits = Limits {
        max_tcp_streams: 2,
        ..Limits::default()
    };
    let m = sip(1, 0);
    let recs: Vec<(i64, Vec<u8>)> = (0..3u16)
        .map(|i| {
            let src = addr(&format!("10.0.0.{}:4000", i + 1));
            (
                i64::from(i),
                ip_tcp(src, addr(B), 0, Flags::default(), &m[..30]),
            )
        })
        .collect();
    let file = pcap(false, true, 101, &recs);
    let mut r = CaptureReader::with_limits(&file[..], limits).unwrap();
    let mut events = Vec::new();
    let mut max_streams = 0;
    while r.step(&mut |e| events.push(e.into_owned())).unwrap() {
        max_streams = max_streams.max(r.decoder().tcp_streams());
    }
    assert_eq!(max_streams, 2);
    let f = findings(&events);
    assert_eq!(f[0], (3, FindingKind::TcpStreamEvicted));
    assert_eq!(
        f[1..],
        [
            (3, FindingKind::TcpIncomplete),
            (3, FindingKind::TcpIncomplete)
        ]
    );
}

#[test]
fn idle_streams_expire_by_capture_time() {
    let m = sip(1, 0);
    let s = 1_000_000_000i64;
    let file = pcap(
        false,
        true,
        101,
        &[
            (0, ip_tcp(addr(A), addr(B), 0, Flags::default(), &m[..30])),
            (400 * s, ip_udp(addr(A), addr(B), &m)),
            (
                401 * s,
                ip_tcp(addr("10.9.9.9:1"), addr(B), 0, Flags::default(), &m),
            ),
        ],
    );
    let events = read_all(&file).unwrap();
    assert_eq!(findings(&events), vec![(3, FindingKind::TcpIncomplete)]);
}

#[test]
fn total_buffer_limit_across_streams() {
    let limits = Limits {
        max_tcp_bytes: 1000,
        ..Limits::default()
    };
    let m = sip(1, 5000);
    let recs: Vec<(i64, Vec<u8>)> = (0..4u16)
        .map(|i| {
            let src = addr(&format!("10.0.0.{}:4000", i + 1));
            (0, ip_tcp(src, addr(B), 0, Flags::default(), &m[..400]))
        })
        .collect();
    let file = pcap(false, true, 101, &recs);
    let mut r = CaptureReader::with_limits(&file[..], limits).unwrap();
    let mut events = Vec::new();
    while r.step(&mut |e| events.push(e.into_owned())).unwrap() {
        assert!(r.decoder().tcp_buffered_bytes() <= 1000);
    }
    assert_eq!(
        findings(&events)[..2],
        [
            (3, FindingKind::TcpMemoryLimit),
            (4, FindingKind::TcpMemoryLimit)
        ]
    );
}

/// An endless-looking capture generated on the fly: one TCP stream that
/// starts like a SIP request and never ends its header section.
struct NoHeaderEnd {
    pending: Vec<u8>,
    pos: usize,
    segments_left: usize,
    seq: u32,
}

impl NoHeaderEnd {
    fn new(segments: usize) -> NoHeaderEnd {
        NoHeaderEnd {
            pending: pcap(false, true, 101, &[]),
            pos: 0,
            segments_left: segments,
            seq: 1,
        }
    }
}

impl Read for NoHeaderEnd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.pending.len() {
            if self.segments_left == 0 {
                return Ok(0);
            }
            self.segments_left -= 1;
            let payload: Vec<u8> = if self.seq == 1 {
                let mut p = b"INVITE sip:x@y SIP/2.0\r\nX-Long: ".to_vec();
                p.resize(1400, b'a');
                p
            } else {
                vec![b'a'; 1400]
            };
            let pkt = ip_tcp(addr(A), addr(B), self.seq, Flags::default(), &payload);
            self.seq = self.seq.wrapping_add(1400);
            self.pending = pcap(false, true, 101, &[(0, pkt)])[24..].to_vec();
            self.pos = 0;
        }
        let n = buf.len().min(self.pending.len() - self.pos);
        buf[..n].copy_from_slice(&self.pending[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn many_megabytes_without_header_end_stay_bounded() {
    let limits = Limits::default();
    // 24 MB of one stream.
    let mut r = CaptureReader::with_limits(NoHeaderEnd::new(24_000_000 / 1400), limits).unwrap();
    let mut findings_seen = Vec::new();
    let mut max_buffered = 0;
    while r
        .step(&mut |e| {
            if let Event::Finding { kind, .. } = e {
                findings_seen.push(kind)
            }
        })
        .unwrap()
    {
        max_buffered = max_buffered.max(r.decoder().tcp_buffered_bytes());
    }
    assert_eq!(findings_seen, vec![FindingKind::TcpMessageTooLarge]);
    assert!(max_buffered <= limits.max_message + 1, "{max_buffered}");
    assert_eq!(r.buffer_capacity(), limits.read_buffer);
    assert!(r.stats().tcp_skipped_bytes > 23_000_000);
}
