//! Every container format and link type the reader supports.

mod common;

use common::*;
use p2psip_capture::{CaptureReader, Event, FindingKind, Format, PayloadKind, Timestamp, read_all};

fn udp4() -> Vec<u8> {
    ip_udp(addr("10.1.1.1:5060"), addr("10.1.1.2:5060"), &sip(1, 3))
}

fn udp6() -> Vec<u8> {
    ip_udp(
        addr("[2001:db8::a]:5060"),
        addr("[2001:db8::b]:5061"),
        &sip(2, 0),
    )
}

fn timestamps(events: &[Event<'_>]) -> Vec<(u64, Timestamp)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Datagram { frame, ts, .. } => Some((*frame, *ts)),
            _ => None,
        })
        .collect()
}

#[test]
fn legacy_pcap_both_byte_orders_and_precisions() {
    let ts = 1_600_000_000_123_456_789i64;
    for be in [false, true] {
        for nanos in [false, true] {
            let file = pcap(
                be,
                nanos,
                1,
                &[(ts, eth(&[], &udp4())), (ts + 1000, eth(&[], &udp6()))],
            );
            let mut r = CaptureReader::new(&file[..]).unwrap();
            assert_eq!(
                r.format(),
                Format::Pcap {
                    nanosecond: nanos,
                    big_endian: be
                }
            );
            let mut events = Vec::new();
            r.for_each(|e| events.push(e.into_owned())).unwrap();
            assert_eq!(
                sip_payloads(&events),
                vec![sip(1, 3), sip(2, 0)],
                "be={be} ns={nanos}"
            );
            let expect = if nanos { ts } else { ts - 789 };
            let step = 1000;
            assert_eq!(
                timestamps(&events),
                vec![
                    (1, Timestamp::from_nanos(expect)),
                    (2, Timestamp::from_nanos(expect + step))
                ]
            );
        }
    }
}

#[test]
fn every_link_type() {
    let v4 = udp4();
    let v6 = udp6();
    let cases: Vec<(u32, Vec<u8>, &str)> = vec![
        (1, eth(&[], &v4), "ethernet"),
        (1, eth(&[(0x8100, 42)], &v6), "802.1Q"),
        (1, eth(&[(0x88A8, 1), (0x8100, 2)], &v4), "QinQ"),
        (
            1,
            eth(&[(0x9100, 1), (0x8100, 2), (0x8100, 3)], &v6),
            "triple tag",
        ),
        (113, sll(&v4), "SLL"),
        (113, sll(&v6), "SLL v6"),
        (276, sll2(&v4), "SLL2"),
        (276, sll2(&v6), "SLL2 v6"),
        (0, null(false, &v4), "NULL LE"),
        (0, null(true, &v6), "NULL BE"),
        (
            108,
            {
                let mut f = 2u32.to_be_bytes().to_vec();
                f.extend_from_slice(&v4);
                f
            },
            "LOOP",
        ),
        (101, v4.clone(), "RAW v4"),
        (101, v6.clone(), "RAW v6"),
        (228, v4.clone(), "IPV4"),
        (229, v6.clone(), "IPV6"),
    ];
    for (link, frame, name) in cases {
        let events = read_all(&pcap(false, false, link, &[(0, frame)])).unwrap();
        let d = datagrams(&events);
        assert_eq!(d.len(), 1, "{name}: {events:?}");
        assert_eq!(d[0].3, PayloadKind::Sip, "{name}");
        assert!(findings(&events).is_empty(), "{name}: {events:?}");
    }
}

#[test]
fn non_ip_frames_are_counted_not_reported() {
    let mut arp = vec![0u8; 12];
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let file = pcap(false, false, 1, &[(0, arp)]);
    let mut r = CaptureReader::new(&file[..]).unwrap();
    let mut n = 0;
    r.for_each(|_| n += 1).unwrap();
    assert_eq!(n, 0);
    assert_eq!(r.stats().non_ip, 1);
}

#[test]
fn unknown_link_type_is_reported_once() {
    let file = pcap(false, false, 147, &[(0, vec![1, 2, 3]), (0, vec![4, 5])]);
    let events = read_all(&file).unwrap();
    assert_eq!(findings(&events), vec![(1, FindingKind::UnknownLinkType)]);
}

