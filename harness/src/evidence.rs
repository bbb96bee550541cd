/*!
What a case records while it runs: every packet a harness socket sent or
received (the message ladder, with timestamps relative to the case start,
and a pcap of the same packets written with `p2psip-capture`), notes, and
the harness's own log lines for the case.

One [`Recorder`] per case attempt, shared (`Arc`) by every socket of the
case: scripted peers, the readiness and liveness prober, the snapshot
querier. Recording is synchronous and cheap (a lock, a push, a pcap
record into memory), so sockets call it on their hot path.
*/

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use p2psip_capture::{PcapWriter, Timestamp};
use p2psip_reports::{LadderEntry, Transport as LadderTransport};
use p2psip_wire::{Class, ParseOptions, Transport, looks_like_stun, parse};

/// Which way a packet went, seen from the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Sent,
    Received,
}

/// One packet a harness socket sent or received.
#[derive(Debug, Clone)]
pub struct Packet {
    pub at: Instant,
    pub dir: Dir,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub transport: Transport,
    pub bytes: Arc<[u8]>,
}

/// The evidence of one case attempt.
pub struct Recorder {
    t0: Instant,
    wall0: SystemTime,
    inner: Mutex<Inner>,
}

struct Inner {
    ladder: Vec<LadderEntry>,
    packets: Vec<Packet>,
    pcap: PcapWriter<Vec<u8>>,
    pcap_error: Option<String>,
    labels: HashMap<SocketAddr, String>,
    notes: Vec<String>,
    log: Vec<String>,
}

