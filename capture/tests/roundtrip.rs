//! Writing with `PcapWriter` and reading back with `CaptureReader` gives
//! the same payloads, addresses, timestamps and frame numbers.

mod common;

use common::{addr, sip};
use p2psip_capture::{
    CaptureReader, Event, Format, PayloadKind, PcapWriter, Timestamp, Transport, WriteError,
    read_all,
};

#[derive(Debug, PartialEq)]
struct Seen {
    frame: u64,
    first_frame: u64,
    ts: Timestamp,
    src: std::net::SocketAddr,
    dst: std::net::SocketAddr,
    transport: Transport,
    kind: PayloadKind,
    payload: Vec<u8>,
}

fn seen(events: &[Event<'_>]) -> Vec<Seen> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Datagram {
                frame,
                first_frame,
                ts,
                src,
                dst,
                transport,
                payload,
                kind,
            } => Some(Seen {
                frame: *frame,
                first_frame: *first_frame,
                ts: *ts,
                src: *src,
                dst: *dst,
                transport: *transport,
                kind: *kind,
                payload: payload.to_vec(),
            }),
            Event::Finding { .. } => None,
        })
        .collect()
}

#[test]
fn udp_and_tcp_round_trip() {
    let a4 = addr("192.0.2.1:5060");
    let b4 = addr("192.0.2.2:5070");
    let a6 = addr("[2001:db8::1]:5060");
    let b6 = addr("[2001:db8::2]:6000");
    let t = |s: i64, ns: u32| Timestamp::from_secs_nanos(1_700_000_000 + s, ns);
    let mut w = PcapWriter::new(Vec::new()).expect("header");
    let mut expected = Vec::new();
    let mut expect = |frame: u64, ts, src, dst, transport, kind, payload: Vec<u8>| {
        expected.push(Seen {
            frame,
            first_frame: frame,
            ts,
            src,
            dst,
            transport,
            kind,
            payload,
        })
    };

    let f = w.write_udp(t(0, 123_456_789), a4, b4, &sip(1, 10)).unwrap();
    expect(
        f,
        t(0, 123_456_789),
        a4,
        b4,
        Transport::Udp,
        PayloadKind::Sip,
        sip(1, 10),
    );
    let f = w.write_udp(t(1, 1), b6, a6, &sip(2, 0)).unwrap();
    expect(
        f,
        t(1, 1),
        b6,
        a6,
        Transport::Udp,
        PayloadKind::Sip,
        sip(2, 0),
    );

    assert_eq!(w.write_tcp_handshake(t(2, 0), a4, b4).unwrap(), 5);
    let f = w.write_tcp(t(3, 5), a4, b4, &sip(3, 100)).unwrap();
    expect(
        f,
        t(3, 5),
        a4,
        b4,
        Transport::Tcp,
        PayloadKind::Sip,
        sip(3, 100),
    );
    let f = w.write_tcp(t(4, 0), b4, a4, &sip(4, 0)).unwrap();
    expect(
        f,
        t(4, 0),
        b4,
        a4,
        Transport::Tcp,
        PayloadKind::Sip,
        sip(4, 0),
    );
    let f = w.write_tcp(t(5, 0), a4, b4, b"\r\n\r\n").unwrap();
    expect(
        f,
        t(5, 0),
        a4,
        b4,
        Transport::Tcp,
        PayloadKind::KeepAlivePing,
        b"\r\n\r\n".to_vec(),
    );
    // No handshake on IPv6: the reader picks the stream up mid-way.
    let f = w.write_tcp(t(6, 0), a6, b6, &sip(5, 7)).unwrap();
    expect(
        f,
        t(6, 0),
        a6,
        b6,
        Transport::Tcp,
        PayloadKind::Sip,
        sip(5, 7),
    );
    w.write_tcp_fin(t(7, 0), a4, b4).unwrap();
    w.write_tcp_fin(t(7, 1), b4, a4).unwrap();

    let bytes = w.into_inner().unwrap();
    let mut reader = CaptureReader::new(&bytes[..]).unwrap();
    assert_eq!(
        reader.format(),
        Format::Pcap {
            nanosecond: true,
            big_endian: false
        }
    );
    let mut events = Vec::new();
    reader.for_each(|e| events.push(e.into_owned())).unwrap();
    assert_eq!(seen(&events), expected);
    assert!(common::findings(&events).is_empty(), "{events:?}");
    assert_eq!(reader.frames(), 11);
    let stats = reader.stats();
    assert_eq!((stats.sip, stats.keepalives, stats.findings), (5, 1, 0));
}

#[test]
fn big_tcp_payload_is_split_and_reassembled() {
    let a = addr("10.0.0.1:5060");
    let b = addr("10.0.0.2:5060");
    let msg = sip(1, 150_000);
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    let last = w.write_tcp(Timestamp::from_nanos(1), a, b, &msg).unwrap();
    assert_eq!(last, 3, "150 kB in 64 kB segments");
    let bytes = w.into_inner().unwrap();
    let limits = p2psip_capture::Limits {
        max_message: 200_000,
        ..p2psip_capture::Limits::default()
    };
    let mut reader = CaptureReader::with_limits(&bytes[..], limits).unwrap();
    let mut events = Vec::new();
    reader.for_each(|e| events.push(e.into_owned())).unwrap();
    let d = common::datagrams(&events);
    assert_eq!(d.len(), 1, "{:?}", common::findings(&events));
    assert_eq!((d[0].0, d[0].1), (3, 1));
    assert_eq!(d[0].4, msg);
}

