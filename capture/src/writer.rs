//! Writing the harness's own per-case captures.
//!
//! Format: legacy pcap with the nanosecond magic (`a1b23c4d`, so capture
//! timestamps round-trip exactly), link type Ethernet, snaplen 262144.
//! Ethernet is the link type every tool dissects; frames get synthetic,
//! stable MAC addresses derived from the IP addresses (02:00 + the last 4
//! address bytes). IPv4 and IPv6 headers, UDP and TCP headers and their
//! checksums are built with etherparse's `PacketBuilder`.
//!
//! Wireshark/tshark dissect SIP on ports 5060 (UDP, TCP) by default; on
//! other ports the heuristic SIP dissectors for UDP and TCP (enabled by
//! default) recognise a payload that starts with a SIP request or status
//! line, unless another protocol registered on that port claims it first
//! (tshark 4.0 shows SIP on UDP port 7000 heuristically, but gives TCP
//! port 7000 to Gryphon). `-d udp.port==X,sip` / `-d tcp.port==X,sip`
//! always works; `examples/write_sample.rs` writes a file to try this on. For TCP,
//! [`PcapWriter::write_tcp_handshake`] lets Wireshark show relative
//! sequence numbers and full stream analysis, but it is optional.
//!
//! Large payloads: a TCP payload is split into segments of at most
//! [`TCP_MAX_SEGMENT`] bytes (configurable down to 1 with
//! [`PcapWriter::with_tcp_segment_size`]), with consecutive sequence
//! numbers. A UDP payload over [`UDP_FRAGMENT_THRESHOLD`] bytes (or whose
//! packet exceeds the MTU set with [`PcapWriter::with_udp_mtu`]) is written
//! as IP fragments for a [`FRAGMENT_MTU`]-byte (or the set) MTU: IPv4
//! fragments, or IPv6 fragment headers. A UDP payload larger than one
//! datagram can carry (65507 bytes over IPv4, 65527 over IPv6) is refused.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

use etherparse::err::packet::BuildWriteError;
use etherparse::{
    EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header, Ipv6FragmentHeader, Ipv6Header,
    PacketBuilder, PacketBuilderStep, UdpHeader,
};

use crate::{Timestamp, WriteError};

/// Snapshot length declared in the file header.
pub const SNAPLEN: u32 = 262_144;
/// Largest TCP segment payload written.
pub const TCP_MAX_SEGMENT: usize = 64_000;
/// UDP payloads larger than this are written as IP fragments.
pub const UDP_FRAGMENT_THRESHOLD: usize = 65_000;
/// MTU used for those fragments unless another is set.
pub const FRAGMENT_MTU: usize = 1500;

const TTL: u8 = 64;
const WINDOW: u16 = 65_535;
const LINKTYPE_ETHERNET: u32 = 1;
const MAX_UDP_V4: usize = 65_535 - 20 - 8;
const MAX_UDP_V6: usize = 65_535 - 8;

type Conn = (SocketAddr, SocketAddr);

