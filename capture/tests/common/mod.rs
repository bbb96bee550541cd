//! Builders of test captures: legacy pcap and pcapng containers written
//! byte by byte, link-layer wrappers, and IP/UDP/TCP packets built with
//! etherparse.

#![allow(dead_code)]

use std::net::SocketAddr;

use etherparse::PacketBuilder;
use p2psip_capture::{Event, PayloadKind, Transport};

/// A SIP request of `body` body bytes, numbered `n`.
pub fn sip(n: usize, body: usize) -> Vec<u8> {
    let mut m = format!(
        "OPTIONS sip:peer{n}@example.test SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK{n}\r\nCall-ID: {n}@test\r\nCSeq: {n} OPTIONS\r\nContent-Length: {body}\r\n\r\n"
    )
    .into_bytes();
    m.extend((0..body).map(|i| b'a' + (i % 26) as u8));
    m
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// A legacy pcap file.
pub fn pcap(big_endian: bool, nanos: bool, link: u32, records: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let w16 = |v: &mut Vec<u8>, x: u16| {
        v.extend_from_slice(&if big_endian {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        })
    };
    let mut f = Vec::new();
    w32(&mut f, if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 });
    w16(&mut f, 2);
    w16(&mut f, 4);
    w32(&mut f, 0);
    w32(&mut f, 0);
    w32(&mut f, 65535);
    w32(&mut f, link);
    for (ts, data) in records {
        let secs = ts.div_euclid(1_000_000_000) as u32;
        let ns = ts.rem_euclid(1_000_000_000) as u32;
        w32(&mut f, secs);
        w32(&mut f, if nanos { ns } else { ns / 1000 });
        w32(&mut f, data.len() as u32);
        w32(&mut f, data.len() as u32);
        f.extend_from_slice(data);
    }
    f
}

/// A pcapng file under construction.
pub struct Ng {
    pub be: bool,
    pub buf: Vec<u8>,
}

impl Ng {
    pub fn new(be: bool) -> Ng {
        let mut ng = Ng {
            be,
            buf: Vec::new(),
        };
        ng.shb();
        ng
    }

    fn u32b(&self, x: u32) -> [u8; 4] {
        if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    }

    fn u16b(&self, x: u16) -> [u8; 2] {
        if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    }