/// At most this many ladder entries keep their raw text (the rest keep
/// the summary line only), so a flood case cannot blow up a report.
const MAX_RAW_ENTRIES: usize = 2_000;
/// At most this many harness log lines per case.
const MAX_LOG_LINES: usize = 5_000;

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        let pcap = PcapWriter::new(Vec::with_capacity(16 * 1024))
            // Writing a 24-byte header into a Vec cannot fail.
            .expect("pcap header into memory");
        Arc::new(Recorder {
            t0: Instant::now(),
            wall0: SystemTime::now(),
            inner: Mutex::new(Inner {
                ladder: Vec::new(),
                packets: Vec::new(),
                pcap,
                pcap_error: None,
                labels: HashMap::new(),
                notes: Vec::new(),
                log: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while recording leaves plain data behind: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the case started.
    pub fn t0(&self) -> Instant {
        self.t0
    }

    /// Milliseconds since the case started.
    pub fn ms(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.t0).as_secs_f64() * 1000.0
    }

    /// Names an address in the ladder (`iut1`, `puppet p`).
    pub fn label(&self, addr: SocketAddr, name: impl Into<String>) {
        self.lock().labels.insert(addr, name.into());
    }

    pub fn label_of(&self, addr: SocketAddr) -> Option<String> {
        self.lock().labels.get(&addr).cloned()
    }

    fn timestamp(&self, at: Instant) -> Timestamp {
        let wall = self.wall0 + at.saturating_duration_since(self.t0);
        let d = wall.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Timestamp::from_secs_nanos(d.as_secs() as i64, d.subsec_nanos())
    }

    /// Records a UDP datagram or a TCP payload.
    pub fn packet(
        &self,
        dir: Dir,
        from: SocketAddr,
        to: SocketAddr,
        transport: Transport,
        bytes: &[u8],
    ) {
        let at = Instant::now();
        let ts = self.timestamp(at);
        let summary = summarize(bytes, transport);
        let mut g = self.lock();
        let written = match transport {
            Transport::Udp => g.pcap.write_udp(ts, from, to, bytes),
            Transport::Tcp => g.pcap.write_tcp(ts, from, to, bytes),
        };
        if let Err(e) = written {
            g.pcap_error.get_or_insert_with(|| e.to_string());
        }
        let packet = Packet {
            at,
            dir,
            from,
            to,
            transport,
            bytes: Arc::from(bytes),
        };
        self.push(&mut g, packet, summary);
    }

    /// Records a UDP datagram a relay of the harness (the NAT emulator)
    /// received or sent: in the ladder with `note` after the summary (the
    /// NAT's decision), and in the pcap unless `in_pcap` is false (the
    /// other end is a harness socket that records it itself).
    pub fn relayed(
        &self,
        dir: Dir,
        from: SocketAddr,
        to: SocketAddr,
        bytes: &[u8],
        note: &str,
        in_pcap: bool,
    ) {
        let at = Instant::now();
        let ts = self.timestamp(at);
        let summary = format!("{} {note}", summarize(bytes, Transport::Udp));
        let mut g = self.lock();
        if in_pcap && let Err(e) = g.pcap.write_udp(ts, from, to, bytes) {
            g.pcap_error.get_or_insert_with(|| e.to_string());
        }
        let packet = Packet {
            at,
            dir,
            from,
            to,
            transport: Transport::Udp,
            bytes: Arc::from(bytes),
        };
        self.push(&mut g, packet, summary);
    }

    /// Adds one packet to the ladder and to the packets kept for checks.
    fn push(&self, g: &mut Inner, packet: Packet, summary: String) {
        let mut entry = LadderEntry::new(
            self.ms(packet.at),
            packet.from.to_string(),
            packet.to.to_string(),
            match packet.transport {
                Transport::Udp => LadderTransport::Udp,
                Transport::Tcp => LadderTransport::Tcp,
            },
            summary,
        );
        entry.from_label = g.labels.get(&packet.from).cloned();
        entry.to_label = g.labels.get(&packet.to).cloned();
        if g.ladder.len() < MAX_RAW_ENTRIES {
            entry = entry.raw_bytes(packet.bytes.to_vec());
        }
        g.ladder.push(entry);
        g.packets.push(packet);
    }

    /// Records the opening of a TCP connection (a SYN exchange in the pcap).
    pub fn tcp_open(&self, client: SocketAddr, server: SocketAddr) {
        let ts = self.timestamp(Instant::now());
        let mut g = self.lock();
        if let Err(e) = g.pcap.write_tcp_handshake(ts, client, server) {
            g.pcap_error.get_or_insert_with(|| e.to_string());
        }
    }

    /// Records the close of one direction of a TCP connection.
    pub fn tcp_close(&self, from: SocketAddr, to: SocketAddr) {
        let ts = self.timestamp(Instant::now());
        let mut g = self.lock();
        if let Err(e) = g.pcap.write_tcp_fin(ts, from, to) {
            g.pcap_error.get_or_insert_with(|| e.to_string());
        }
    }

    /// Adds a note to the evidence.
    pub fn note(&self, text: impl Into<String>) {
        self.lock().notes.push(text.into());
    }

    /// Adds a harness log line (from `tracing`, see [`crate::trace`]).
    pub fn log(&self, line: String) {
        let at = self.ms(Instant::now());
        let mut g = self.lock();
        if g.log.len() < MAX_LOG_LINES {
            g.log.push(format!("{at:9.1} ms {line}"));
        }
    }

    /// Every packet so far, in order.
    pub fn packets(&self) -> Vec<Packet> {
        self.lock().packets.clone()
    }

    /// Takes what was recorded: ladder, pcap bytes (or why there are
    /// none), notes, harness log.
    pub fn finish(&self) -> Recorded {
        let mut g = self.lock();
        let empty = PcapWriter::new(Vec::new()).expect("pcap header into memory");
        let pcap = std::mem::replace(&mut g.pcap, empty);
        let pcap = match (g.pcap_error.take(), pcap.into_inner()) {
            (None, Ok(bytes)) => Ok(bytes),
            (Some(e), _) => Err(e),
            (None, Err(e)) => Err(e.to_string()),
        };
        Recorded {
            ladder: std::mem::take(&mut g.ladder),
            pcap,
            notes: std::mem::take(&mut g.notes),
            log: std::mem::take(&mut g.log),
        }
    }
}

/// What [`Recorder::finish`] hands over.
pub struct Recorded {
    pub ladder: Vec<LadderEntry>,
    pub pcap: Result<Vec<u8>, String>,
    pub notes: Vec<String>,
    pub log: Vec<String>,
}

/// One line for the ladder: `REGISTER sip:127.1.2.3:4000 (query)`,
/// `200 OK (query)`, `STUN (20 bytes)`, `unparsable: malformed Via at byte 40`,
/// with the strict-mode deviations the message shows.
pub fn summarize(bytes: &[u8], transport: Transport) -> String {
    if bytes.iter().all(|b| *b == b'\r' || *b == b'\n') {
        return match bytes.len() {
            4 => "keep-alive ping (CRLF CRLF)".to_string(),
            2 => "keep-alive pong (CRLF)".to_string(),
            n => format!("{n} bytes of line ends"),
        };
    }
    if looks_like_stun(bytes) {
        return format!("STUN ({} bytes)", bytes.len());
    }
    let opts = ParseOptions {
        max_size: usize::MAX,
        ..ParseOptions::lenient().with_transport(transport)
    };
    match parse(bytes, opts) {
        Ok(p) => {
            let mut s = p2psip_wire::summary(&p.message);
            let class = Class::of(&p.message);
            if class != Class::Plain {
                s.push_str(&format!(" ({})", class.name()));
            }
            let strict = ParseOptions {
                max_size: usize::MAX,
                ..ParseOptions::strict().with_transport(transport)
            };
            if let Err(e) = parse(bytes, strict) {
                s.push_str(&format!(" [strict: {e}]"));
            }
            s
        }
        Err(e) => format!("unparsable ({} bytes): {e}", bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_ladder_and_pcap() {
        let rec = Recorder::new();
        let a: SocketAddr = "127.1.0.1:5000".parse().unwrap();
        let b: SocketAddr = "127.1.0.2:6000".parse().unwrap();
        rec.label(a, "puppet p");
        rec.packet(
            Dir::Sent,
            a,
            b,
            Transport::Udp,
            b"OPTIONS sip:x SIP/2.0\r\n\r\n",
        );
        rec.tcp_open(a, b);
        rec.packet(Dir::Sent, a, b, Transport::Tcp, b"\r\n\r\n");
        let out = rec.finish();
        assert_eq!(out.ladder.len(), 2);
        assert_eq!(out.ladder[0].from_label.as_deref(), Some("puppet p"));
        assert_eq!(out.ladder[1].summary, "keep-alive ping (CRLF CRLF)");
        let pcap = out.pcap.unwrap();
        assert_eq!(&pcap[..4], &0xA1B2_3C4Du32.to_le_bytes());
    }
}