/// Writes a legacy pcap of synthesised Ethernet/IP/UDP/TCP frames.
pub struct PcapWriter<W: Write> {
    out: W,
    frames: u64,
    ip_id: u16,
    /// Next sequence number per direction.
    next_seq: HashMap<Conn, u32>,
    udp_mtu: Option<usize>,
    tcp_segment: usize,
    frame_buf: Vec<u8>,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> Result<PcapWriter<W>, WriteError> {
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&0xA1B2_3C4Du32.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&SNAPLEN.to_le_bytes());
        header.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter {
            out,
            frames: 0,
            ip_id: 1,
            next_seq: HashMap::new(),
            udp_mtu: None,
            tcp_segment: TCP_MAX_SEGMENT,
            frame_buf: Vec::with_capacity(2048),
        })
    }

    /// Fragments every UDP datagram whose IP packet exceeds `mtu` bytes
    /// (at least 68 for IPv4, 1280 for IPv6, as the RFCs require).
    pub fn with_udp_mtu(mut self, mtu: usize) -> PcapWriter<W> {
        self.udp_mtu = Some(mtu.max(68));
        self
    }

    /// Splits TCP payloads into segments of at most `max` bytes.
    pub fn with_tcp_segment_size(mut self, max: usize) -> PcapWriter<W> {
        self.tcp_segment = max.clamp(1, TCP_MAX_SEGMENT);
        self
    }

    /// Records written so far (the frame number of the last one).
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The sequence number the next segment from `src` to `dst` will carry.
    pub fn tcp_next_seq(&self, src: SocketAddr, dst: SocketAddr) -> Option<u32> {
        self.next_seq.get(&(src, dst)).copied()
    }

    /// Sets the sequence number of the next segment from `src` to `dst`
    /// (to write retransmissions, gaps or wrap-arounds on purpose).
    pub fn set_tcp_seq(&mut self, src: SocketAddr, dst: SocketAddr, seq: u32) {
        self.next_seq.insert((src, dst), seq);
    }

    /// Writes one UDP datagram (fragmented if large, see the module docs);
    /// returns the frame number of its last record.
    pub fn write_udp(
        &mut self,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> Result<u64, WriteError> {
        let (max, ip_header) = match src.ip() {
            IpAddr::V4(_) => (MAX_UDP_V4, 20),
            IpAddr::V6(_) => (MAX_UDP_V6, 40),
        };
        if payload.len() > max {
            return Err(WriteError::PayloadTooLarge {
                len: payload.len(),
                max,
            });
        }
        let packet_len = ip_header + 8 + payload.len();
        let mtu = match self.udp_mtu {
            Some(mtu) if packet_len > mtu => Some(mtu),
            _ if payload.len() > UDP_FRAGMENT_THRESHOLD => Some(FRAGMENT_MTU),
            _ => None,
        };
        if let Some(mtu) = mtu {
            return self.write_udp_fragments(ts, src, dst, payload, mtu);
        }
        let ip = self.ip_step(src, dst)?;
        let builder = ip.udp(src.port(), dst.port());
        self.frame_buf.clear();
        builder
            .write(&mut self.frame_buf, payload)
            .map_err(build_error)?;
        self.record(ts)
    }

    /// Writes a SYN, SYN-ACK, ACK exchange and sets both directions'
    /// sequence numbers after it; returns the last frame number.
    pub fn write_tcp_handshake(
        &mut self,
        ts: Timestamp,
        client: SocketAddr,
        server: SocketAddr,
    ) -> Result<u64, WriteError> {
        let c_isn = self.initial_seq(client, server);
        let s_isn = self.initial_seq(server, client);
        self.tcp_segment_record(ts, client, server, c_isn, None, Flags::Syn, &[])?;
        self.tcp_segment_record(
            ts,
            server,
            client,
            s_isn,
            Some(c_isn.wrapping_add(1)),
            Flags::Syn,
            &[],
        )?;
        self.next_seq
            .insert((client, server), c_isn.wrapping_add(1));
        self.next_seq
            .insert((server, client), s_isn.wrapping_add(1));
        self.tcp_segment_record(
            ts,
            client,
            server,
            c_isn.wrapping_add(1),
            Some(s_isn.wrapping_add(1)),
            Flags::None,
            &[],
        )
    }

    /// Writes `payload` as the next bytes of the TCP stream from `src` to
    /// `dst`, in segments of at most the segment size; returns the frame
    /// number of the last one. An empty payload writes a bare ACK.
    pub fn write_tcp(
        &mut self,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> Result<u64, WriteError> {
        let mut seq = self.current_seq(src, dst);
        let ack = self.next_seq.get(&(dst, src)).copied();
        if payload.is_empty() {
            return self.tcp_segment_record(ts, src, dst, seq, ack, Flags::None, &[]);
        }
        let mut last = self.frames;
        let count = payload.len().div_ceil(self.tcp_segment);
        for (i, chunk) in payload.chunks(self.tcp_segment).enumerate() {
            let flags = if i + 1 == count {
                Flags::Psh
            } else {
                Flags::None
            };
            last = self.tcp_segment_record(ts, src, dst, seq, ack, flags, chunk)?;
            seq = seq.wrapping_add(chunk.len() as u32);
            self.next_seq.insert((src, dst), seq);
        }
        Ok(last)
    }

    /// Writes a FIN from `src` to `dst`; returns its frame number.
    pub fn write_tcp_fin(
        &mut self,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Result<u64, WriteError> {
        let seq = self.current_seq(src, dst);
        let ack = self.next_seq.get(&(dst, src)).copied();
        let frame = self.tcp_segment_record(ts, src, dst, seq, ack, Flags::Fin, &[])?;
        self.next_seq.insert((src, dst), seq.wrapping_add(1));
        Ok(frame)
    }

    /// Writes a ready-made Ethernet frame; returns its frame number.
    pub fn write_frame(&mut self, ts: Timestamp, frame: &[u8]) -> Result<u64, WriteError> {
        self.frame_buf.clear();
        self.frame_buf.extend_from_slice(frame);
        self.record(ts)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> Result<W, WriteError> {
        self.out.flush()?;
        Ok(self.out)
    }

    fn current_seq(&mut self, src: SocketAddr, dst: SocketAddr) -> u32 {
        let isn = self.initial_seq(src, dst);
        *self.next_seq.entry((src, dst)).or_insert(isn)
    }

    /// A stable initial sequence number per direction (FNV-1a of the
    /// addresses), so the same case writes the same file.
    fn initial_seq(&self, src: SocketAddr, dst: SocketAddr) -> u32 {
        let mut h: u32 = 0x811C_9DC5;
        for b in src
            .to_string()
            .bytes()
            .chain([b'>'])
            .chain(dst.to_string().bytes())
        {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        h
    }

    fn ip_step(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Result<PacketBuilderStep<etherparse::IpHeaders>, WriteError> {
        let eth = PacketBuilder::ethernet2(mac(src.ip()), mac(dst.ip()));
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Ok(eth.ipv4(s.octets(), d.octets(), TTL)),
            (IpAddr::V6(s), IpAddr::V6(d)) => Ok(eth.ipv6(s.octets(), d.octets(), TTL)),
            _ => Err(WriteError::MixedFamilies { src, dst }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp_segment_record(
        &mut self,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: Option<u32>,
        flags: Flags,
        payload: &[u8],
    ) -> Result<u64, WriteError> {
        let ip = self.ip_step(src, dst)?;
        let mut tcp = ip.tcp(src.port(), dst.port(), seq, WINDOW);
        if let Some(ack) = ack {
            tcp = tcp.ack(ack);
        }
        tcp = match flags {
            Flags::None => tcp,
            Flags::Psh => tcp.psh(),
            Flags::Syn => tcp.syn(),
            Flags::Fin => tcp.fin(),
        };
        self.frame_buf.clear();
        tcp.write(&mut self.frame_buf, payload)
            .map_err(build_error)?;
        self.record(ts)
    }

    fn write_udp_fragments(
        &mut self,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        mtu: usize,
    ) -> Result<u64, WriteError> {
        let id = self.ip_id;
        self.ip_id = self.ip_id.wrapping_add(1);
        let (eth_type, datagram, chunk) = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let ip = Ipv4Header::new(0, TTL, IpNumber::UDP, s.octets(), d.octets())
                    .map_err(|e| WriteError::Build(e.to_string()))?;
                let udp = UdpHeader::with_ipv4_checksum(src.port(), dst.port(), &ip, payload)
                    .map_err(|e| WriteError::Build(e.to_string()))?;
                (
                    EtherType::IPV4,
                    [&udp.to_bytes()[..], payload].concat(),
                    (mtu.max(68) - 20) / 8 * 8,
                )
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let ip = Ipv6Header {
                    next_header: IpNumber::UDP,
                    hop_limit: TTL,
                    source: s.octets(),
                    destination: d.octets(),
                    ..Default::default()
                };
                let udp = UdpHeader::with_ipv6_checksum(src.port(), dst.port(), &ip, payload)
                    .map_err(|e| WriteError::Build(e.to_string()))?;
                (
                    EtherType::IPV6,
                    [&udp.to_bytes()[..], payload].concat(),
                    (mtu.max(1280) - 48) / 8 * 8,
                )
            }
            _ => return Err(WriteError::MixedFamilies { src, dst }),
        };
        let eth = Ethernet2Header {
            source: mac(src.ip()),
            destination: mac(dst.ip()),
            ether_type: eth_type,
        };
        let mut last = self.frames;
        for (i, part) in datagram.chunks(chunk).enumerate() {
            let offset = i * chunk;
            let more = offset + part.len() < datagram.len();
            // offset < 65536, so offset / 8 fits the 13-bit field.
            let frag_offset = IpFragOffset::try_new((offset / 8) as u16)
                .map_err(|e| WriteError::Build(e.to_string()))?;
            self.frame_buf.clear();
            eth.write(&mut self.frame_buf)?;
            match (src.ip(), dst.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    let mut ip = Ipv4Header::new(0, TTL, IpNumber::UDP, s.octets(), d.octets())
                        .map_err(|e| WriteError::Build(e.to_string()))?;
                    ip.set_payload_len(part.len())
                        .map_err(|e| WriteError::Build(e.to_string()))?;
                    ip.identification = id;
                    ip.dont_fragment = false;
                    ip.more_fragments = more;
                    ip.fragment_offset = frag_offset;
                    ip.write(&mut self.frame_buf)?;
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    let ip = Ipv6Header {
                        // part.len() + 8 <= mtu, well below 65536.
                        payload_length: (part.len() + 8) as u16,
                        next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
                        hop_limit: TTL,
                        source: s.octets(),
                        destination: d.octets(),
                        ..Default::default()
                    };
                    ip.write(&mut self.frame_buf)?;
                    Ipv6FragmentHeader::new(IpNumber::UDP, frag_offset, more, u32::from(id))
                        .write(&mut self.frame_buf)?;
                }
                _ => return Err(WriteError::MixedFamilies { src, dst }),
            }
            self.frame_buf.extend_from_slice(part);
            last = self.record(ts)?;
        }
        Ok(last)
    }

    /// Writes `frame_buf` as one record.
    fn record(&mut self, ts: Timestamp) -> Result<u64, WriteError> {
        let secs = u32::try_from(ts.secs()).map_err(|_| WriteError::TimestampOutOfRange(ts))?;
        let len = u32::try_from(self.frame_buf.len())
            .map_err(|_| WriteError::Build("frame too large".into()))?;
        let mut header = [0u8; 16];
        header[..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&ts.subsec_nanos().to_le_bytes());
        header[8..12].copy_from_slice(&len.to_le_bytes());
        header[12..16].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(&self.frame_buf)?;
        self.frames += 1;
        Ok(self.frames)
    }
}

#[derive(Clone, Copy)]
enum Flags {
    None,
    Psh,
    Syn,
    Fin,
}

/// A locally administered MAC address made from the IP address.
fn mac(ip: IpAddr) -> [u8; 6] {
    let tail = match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(a) => {
            let o = a.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x00, tail[0], tail[1], tail[2], tail[3]]
}

fn build_error(e: BuildWriteError) -> WriteError {
    match e {
        BuildWriteError::Io(e) => WriteError::Io(e),
        other => WriteError::Build(other.to_string()),
    }
}