    /// A block of type `t` with `body` (padded to 4 bytes).
    pub fn block(&mut self, t: u32, body: &[u8]) -> &mut Ng {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&self.u32b(t));
        b.extend_from_slice(&self.u32b(len));
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&self.u32b(len));
        self.buf.extend_from_slice(&b);
        self
    }

    pub fn shb(&mut self) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(0x1A2B_3C4D));
        body.extend_from_slice(&self.u16b(1));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&[0xFF; 8]);
        self.block(0x0A0D_0D0A, &body)
    }

    /// An interface description with optional if_tsresol / if_tsoffset.
    pub fn idb(&mut self, link: u16, tsresol: Option<u8>, tsoffset: Option<i64>) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16b(link));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&self.u32b(0));
        if let Some(r) = tsresol {
            body.extend_from_slice(&self.u16b(9));
            body.extend_from_slice(&self.u16b(1));
            body.extend_from_slice(&[r, 0, 0, 0]);
        }
        if let Some(o) = tsoffset {
            body.extend_from_slice(&self.u16b(14));
            body.extend_from_slice(&self.u16b(8));
            body.extend_from_slice(&if self.be {
                o.to_be_bytes()
            } else {
                o.to_le_bytes()
            });
        }
        if tsresol.is_some() || tsoffset.is_some() {
            body.extend_from_slice(&[0, 0, 0, 0]);
        }
        self.block(1, &body)
    }

    /// An enhanced packet block; `ts` in the interface's units.
    pub fn epb(&mut self, if_id: u32, ts: u64, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(if_id));
        body.extend_from_slice(&self.u32b((ts >> 32) as u32));
        body.extend_from_slice(&self.u32b(ts as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    pub fn spb(&mut self, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// The obsolete packet block (type 2).
    pub fn pb(&mut self, if_id: u16, ts: u64, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16b(if_id));
        body.extend_from_slice(&self.u16b(0));
        body.extend_from_slice(&self.u32b((ts >> 32) as u32));
        body.extend_from_slice(&self.u32b(ts as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(&self.u32b(data.len() as u32));
        body.extend_from_slice(data);
        self.block(2, &body)
    }
}

/// A raw IPv4 or IPv6 UDP packet.
pub fn ip_udp(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let b = match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            PacketBuilder::ipv4(s.ip().octets(), d.ip().octets(), 64)
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            PacketBuilder::ipv6(s.ip().octets(), d.ip().octets(), 64)
        }
        _ => panic!("mixed families"),
    };
    let mut v = Vec::new();
    b.udp(src.port(), dst.port())
        .write(&mut v, payload)
        .expect("build udp");
    v
}

/// TCP flags for [`ip_tcp`].
#[derive(Clone, Copy, Default)]
pub struct Flags {
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
}

/// A raw IPv4 or IPv6 TCP packet.
pub fn ip_tcp(src: SocketAddr, dst: SocketAddr, seq: u32, flags: Flags, payload: &[u8]) -> Vec<u8> {
    let b = match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            PacketBuilder::ipv4(s.ip().octets(), d.ip().octets(), 64)
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            PacketBuilder::ipv6(s.ip().octets(), d.ip().octets(), 64)
        }
        _ => panic!("mixed families"),
    };
    let mut t = b.tcp(src.port(), dst.port(), seq, 65535).ack(1);
    if flags.syn {
        t = t.syn();
    }
    if flags.fin {
        t = t.fin();
    }
    if flags.rst {
        t = t.rst();
    }
    let mut v = Vec::new();
    t.write(&mut v, payload).expect("build tcp");
    v
}

/// Ethernet II around `payload`, with optional VLAN tags (TPID, VID).
pub fn eth(tags: &[(u16, u16)], payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    for (tpid, vid) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    let v6 = payload.first().is_some_and(|b| b >> 4 == 6);
    f.extend_from_slice(&(if v6 { 0x86DDu16 } else { 0x0800u16 }).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn ethertype_of(payload: &[u8]) -> u16 {
    if payload.first().is_some_and(|b| b >> 4 == 6) {
        0x86DD
    } else {
        0x0800
    }
}

/// Linux cooked capture v1.
pub fn sll(payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    f.extend_from_slice(&ethertype_of(payload).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// Linux cooked capture v2.
pub fn sll2(payload: &[u8]) -> Vec<u8> {
    let mut f = ethertype_of(payload).to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// BSD loopback: the address family in the given byte order.
pub fn null(big_endian: bool, payload: &[u8]) -> Vec<u8> {
    let family: u32 = if ethertype_of(payload) == 0x86DD {
        30
    } else {
        2
    };
    let mut f = if big_endian {
        family.to_be_bytes()
    } else {
        family.to_le_bytes()
    }
    .to_vec();
    f.extend_from_slice(payload);
    f
}

/// Datagram events as (frame, first_frame, transport, kind, payload).
pub fn datagrams(events: &[Event<'_>]) -> Vec<(u64, u64, Transport, PayloadKind, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Datagram {
                frame,
                first_frame,
                transport,
                kind,
                payload,
                ..
            } => Some((*frame, *first_frame, *transport, *kind, payload.to_vec())),
            _ => None,
        })
        .collect()
}

/// Findings as (frame, kind).
pub fn findings(events: &[Event<'_>]) -> Vec<(u64, p2psip_capture::FindingKind)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Finding { frame, kind, .. } => Some((*frame, *kind)),
            _ => None,
        })
        .collect()
}

/// SIP payloads in order.
pub fn sip_payloads(events: &[Event<'_>]) -> Vec<Vec<u8>> {
    datagrams(events)
        .into_iter()
        .filter(|d| d.3 == PayloadKind::Sip)
        .map(|d| d.4)
        .collect()
}
