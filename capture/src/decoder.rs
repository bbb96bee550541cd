//! From captured frames to events: link layer, IPv4/IPv6 (with extension
//! headers and fragment reassembly), UDP datagrams and TCP segments.
//!
//! [`Decoder`] is independent of the file format: [`crate::CaptureReader`]
//! feeds it frames, and anything else holding link-layer frames (a live
//! capture, a test) can too.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use etherparse::err::{ip_auth, ipv4, ipv6, tcp};
use etherparse::{
    IpAuthHeaderSlice, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice,
    Ipv6RawExtHeaderSlice, TcpHeaderSlice, UdpHeaderSlice,
};

use crate::classify::classify_datagram;
use crate::defrag::{Defrag, FragKey, FragLimits, Fragment};
use crate::link::{self, LinkError, LinkType, Network};
use crate::tcp::{Segment, TcpLimits, TcpTable};
use crate::{Event, FindingKind, Stats, Timestamp, Transport};

/// Every bound the reader keeps. The defaults suit SIP captures of any
/// length on an ordinary machine: about 100 MiB in the worst case.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Initial size of the read buffer (bytes).
    pub read_buffer: usize,
    /// Largest pcap record or pcapng block accepted; the read buffer grows
    /// up to about this size for one, and no further.
    pub max_block: usize,
    /// pcapng interfaces described per section.
    pub max_interfaces: usize,
    /// Largest SIP message framed out of a TCP stream.
    pub max_message: usize,
    /// TCP directions (one per source/destination pair) tracked at once.
    pub max_tcp_streams: usize,
    /// Out-of-order bytes and segments held per direction.
    pub max_tcp_ooo_bytes: usize,
    pub max_tcp_ooo_segments: usize,
    /// Bytes buffered by all TCP directions together.
    pub max_tcp_bytes: usize,
    /// A TCP direction quiet for this long (capture time) is dropped.
    pub tcp_idle_timeout: Duration,
    /// Fragmented datagrams pending at once, and their bytes.
    pub max_frag_datagrams: usize,
    pub max_frag_bytes: usize,
    /// A fragmented datagram not complete after this long (capture time)
    /// is dropped.
    pub frag_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            read_buffer: 256 * 1024,
            max_block: 16 * 1024 * 1024,
            max_interfaces: 4096,
            max_message: 64 * 1024,
            max_tcp_streams: 4096,
            max_tcp_ooo_bytes: 256 * 1024,
            max_tcp_ooo_segments: 256,
            max_tcp_bytes: 64 * 1024 * 1024,
            tcp_idle_timeout: Duration::from_secs(300),
            max_frag_datagrams: 1024,
            max_frag_bytes: 8 * 1024 * 1024,
            frag_timeout: Duration::from_secs(30),
        }
    }
}

/// How often (capture time) timed-out fragments are looked for.
const FRAG_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Unknown link types reported (each once); more are counted silently.
const MAX_REPORTED_LINK_TYPES: usize = 64;
/// IPv6 extension headers followed before giving up on a packet.
const MAX_IPV6_EXTENSIONS: usize = 16;

const IP_TCP: u8 = 6;
const IP_UDP: u8 = 17;

