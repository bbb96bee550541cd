//! IP layer: fragments (IPv4 and IPv6), extension headers, bad and cut
//! headers.

mod common;

use common::*;
use etherparse::{IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader, Ipv6Header, UdpHeader};
use p2psip_capture::{CaptureReader, FindingKind, Limits, PayloadKind, read_all};

const SRC: [u8; 4] = [10, 0, 0, 1];
const DST: [u8; 4] = [10, 0, 0, 2];

/// The UDP datagram (header + payload) for `payload`, ports 5060 -> 5060.
fn udp_datagram_v4(payload: &[u8]) -> Vec<u8> {
    let ip = Ipv4Header::new(0, 64, IpNumber::UDP, SRC, DST).unwrap();
    let udp = UdpHeader::with_ipv4_checksum(5060, 5060, &ip, payload).unwrap();
    [&udp.to_bytes()[..], payload].concat()
}

/// One IPv4 fragment carrying `part` at byte `offset`.
fn v4_fragment(id: u16, offset: usize, more: bool, part: &[u8]) -> Vec<u8> {
    let mut ip = Ipv4Header::new(part.len() as u16, 64, IpNumber::UDP, SRC, DST).unwrap();
    ip.identification = id;
    ip.dont_fragment = false;
    ip.more_fragments = more;
    ip.fragment_offset = IpFragOffset::try_new((offset / 8) as u16).unwrap();
    let mut v = Vec::new();
    ip.write(&mut v).unwrap();
    v.extend_from_slice(part);
    v
}

fn v4_fragments(id: u16, datagram: &[u8], size: usize) -> Vec<Vec<u8>> {
    datagram
        .chunks(size)
        .enumerate()
        .map(|(i, c)| v4_fragment(id, i * size, (i + 1) * size < datagram.len(), c))
        .collect()
}

fn raw(records: Vec<Vec<u8>>) -> Vec<u8> {
    let recs: Vec<(i64, Vec<u8>)> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| (i as i64, r))
        .collect();
    pcap(false, true, 101, &recs)
}

#[test]
fn ipv4_fragments_out_of_order_and_interleaved() {
    let m1 = sip(1, 100);
    let m2 = sip(2, 300);
    let f1 = v4_fragments(7, &udp_datagram_v4(&m1), 96);
    let f2 = v4_fragments(8, &udp_datagram_v4(&m2), 200);
    assert_eq!((f1.len(), f2.len()), (3, 3));
    let order = vec![
        f1[2].clone(),
        f2[1].clone(),
        f1[0].clone(),
        f2[0].clone(),
        f1[0].clone(), // duplicate
        f1[1].clone(),
        f2[2].clone(),
    ];
    let events = read_all(&raw(order)).unwrap();
    let d = datagrams(&events);
    assert_eq!(d.len(), 2, "{events:?}");
    assert_eq!((d[0].0, d[0].1, d[0].3), (6, 1, PayloadKind::Sip));
    assert_eq!(d[0].4, m1);
    assert_eq!((d[1].0, d[1].1), (7, 2));
    assert_eq!(d[1].4, m2);
    assert!(findings(&events).is_empty());
}

#[test]
fn overlapping_fragments_with_different_bytes_are_dropped() {
    let m = sip(1, 100);
    let dg = udp_datagram_v4(&m);
    let mut evil = dg[64..].to_vec();
    evil[0] ^= 0xFF;
    let events = read_all(&raw(vec![
        v4_fragment(1, 0, true, &dg[..96]),
        v4_fragment(1, 64, false, &evil),
    ]))
    .unwrap();
    assert!(datagrams(&events).is_empty());
    assert_eq!(findings(&events), vec![(2, FindingKind::FragmentOverlap)]);
    // Identical overlap: fine.
    let events = read_all(&raw(vec![
        v4_fragment(1, 0, true, &dg[..96]),
        v4_fragment(1, 64, false, &dg[64..]),
    ]))
    .unwrap();
    assert_eq!(sip_payloads(&events), vec![m]);
}

#[test]
fn fragment_pool_limits_and_timeouts() {
    let limits = Limits {
        max_frag_datagrams: 2,
        ..Limits::default()
    };
    let dg = udp_datagram_v4(&sip(1, 100));
    let starts: Vec<Vec<u8>> = (0..3)
        .map(|id| v4_fragment(id, 0, true, &dg[..96]))
        .collect();
    let file = raw(starts);
    let mut r = CaptureReader::with_limits(&file[..], limits).unwrap();
    let mut events = Vec::new();
    while r.step(&mut |e| events.push(e.into_owned())).unwrap() {
        assert!(r.decoder().fragment_buffered_bytes() <= 2 * 96);
    }
    assert_eq!(
        findings(&events),
        vec![
            (3, FindingKind::FragmentPoolOverflow),
            (3, FindingKind::FragmentTimeout),
            (3, FindingKind::FragmentTimeout)
        ]
    );
    // Capture-time timeout: the rest arrives 31 s later.
    let s = 1_000_000_000;
    let file = pcap(
        false,
        true,
        101,
        &[
            (0, v4_fragment(9, 0, true, &dg[..96])),
            (31 * s, v4_fragment(9, 96, false, &dg[96..])),
        ],
    );
    let events = read_all(&file).unwrap();
    assert_eq!(findings(&events)[0], (2, FindingKind::FragmentTimeout));
    assert!(datagrams(&events).is_empty());
}

