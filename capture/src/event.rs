//! What reading a capture produces: datagrams (UDP payloads and framed TCP
//! messages) and findings (bounded problems), plus running counters.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;

use crate::Timestamp;

/// The transport a payload travelled on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What a payload looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    /// A SIP message: a UDP payload starting with a request or status
    /// line, or a message framed out of a TCP stream.
    Sip,
    /// A STUN message (first byte 0x00/0x01, magic cookie at 4..8).
    Stun,
    /// A CRLF CRLF keep-alive ping (RFC 5626 §3.5.1).
    KeepAlivePing,
    /// A CRLF keep-alive pong.
    KeepAlivePong,
    /// Anything else: non-SIP datagrams, and TCP bytes seen before the
    /// stream could be synchronised on a SIP start line.
    Other,
}

/// The kind of a bounded problem met while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// The file ends inside a record or block; reading stopped.
    TruncatedFile,
    /// A pcapng block or pcap record is malformed; it was skipped when its
    /// length could be trusted, otherwise reading stopped.
    BadBlock,
    /// A record or block declares more than [`crate::Limits::max_block`]
    /// bytes; reading stopped.
    BlockTooLarge,
    /// A pcapng interface description is unusable (bad timestamp
    /// resolution, too many interfaces).
    BadInterface,
    /// A packet names an interface that was never described.
    UnknownInterface,
    /// A link type this reader does not decode (reported once per type).
    UnknownLinkType,
    /// The packet was cut by the snapshot length (or is shorter than its
    /// headers say) and the missing part was needed.
    TruncatedPacket,
    /// A malformed link-layer header.
    BadLinkHeader,
    /// A malformed IPv4 or IPv6 header or extension header chain.
    BadIpHeader,
    /// A malformed UDP or TCP header.
    BadTransportHeader,
    /// A fragment that cannot be part of any datagram (unaligned, past
    /// 64 KiB, conflicting end).
    BadFragment,
    /// Two fragments overlap with different bytes; the datagram was dropped.
    FragmentOverlap,
    /// The fragment pool was full; the oldest pending datagram was dropped.
    FragmentPoolOverflow,
    /// A fragmented datagram never completed (timeout or end of capture).
    FragmentTimeout,
    /// Bytes of a TCP stream are missing (lost from the capture, or held
    /// out-of-order data exceeded its limit); framing restarts at the next
    /// SIP start line.
    TcpGap,
    /// A message exceeds [`crate::Limits::max_message`]: the stream is
    /// desynchronised and skipped until it ends.
    TcpMessageTooLarge,
    /// A Content-Length that is not a number: the stream is
    /// desynchronised and skipped until it ends.
    TcpBadContentLength,
    /// The stream ended (FIN, RST, idle, end of capture) inside a message.
    TcpIncomplete,
    /// The stream table was full; the least recently active stream was
    /// dropped with buffered data.
    TcpStreamEvicted,
    /// All streams together hit [`crate::Limits::max_tcp_bytes`]; this
    /// stream's buffered data was dropped and it is skipped until it ends.
    TcpMemoryLimit,
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One item read from a capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A UDP payload, a framed SIP message or keep-alive from a TCP stream,
    /// or non-SIP TCP bytes.
    Datagram {
        /// 1-based frame number (as Wireshark numbers them) of the packet
        /// that completed this payload: the last fragment, or the TCP
        /// segment whose arrival completed the message.
        frame: u64,
        /// Frame that carried the first byte of the payload (== `frame`
        /// unless fragmented or spread over several segments).
        first_frame: u64,
        /// Timestamp of `frame`.
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        transport: Transport,
        payload: Cow<'a, [u8]>,
        kind: PayloadKind,
    },
    /// A bounded problem.
    Finding {
        /// Frame being read when the problem was found (0 before the first).
        frame: u64,
        kind: FindingKind,
        message: String,
    },
}

impl Event<'_> {
    /// The same event, owning its payload.
    pub fn into_owned(self) -> Event<'static> {
        match self {
            Event::Datagram {
                frame,
                first_frame,
                ts,
                src,
                dst,
                transport,
                payload,
                kind,
            } => Event::Datagram {
                frame,
                first_frame,
                ts,
                src,
                dst,
                transport,
                payload: Cow::Owned(payload.into_owned()),
                kind,
            },
            Event::Finding {
                frame,
                kind,
                message,
            } => Event::Finding {
                frame,
                kind,
                message,
            },
        }
    }

    pub fn frame(&self) -> u64 {
        match self {
            Event::Datagram { frame, .. } | Event::Finding { frame, .. } => *frame,
        }
    }
}

/// Running counters of what was read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames decoded: packet records (pcap records, pcapng EPB/SPB/PB)
    /// on a described interface.
    pub frames: u64,
    /// Captured bytes of those records.
    pub captured_bytes: u64,
    /// Frames that carried no IPv4/IPv6 (ARP, unknown link types...).
    pub non_ip: u64,
    /// IP packets of protocols other than UDP and TCP.
    pub other_ip: u64,
    /// IP fragments seen and datagrams rebuilt from them.
    pub fragments: u64,
    pub reassembled: u64,
    pub udp_datagrams: u64,
    pub tcp_segments: u64,
    /// TCP segments (or parts) already delivered: retransmissions, overlaps.
    pub tcp_duplicates: u64,
    /// TCP payload bytes skipped on desynchronised or closed streams.
    pub tcp_skipped_bytes: u64,
    /// Datagram events by kind.
    pub sip: u64,
    pub stun: u64,
    pub keepalives: u64,
    pub other: u64,
    pub findings: u64,
}

impl Stats {
    pub(crate) fn count(&mut self, event: &Event<'_>) {
        match event {
            Event::Datagram { kind, .. } => match kind {
                PayloadKind::Sip => self.sip += 1,
                PayloadKind::Stun => self.stun += 1,
                PayloadKind::KeepAlivePing | PayloadKind::KeepAlivePong => self.keepalives += 1,
                PayloadKind::Other => self.other += 1,
            },
            Event::Finding { .. } => self.findings += 1,
        }
    }
}