type Sink<'s> = &'s mut dyn FnMut(Event<'_>);

/// The packet being decoded.
#[derive(Clone, Copy)]
struct Pkt {
    frame: u64,
    ts: Timestamp,
}

/// Decodes frames into events, holding the fragment pool and TCP streams.
#[derive(Debug)]
pub struct Decoder {
    defrag: Defrag,
    tcp: TcpTable,
    stats: Stats,
    clock: Option<Timestamp>,
    next_frag_sweep: Option<Timestamp>,
    reported_links: Vec<LinkType>,
    last_frame: u64,
}

/// Counts an event and hands it on.
fn emit(stats: &mut Stats, sink: Sink<'_>, event: Event<'_>) {
    stats.count(&event);
    sink(event);
}

impl Decoder {
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            defrag: Defrag::new(FragLimits {
                max_datagrams: limits.max_frag_datagrams,
                max_bytes: limits.max_frag_bytes,
                timeout: limits.frag_timeout,
            }),
            tcp: TcpTable::new(TcpLimits {
                max_message: limits.max_message,
                max_streams: limits.max_tcp_streams,
                max_ooo_bytes: limits.max_tcp_ooo_bytes,
                max_ooo_segments: limits.max_tcp_ooo_segments,
                max_total_bytes: limits.max_tcp_bytes,
                idle_timeout: limits.tcp_idle_timeout,
            }),
            stats: Stats::default(),
            clock: None,
            next_frag_sweep: None,
            reported_links: Vec::new(),
            last_frame: 0,
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        let tcp = self.tcp.counters();
        Stats {
            tcp_duplicates: tcp.duplicates,
            tcp_skipped_bytes: tcp.skipped_bytes,
            ..self.stats.clone()
        }
    }

    /// Bytes buffered by TCP reassembly (partial messages, out-of-order
    /// data), bounded by [`Limits::max_tcp_bytes`].
    pub fn tcp_buffered_bytes(&self) -> usize {
        self.tcp.buffered_bytes()
    }

    /// TCP directions tracked, bounded by [`Limits::max_tcp_streams`].
    pub fn tcp_streams(&self) -> usize {
        self.tcp.streams()
    }

    /// Bytes held by pending fragments, bounded by
    /// [`Limits::max_frag_bytes`].
    pub fn fragment_buffered_bytes(&self) -> usize {
        self.defrag.buffered_bytes()
    }

    /// Reports a finding found outside the decoder (by the file reader),
    /// so that it is counted with the others.
    pub fn finding(&mut self, frame: u64, kind: FindingKind, message: String, sink: Sink<'_>) {
        emit(
            &mut self.stats,
            sink,
            Event::Finding {
                frame,
                kind,
                message,
            },
        );
    }

    /// Decodes one captured frame (`frame` is its 1-based number).
    pub fn frame(
        &mut self,
        frame: u64,
        ts: Timestamp,
        link: LinkType,
        data: &[u8],
        sink: Sink<'_>,
    ) {
        self.stats.frames += 1;
        self.stats.captured_bytes += data.len() as u64;
        self.last_frame = frame;
        let pkt = Pkt { frame, ts };
        self.tick(pkt, sink);
        match link::decode(link, data) {
            Ok(Network::Ipv4(p)) => self.ipv4(p, pkt, sink),
            Ok(Network::Ipv6(p)) => self.ipv6(p, pkt, sink),
            Ok(Network::NotIp) => self.stats.non_ip += 1,
            Err(LinkError::Unsupported) => {
                self.stats.non_ip += 1;
                if self.reported_links.len() < MAX_REPORTED_LINK_TYPES
                    && !self.reported_links.contains(&link)
                {
                    self.reported_links.push(link);
                    self.report(
                        pkt,
                        sink,
                        FindingKind::UnknownLinkType,
                        format!("link type {link} is not decoded; its frames are skipped"),
                    );
                }
            }
            Err(LinkError::Truncated(what)) => self.report(
                pkt,
                sink,
                FindingKind::TruncatedPacket,
                format!("frame of {} bytes too short for its {what}", data.len()),
            ),
            Err(LinkError::Bad(what)) => {
                self.report(pkt, sink, FindingKind::BadLinkHeader, what.to_string())
            }
        }
    }

    /// Reports what is left incomplete at the end of the capture.
    pub fn finish(&mut self, sink: Sink<'_>) {
        let frame = self.last_frame;
        let ts = self.clock.unwrap_or_default();
        let Decoder {
            defrag, tcp, stats, ..
        } = self;
        defrag.finish(&mut |kind, message| {
            emit(
                stats,
                sink,
                Event::Finding {
                    frame,
                    kind,
                    message,
                },
            )
        });
        tcp.finish(frame, ts, &mut |e| emit(stats, sink, e));
    }

    /// Advances the capture clock (it never goes back) and expires
    /// fragments by it.
    fn tick(&mut self, pkt: Pkt, sink: Sink<'_>) {
        let now = self.clock.map_or(pkt.ts, |c| c.max(pkt.ts));
        self.clock = Some(now);
        if self.next_frag_sweep.is_some_and(|t| now < t) {
            return;
        }
        self.next_frag_sweep = Some(now.saturating_add(FRAG_SWEEP_EVERY));
        if self.defrag.pending_datagrams() == 0 {
            return;
        }
        let Decoder { defrag, stats, .. } = self;
        defrag.expire(now, &mut |kind, message| {
            emit(
                stats,
                sink,
                Event::Finding {
                    frame: pkt.frame,
                    kind,
                    message,
                },
            )
        });
    }

    fn report(&mut self, pkt: Pkt, sink: Sink<'_>, kind: FindingKind, message: String) {
        self.finding(pkt.frame, kind, message, sink);
    }

    fn ipv4(&mut self, p: &[u8], pkt: Pkt, sink: Sink<'_>) {
        let hdr = match Ipv4HeaderSlice::from_slice(p) {
            Ok(h) => h,
            Err(ipv4::HeaderSliceError::Len(e)) => {
                return self.report(
                    pkt,
                    sink,
                    FindingKind::TruncatedPacket,
                    format!("IPv4: {e}"),
                );
            }
            Err(ipv4::HeaderSliceError::Content(e)) => {
                return self.report(pkt, sink, FindingKind::BadIpHeader, format!("IPv4: {e}"));
            }
        };
        let hlen = hdr.slice().len();
        // A total length of 0 is what segmentation offload leaves in
        // captures: the captured length is all there is.
        let total = match usize::from(hdr.total_len()) {
            0 => p.len(),
            n => n,
        };
        if total < hlen {
            return self.report(
                pkt,
                sink,
                FindingKind::BadIpHeader,
                format!("IPv4 total length {total} is shorter than its {hlen}-byte header"),
            );
        }
        let body = &p[hlen..p.len().min(total)];
        let wire_len = total - hlen;
        let src = IpAddr::V4(hdr.source_addr());
        let dst = IpAddr::V4(hdr.destination_addr());
        let proto = hdr.protocol().0;
        if !hdr.is_fragmenting_payload() {
            return self.transport(proto, src, dst, body, wire_len, pkt.frame, pkt, sink);
        }
        let frag = Fragment {
            key: FragKey {
                src,
                dst,
                id: u32::from(hdr.identification()),
                proto,
            },
            offset: u32::from(hdr.fragments_offset().byte_offset()),
            more: hdr.more_fragments(),
            data: body,
            proto,
        };
        self.fragment(frag, wire_len, pkt, sink, |me, r, pkt, sink| {
            me.transport(
                r.proto,
                src,
                dst,
                &r.data,
                r.data.len(),
                r.first_frame,
                pkt,
                sink,
            )
        });
    }

    /// Adds a fragment to the pool and decodes the datagram it completes.
    fn fragment(
        &mut self,
        frag: Fragment<'_>,
        wire_len: usize,
        pkt: Pkt,
        sink: Sink<'_>,
        then: impl FnOnce(&mut Decoder, &crate::defrag::Reassembled, Pkt, Sink<'_>),
    ) {
        self.stats.fragments += 1;
        if frag.data.len() < wire_len {
            return self.report(
                pkt,
                sink,
                FindingKind::TruncatedPacket,
                format!(
                    "fragment of datagram {} cut by the capture ({} of {wire_len} bytes)",
                    frag.key.id,
                    frag.data.len()
                ),
            );
        }
        let Decoder { defrag, stats, .. } = self;
        let done = defrag.add(frag, pkt.frame, pkt.ts, &mut |kind, message| {
            emit(
                stats,
                sink,
                Event::Finding {
                    frame: pkt.frame,
                    kind,
                    message,
                },
            )
        });
        if let Some(r) = done {
            self.stats.reassembled += 1;
            then(self, &r, pkt, sink);
            self.defrag.recycle(r.data);
        }
    }

    fn ipv6(&mut self, p: &[u8], pkt: Pkt, sink: Sink<'_>) {
        let hdr = match Ipv6HeaderSlice::from_slice(p) {
            Ok(h) => h,
            Err(ipv6::HeaderSliceError::Len(e)) => {
                return self.report(
                    pkt,
                    sink,
                    FindingKind::TruncatedPacket,
                    format!("IPv6: {e}"),
                );
            }
            Err(ipv6::HeaderSliceError::Content(e)) => {
                return self.report(pkt, sink, FindingKind::BadIpHeader, format!("IPv6: {e}"));
            }
        };
        let rest = &p[hdr.slice().len()..];
        // Payload length 0: a jumbogram or an offloaded segment; take what
        // was captured.
        let wire_len = match usize::from(hdr.payload_length()) {
            0 => rest.len(),
            n => n,
        };
        let body = &rest[..rest.len().min(wire_len)];
        let src = IpAddr::V6(hdr.source_addr());
        let dst = IpAddr::V6(hdr.destination_addr());
        self.ipv6_chain(
            hdr.next_header().0,
            body,
            wire_len,
            src,
            dst,
            pkt.frame,
            false,
            pkt,
            sink,
        );
    }

    /// Follows IPv6 extension headers to the transport header.
    #[allow(clippy::too_many_arguments)]
    fn ipv6_chain(
        &mut self,
        mut next: u8,
        mut body: &[u8],
        mut wire_len: usize,
        src: IpAddr,
        dst: IpAddr,
        first_frame: u64,
        reassembled: bool,
        pkt: Pkt,
        sink: Sink<'_>,
    ) {
        for _ in 0..MAX_IPV6_EXTENSIONS {
            let ext_len = match next {
                // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
                0 | 43 | 60 | 135 | 139 | 140 => match Ipv6RawExtHeaderSlice::from_slice(body) {
                    Ok(ext) => {
                        next = ext.next_header().0;
                        ext.slice().len()
                    }
                    Err(e) => {
                        return self.short_ext(e.required_len, body.len(), wire_len, pkt, sink);
                    }
                },
                51 => match IpAuthHeaderSlice::from_slice(body) {
                    Ok(ext) => {
                        next = ext.next_header().0;
                        ext.slice().len()
                    }
                    Err(ip_auth::HeaderSliceError::Len(e)) => {
                        return self.short_ext(e.required_len, body.len(), wire_len, pkt, sink);
                    }
                    Err(ip_auth::HeaderSliceError::Content(e)) => {
                        return self.report(
                            pkt,
                            sink,
                            FindingKind::BadIpHeader,
                            format!("IPv6 AH: {e}"),
                        );
                    }
                },
                44 => {
                    let frag = match Ipv6FragmentHeaderSlice::from_slice(body) {
                        Ok(f) => f,
                        Err(e) => {
                            return self.short_ext(e.required_len, body.len(), wire_len, pkt, sink);
                        }
                    };
                    if frag.is_fragmenting_payload() {
                        if reassembled {
                            return self.report(
                                pkt,
                                sink,
                                FindingKind::BadFragment,
                                "IPv6 fragment header inside a reassembled datagram".to_string(),
                            );
                        }
                        let f = Fragment {
                            key: FragKey {
                                src,
                                dst,
                                id: frag.identification(),
                                proto: 0,
                            },
                            offset: u32::from(frag.fragment_offset().byte_offset()),
                            more: frag.more_fragments(),
                            data: &body[8..],
                            proto: frag.next_header().0,
                        };
                        return self.fragment(f, wire_len - 8, pkt, sink, |me, r, pkt, sink| {
                            me.ipv6_chain(
                                r.proto,
                                &r.data,
                                r.data.len(),
                                src,
                                dst,
                                r.first_frame,
                                true,
                                pkt,
                                sink,
                            )
                        });
                    }
                    // An atomic fragment: just a header to skip.
                    next = frag.next_header().0;
                    8
                }
                // No next header.
                59 => return,
                _ => return self.transport(next, src, dst, body, wire_len, first_frame, pkt, sink),
            };
            // Both within `body`: the slices checked their lengths.
            body = &body[ext_len..];
            wire_len = wire_len.saturating_sub(ext_len);
        }
        self.report(
            pkt,
            sink,
            FindingKind::BadIpHeader,
            format!("more than {MAX_IPV6_EXTENSIONS} IPv6 extension headers"),
        );
    }

    /// An extension header that does not fit: cut by the capture, or
    /// longer than the packet.
    fn short_ext(&mut self, need: usize, have: usize, wire_len: usize, pkt: Pkt, sink: Sink<'_>) {
        let (kind, why) = if have < wire_len {
            (FindingKind::TruncatedPacket, "cut by the capture")
        } else {
            (FindingKind::BadIpHeader, "longer than the packet")
        };
        self.report(
            pkt,
            sink,
            kind,
            format!("IPv6 extension header of {need} bytes {why} ({have} bytes left)"),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn transport(
        &mut self,
        proto: u8,
        src: IpAddr,
        dst: IpAddr,
        body: &[u8],
        wire_len: usize,
        first_frame: u64,
        pkt: Pkt,
        sink: Sink<'_>,
    ) {
        match proto {
            IP_UDP => self.udp(src, dst, body, wire_len, first_frame, pkt, sink),
            IP_TCP => self.tcp(src, dst, body, wire_len, pkt, sink),
            _ => self.stats.other_ip += 1,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn udp(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        body: &[u8],
        wire_len: usize,
        first_frame: u64,
        pkt: Pkt,
        sink: Sink<'_>,
    ) {
        let Ok(hdr) = UdpHeaderSlice::from_slice(body) else {
            let kind = if body.len() < wire_len.min(8) {
                FindingKind::TruncatedPacket
            } else {
                FindingKind::BadTransportHeader
            };
            return self.report(
                pkt,
                sink,
                kind,
                format!("UDP header needs 8 bytes, {} left", body.len()),
            );
        };
        let udp_len = match usize::from(hdr.length()) {
            // Length 0: an IPv6 jumbogram; the IP length rules.
            0 => wire_len,
            n => n,
        };
        if udp_len < 8 || udp_len > wire_len {
            return self.report(
                pkt,
                sink,
                FindingKind::BadTransportHeader,
                format!("UDP length {udp_len} does not fit the {wire_len}-byte IP payload"),
            );
        }
        let end = udp_len.min(body.len());
        let payload = &body[8..end];
        if end < udp_len {
            return self.report(
                pkt,
                sink,
                FindingKind::TruncatedPacket,
                format!(
                    "UDP payload cut by the capture ({} of {} bytes)",
                    payload.len(),
                    udp_len - 8
                ),
            );
        }
        self.stats.udp_datagrams += 1;
        let event = Event::Datagram {
            frame: pkt.frame,
            first_frame,
            ts: pkt.ts,
            src: SocketAddr::new(src, hdr.source_port()),
            dst: SocketAddr::new(dst, hdr.destination_port()),
            transport: Transport::Udp,
            payload: Cow::Borrowed(payload),
            kind: classify_datagram(payload),
        };
        emit(&mut self.stats, sink, event);
    }

    fn tcp(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        body: &[u8],
        wire_len: usize,
        pkt: Pkt,
        sink: Sink<'_>,
    ) {
        let hdr = match TcpHeaderSlice::from_slice(body) {
            Ok(h) => h,
            Err(tcp::HeaderSliceError::Len(e)) => {
                let kind = if body.len() < wire_len {
                    FindingKind::TruncatedPacket
                } else {
                    FindingKind::BadTransportHeader
                };
                return self.report(pkt, sink, kind, format!("TCP: {e}"));
            }
            Err(tcp::HeaderSliceError::Content(e)) => {
                return self.report(
                    pkt,
                    sink,
                    FindingKind::BadTransportHeader,
                    format!("TCP: {e}"),
                );
            }
        };
        let hlen = hdr.slice().len();
        if wire_len < hlen {
            return self.report(
                pkt,
                sink,
                FindingKind::BadTransportHeader,
                format!("TCP header of {hlen} bytes in a {wire_len}-byte IP payload"),
            );
        }
        let data = &body[hlen..];
        let seg_len = wire_len - hlen;
        if data.len() < seg_len {
            self.report(
                pkt,
                sink,
                FindingKind::TruncatedPacket,
                format!(
                    "TCP payload cut by the capture ({} of {seg_len} bytes)",
                    data.len()
                ),
            );
        }
        self.stats.tcp_segments += 1;
        let seg = Segment {
            src: SocketAddr::new(src, hdr.source_port()),
            dst: SocketAddr::new(dst, hdr.destination_port()),
            seq: hdr.sequence_number(),
            syn: hdr.syn(),
            fin: hdr.fin(),
            rst: hdr.rst(),
            data,
            wire_len: seg_len,
        };
        let now = self.clock.unwrap_or(pkt.ts);
        let Decoder { tcp, stats, .. } = self;
        tcp.segment(seg, pkt.frame, pkt.ts, now, &mut |e| emit(stats, sink, e));
    }
}