#[test]
fn big_udp_payload_is_written_as_fragments() {
    for (a, b) in [
        (addr("10.0.0.1:5060"), addr("10.0.0.2:5060")),
        (addr("[fd00::1]:5060"), addr("[fd00::2]:5060")),
    ] {
        let msg = sip(9, 65_200);
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let last = w.write_udp(Timestamp::from_nanos(5), a, b, &msg).unwrap();
        assert!(last > 40, "fragments of at most 1500 bytes");
        let events = read_all(&w.into_inner().unwrap()).unwrap();
        let d = common::datagrams(&events);
        assert_eq!(d.len(), 1, "{:?}", common::findings(&events));
        assert_eq!((d[0].0, d[0].1, d[0].3), (last, 1, PayloadKind::Sip));
        assert_eq!(d[0].4, msg);
    }
}

#[test]
fn mtu_fragmentation_on_request() {
    let (a, b) = (addr("10.0.0.1:5060"), addr("10.0.0.2:5060"));
    let msg = sip(3, 3000);
    let mut w = PcapWriter::new(Vec::new()).unwrap().with_udp_mtu(576);
    assert_eq!(w.write_udp(Timestamp::ZERO, a, b, &msg).unwrap(), 6);
    let events = read_all(&w.into_inner().unwrap()).unwrap();
    assert_eq!(common::sip_payloads(&events), vec![msg]);
}

#[test]
fn writer_refuses_what_it_cannot_write() {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    let v4 = addr("10.0.0.1:1");
    let v6 = addr("[::1]:1");
    assert!(matches!(
        w.write_udp(Timestamp::ZERO, v4, v6, b"x"),
        Err(WriteError::MixedFamilies { .. })
    ));
    assert!(matches!(
        w.write_udp(Timestamp::ZERO, v4, v4, &vec![0; 65_508]),
        Err(WriteError::PayloadTooLarge { max: 65_507, .. })
    ));
    assert!(matches!(
        w.write_udp(Timestamp::from_nanos(-1), v4, v4, b"x"),
        Err(WriteError::TimestampOutOfRange(_))
    ));
    assert_eq!(w.frames(), 0);
}

#[test]
fn explicit_sequence_numbers_wrap() {
    let (a, b) = (addr("10.0.0.1:5060"), addr("10.0.0.2:5060"));
    let m1 = sip(1, 20);
    let m2 = sip(2, 20);
    let mut w = PcapWriter::new(Vec::new())
        .unwrap()
        .with_tcp_segment_size(50);
    w.set_tcp_seq(a, b, u32::MAX - 60);
    w.write_tcp(Timestamp::ZERO, a, b, &m1).unwrap();
    w.write_tcp(Timestamp::ZERO, a, b, &m2).unwrap();
    assert!(w.tcp_next_seq(a, b).unwrap() < 1000, "wrapped past 2^32");
    let events = read_all(&w.into_inner().unwrap()).unwrap();
    assert_eq!(common::sip_payloads(&events), vec![m1, m2]);
}

/// Every header checksum the writer computes verifies.
#[test]
fn written_checksums_verify() {
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};
    let (a, b) = (addr("10.0.0.1:5060"), addr("10.0.0.2:6000"));
    let (c, d) = (addr("[fd00::1]:5060"), addr("[fd00::2]:6000"));
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    w.write_udp(Timestamp::ZERO, a, b, &sip(1, 3)).unwrap();
    w.write_udp(Timestamp::ZERO, c, d, &sip(2, 3)).unwrap();
    w.write_tcp_handshake(Timestamp::ZERO, a, b).unwrap();
    w.write_tcp(Timestamp::ZERO, a, b, &sip(3, 3)).unwrap();
    w.write_tcp(Timestamp::ZERO, d, c, &sip(4, 3)).unwrap();
    let file = w.into_inner().unwrap();
    let mut at = 24;
    let mut checked = 0;
    while at < file.len() {
        let len = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &file[at + 16..at + 16 + len];
        at += 16 + len;
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        match (&p.net, &p.transport) {
            (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(u))) => {
                let h = ip.header();
                assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
                let expect = u
                    .to_header()
                    .calc_checksum_ipv4(&h.to_header(), u.payload())
                    .unwrap();
                assert_eq!(u.checksum(), expect);
            }
            (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) => {
                let h = ip.header();
                assert_eq!(h.header_checksum(), h.to_header().calc_header_checksum());
                let expect = t
                    .to_header()
                    .calc_checksum_ipv4(&h.to_header(), t.payload())
                    .unwrap();
                assert_eq!(t.checksum(), expect);
            }
            (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Udp(u))) => {
                let expect = u
                    .to_header()
                    .calc_checksum_ipv6(&ip.header().to_header(), u.payload())
                    .unwrap();
                assert_eq!(u.checksum(), expect);
            }
            (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Tcp(t))) => {
                let expect = t
                    .to_header()
                    .calc_checksum_ipv6(&ip.header().to_header(), t.payload())
                    .unwrap();
                assert_eq!(t.checksum(), expect);
            }
            other => panic!("unexpected frame {other:?}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 7);
}