#[test]
fn pcapng_interfaces_resolutions_and_sections() {
    for be in [false, true] {
        let mut ng = Ng::new(be);
        // Interface 0: Ethernet, default microseconds.
        ng.idb(1, None, None);
        // Interface 1: raw IP, nanoseconds, offset by 100 s.
        ng.idb(101, Some(9), Some(100));
        // Interface 2: Linux cooked, 2^-10 s units.
        ng.idb(113, Some(0x80 | 10), None);
        ng.epb(0, 1_500_000_250_000, &eth(&[], &udp4()));
        ng.epb(1, 7_000_000_001, &udp6());
        ng.epb(2, 5 * 1024 + 512, &sll(&udp4()));
        ng.spb(&eth(&[], &udp6()));
        ng.pb(1, 3_000_000_000, &udp4());
        // A name resolution block and an unknown custom block are skipped.
        ng.block(4, &[0, 0, 0, 0]);
        ng.block(0x0BAD, &[1, 2, 3, 4, 5]);
        // A second section: interfaces start again.
        ng.shb();
        ng.idb(228, Some(3), None);
        ng.epb(0, 42, &udp4());
        ng.epb(1, 0, &udp4());
        let mut r = CaptureReader::new(&ng.buf[..]).unwrap();
        assert_eq!(r.format(), Format::PcapNg);
        let mut events = Vec::new();
        r.for_each(|e| events.push(e.into_owned())).unwrap();
        let n = Timestamp::from_nanos;
        assert_eq!(
            timestamps(&events),
            vec![
                (1, n(1_500_000_250_000_000)),
                (2, n(107_000_000_001)),
                (3, n(5_500_000_000)),
                // The simple packet block inherits the previous timestamp.
                (4, n(5_500_000_000)),
                (5, n(103_000_000_000)),
                (6, n(42_000_000)),
            ],
            "be={be}"
        );
        assert_eq!(
            findings(&events),
            vec![(7, FindingKind::UnknownInterface)],
            "be={be}"
        );
        assert_eq!(sip_payloads(&events).len(), 6);
    }
}

#[test]
fn pcapng_bad_tsresol_is_reported_and_defaults_to_microseconds() {
    let mut ng = Ng::new(false);
    ng.idb(101, Some(40), None);
    ng.epb(0, 2_000_000, &udp4());
    let events = read_all(&ng.buf).unwrap();
    assert_eq!(findings(&events), vec![(0, FindingKind::BadInterface)]);
    assert_eq!(
        timestamps(&events),
        vec![(1, Timestamp::from_nanos(2_000_000_000))]
    );
}

#[test]
fn stun_is_recognised_and_counted() {
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    let frame = ip_udp(addr("10.0.0.1:5060"), addr("10.0.0.2:3478"), &stun);
    let file = pcap(false, false, 101, &[(0, frame)]);
    let mut r = CaptureReader::new(&file[..]).unwrap();
    let mut kinds = Vec::new();
    r.for_each(|e| {
        if let Event::Datagram { kind, .. } = e {
            kinds.push(kind)
        }
    })
    .unwrap();
    assert_eq!(kinds, vec![PayloadKind::Stun]);
    assert_eq!(r.stats().stun, 1);
}

#[test]
fn udp_kinds() {
    let a = addr("10.0.0.1:5060");
    let b = addr("10.0.0.2:5060");
    let recs: Vec<(i64, Vec<u8>)> = [
        &b"\r\n\r\n"[..],
        b"\r\n",
        b"hello",
        b"SIP/2.0 200 OK\r\n\r\n",
    ]
    .iter()
    .map(|p| (0, ip_udp(a, b, p)))
    .collect();
    let events = read_all(&pcap(false, false, 101, &recs)).unwrap();
    let kinds: Vec<_> = datagrams(&events).into_iter().map(|d| d.3).collect();
    assert_eq!(
        kinds,
        vec![
            PayloadKind::KeepAlivePing,
            PayloadKind::KeepAlivePong,
            PayloadKind::Other,
            PayloadKind::Sip
        ]
    );
}

#[test]
fn events_iterator_matches_callback() {
    let file = pcap(
        false,
        true,
        1,
        &[(5, eth(&[], &udp4())), (6, eth(&[], &udp6()))],
    );
    let via_iter: Vec<_> = CaptureReader::new(&file[..])
        .unwrap()
        .events()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(via_iter, read_all(&file).unwrap());
    assert_eq!(via_iter.len(), 2);
}

#[test]
fn modified_pcap_records() {
    // The modified (Kuznetzov) format: 8 more bytes per record header.
    let frame = eth(&[], &udp4());
    let mut f = pcap(false, false, 1, &[]);
    f[..4].copy_from_slice(&0xA1B2_CD34u32.to_le_bytes());
    for x in [7u32, 5, frame.len() as u32, frame.len() as u32, 2, 0] {
        f.extend_from_slice(&x.to_le_bytes());
    }
    f.extend_from_slice(&frame);
    let events = read_all(&f).unwrap();
    assert_eq!(sip_payloads(&events), vec![sip(1, 3)]);
    assert_eq!(
        timestamps(&events),
        vec![(1, Timestamp::from_nanos(7_000_005_000))]
    );
}