fn v6_header(next: u8, payload_len: usize) -> Vec<u8> {
    let ip = Ipv6Header {
        payload_length: payload_len as u16,
        next_header: IpNumber(next),
        hop_limit: 64,
        source: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        destination: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        ..Default::default()
    };
    let mut v = Vec::new();
    ip.write(&mut v).unwrap();
    v
}

fn udp_datagram_v6(payload: &[u8]) -> Vec<u8> {
    let ip = Ipv6Header {
        next_header: IpNumber::UDP,
        source: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        destination: [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
        ..Default::default()
    };
    let udp = UdpHeader::with_ipv6_checksum(5060, 5060, &ip, payload).unwrap();
    [&udp.to_bytes()[..], payload].concat()
}

#[test]
fn ipv6_extension_headers_and_fragments() {
    let m = sip(4, 500);
    let dg = udp_datagram_v6(&m);
    // Hop-by-hop (8 bytes) -> routing (16 bytes) -> fragment -> UDP.
    let hop = [43u8, 0, 1, 4, 0, 0, 0, 0];
    let routing = [44u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut packets = Vec::new();
    let size = 256;
    for (i, part) in dg.chunks(size).enumerate() {
        let more = (i + 1) * size < dg.len();
        let frag = Ipv6FragmentHeader::new(
            IpNumber::UDP,
            IpFragOffset::try_new((i * size / 8) as u16).unwrap(),
            more,
            0xABCD,
        );
        let mut p = v6_header(0, hop.len() + routing.len() + 8 + part.len());
        p.extend_from_slice(&hop);
        p.extend_from_slice(&routing);
        frag.write(&mut p).unwrap();
        p.extend_from_slice(part);
        packets.push(p);
    }
    packets.reverse();
    let n = packets.len() as u64;
    // An atomic fragment (offset 0, no more) is just a header to skip.
    let mut atomic = v6_header(44, 8 + dg.len());
    Ipv6FragmentHeader::new(IpNumber::UDP, IpFragOffset::try_new(0).unwrap(), false, 1)
        .write(&mut atomic)
        .unwrap();
    atomic.extend_from_slice(&dg);
    packets.push(atomic);
    let events = read_all(&raw(packets)).unwrap();
    let d = datagrams(&events);
    assert_eq!(d.len(), 2, "{events:?}");
    assert_eq!((d[0].0, d[0].1), (n, 1));
    assert_eq!(d[0].4, m);
    assert_eq!(d[1].4, m);
    assert_eq!(d[0].3, PayloadKind::Sip);
}

#[test]
fn bad_and_cut_headers_are_findings() {
    let good = ip_udp(addr("10.0.0.1:5060"), addr("10.0.0.2:5060"), &sip(1, 0));
    let mut bad_ihl = good.clone();
    bad_ihl[0] = 0x44;
    let mut udp_too_long = good.clone();
    udp_too_long[24] = 0xFF;
    let mut bad_tcp = ip_tcp(
        addr("10.0.0.1:1"),
        addr("10.0.0.2:2"),
        0,
        Flags::default(),
        b"x",
    );
    bad_tcp[32] = 0x10; // data offset 1
    let cut_ip = good[..12].to_vec();
    let cut_udp = good[..24].to_vec();
    let mut cut_payload = good.clone();
    cut_payload.truncate(good.len() - 5);
    let v6 = ip_udp(addr("[::1]:1"), addr("[::2]:2"), b"hi");
    let events = read_all(&raw(vec![
        bad_ihl,
        udp_too_long,
        bad_tcp,
        cut_ip,
        cut_udp,
        cut_payload,
        v6[..30].to_vec(),
        vec![0x45],
        vec![],
    ]))
    .unwrap();
    use FindingKind::*;
    assert_eq!(
        findings(&events),
        vec![
            (1, BadIpHeader),
            (2, BadTransportHeader),
            (3, BadTransportHeader),
            (4, TruncatedPacket),
            (5, TruncatedPacket),
            (6, TruncatedPacket),
            (7, TruncatedPacket),
            (8, TruncatedPacket),
            (9, TruncatedPacket),
        ]
    );
}

#[test]
fn ethernet_padding_and_offloaded_lengths() {
    // A short datagram padded to the Ethernet minimum.
    let mut frame = eth(
        &[],
        &ip_udp(addr("10.0.0.1:5060"), addr("10.0.0.2:5060"), b"\r\n"),
    );
    frame.resize(60, 0);
    // IPv4 total length 0, as segmentation offload leaves it.
    let m = sip(1, 0);
    let mut tso = ip_tcp(
        addr("10.0.0.1:5060"),
        addr("10.0.0.2:5060"),
        1,
        Flags::default(),
        &m,
    );
    tso[2] = 0;
    tso[3] = 0;
    let file = pcap(false, false, 1, &[(0, frame), (1, eth(&[], &tso))]);
    let events = read_all(&file).unwrap();
    let d = datagrams(&events);
    assert_eq!(d[0].4, b"\r\n");
    assert_eq!(d[1].4, m);
    assert!(findings(&events).is_empty());
}
