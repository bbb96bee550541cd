//! TCP stream reassembly per direction, feeding the SIP stream framer.
//!
//! Each direction (source → destination) is reassembled on its own:
//!
//! * Streams seen mid-way work: the first segment fixes the sequence
//!   origin; the handshake is used when present, never required.
//! * Sequence numbers are compared as wrapping 32-bit distances, so a
//!   stream may cross 2^32.
//! * Retransmitted and overlapping bytes are dropped (the first copy wins).
//! * Out-of-order segments wait in a per-direction queue bounded in count
//!   and bytes; when it overflows, the hole before the earliest waiting
//!   byte is declared lost ([`FindingKind::TcpGap`]).
//! * In-order bytes go to [`p2psip_wire::framer::Framer`]. Until a
//!   direction is synchronised (it starts with, or after a gap reaches, a
//!   SIP start line or keep-alive) its bytes are reported as
//!   [`PayloadKind::Other`]. A message over the size limit or a bad
//!   Content-Length desynchronises the direction: one finding, then its
//!   bytes are skipped until it ends.
//! * FIN (once every byte before it arrived) and RST close a direction;
//!   a closed direction stays as a small tombstone for a while to absorb
//!   retransmissions. Idle directions expire by capture time; when the
//!   table is full the least recently active one is evicted.
//!
//! Messages are handed out without copying when a segment holds them
//! whole; only the partial message at the end of a segment is buffered,
//! and never more than the framer's limit + 1 bytes of it.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use p2psip_wire::framer::{Frame, Framer};

use crate::classify::{MAX_START_LINE, StartLine, SyncPoint, find_sync_point, start_line};
use crate::{Event, FindingKind, PayloadKind, Timestamp, Transport};

/// How long a closed direction absorbs late retransmissions.
const CLOSED_LINGER: Duration = Duration::from_secs(60);
/// How often (in capture time) idle directions are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Bounds of the reassembly state.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Largest SIP message framed (the framer's limit).
    pub max_message: usize,
    /// Directions tracked at once.
    pub max_streams: usize,
    /// Out-of-order bytes held per direction.
    pub max_ooo_bytes: usize,
    /// Out-of-order segments held per direction.
    pub max_ooo_segments: usize,
    /// Bytes buffered by all directions together (partial messages and
    /// out-of-order data, counted by length).
    pub max_total_bytes: usize,
    /// A direction with no segment for this long (capture time) is dropped.
    pub idle_timeout: Duration,
}

/// One TCP segment as decoded from a packet.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    /// Captured payload bytes.
    pub data: &'a [u8],
    /// Payload length on the wire; more than `data.len()` when the capture
    /// cut the packet.
    pub wire_len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DirKey {
    src: SocketAddr,
    dst: SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Looking for a SIP start line to synchronise on.
    Hunting,
    Framing,
    /// Skipped until it ends.
    Desync,
    Closed,
}

#[derive(Debug)]
struct Held {
    seq: u32,
    frame: u64,
    data: Vec<u8>,
}

#[derive(Debug)]
struct Dir {
    /// Next expected sequence number.
    next: u32,
    mode: Mode,
    framer: Framer,
    /// Start of a message not yet complete (Framing mode only).
    buf: Vec<u8>,
    /// Frame that carried `buf[0]`.
    buf_first_frame: u64,
    /// Out-of-order segments, ascending by distance from `next`.
    held: VecDeque<Held>,
    held_bytes: usize,
    fin_at: Option<u32>,
    last_ts: Timestamp,
}

/// Counters kept by the table.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpCounters {
    pub duplicates: u64,
    pub skipped_bytes: u64,
}

type Sink<'s> = &'s mut dyn FnMut(Event<'_>);

/// What a direction needs to know about the packet being processed.
struct Ctx<'a, 's> {
    key: DirKey,
    frame: u64,
    ts: Timestamp,
    limits: &'a TcpLimits,
    /// Bytes this direction may hold without exceeding the global limit.
    budget: usize,
    counters: &'a mut TcpCounters,
    sink: Sink<'s>,
}

impl Ctx<'_, '_> {
    fn finding(&mut self, kind: FindingKind, message: String) {
        (self.sink)(Event::Finding {
            frame: self.frame,
            kind,
            message,
        });
    }

    fn datagram(&mut self, first_frame: u64, payload: &[u8], kind: PayloadKind) {
        (self.sink)(Event::Datagram {
            frame: self.frame,
            first_frame,
            ts: self.ts,
            src: self.key.src,
            dst: self.key.dst,
            transport: Transport::Tcp,
            payload: Cow::Borrowed(payload),
            kind,
        });
    }
}

/// Signed distance from `from` to `to` in sequence space.
fn seq_diff(to: u32, from: u32) -> i64 {
    i64::from(to.wrapping_sub(from) as i32)
}

impl Dir {
    fn new(next: u32, limits: &TcpLimits, ts: Timestamp) -> Dir {
        Dir {
            next,
            mode: Mode::Hunting,
            framer: Framer::new(limits.max_message),
            buf: Vec::new(),
            buf_first_frame: 0,
            held: VecDeque::new(),
            held_bytes: 0,
            fin_at: None,
            last_ts: ts,
        }
    }

    /// Bytes this direction holds.
    fn mem(&self) -> usize {
        self.buf.len() + self.held_bytes
    }

    /// Takes a segment's payload starting at sequence number `seq`.
    fn accept(&mut self, seq: u32, data: &[u8], wire_len: usize, ctx: &mut Ctx<'_, '_>) {
        if wire_len == 0 {
            return;
        }
        let rel = seq_diff(seq, self.next);
        let end = rel + wire_len as i64;
        if end <= 0 {
            ctx.counters.duplicates += 1;
            return;
        }
        if data.len() < wire_len {
            // Cut by the capture: unusable. If it covers the next expected
            // byte, everything up to its end is lost for good.
            if rel <= 0 {
                self.gap_to(
                    seq.wrapping_add(wire_len as u32),
                    ctx,
                    "segment cut by the capture",
                );
            }
            return;
        }
        if rel > 0 {
            self.hold(seq, data, ctx);
            return;
        }
        if rel < 0 {
            ctx.counters.duplicates += 1;
        }
        let fresh = &data[(-rel) as usize..];
        self.next = seq.wrapping_add(wire_len as u32);
        self.deliver(fresh, ctx.frame, ctx);
        self.drain_held(ctx);
    }

    /// Queues a segment that is ahead of `next`.
    fn hold(&mut self, seq: u32, data: &[u8], ctx: &mut Ctx<'_, '_>) {
        loop {
            if self.mode == Mode::Desync {
                return;
            }
            let rel = seq_diff(seq, self.next);
            if rel + data.len() as i64 <= 0 {
                ctx.counters.duplicates += 1;
                return;
            }
            if rel <= 0 {
                // A gap just moved `next` onto or past this segment.
                let fresh = &data[(-rel) as usize..];
                self.next = seq.wrapping_add(data.len() as u32);
                self.deliver(fresh, ctx.frame, ctx);
                self.drain_held(ctx);
                return;
            }
            if self.mem() + data.len() > ctx.budget {
                self.give_up(
                    ctx,
                    FindingKind::TcpMemoryLimit,
                    "all TCP streams together hit their buffer limit",
                );
                return;
            }
            let full = self.held.len() >= ctx.limits.max_ooo_segments
                || self.held_bytes + data.len() > ctx.limits.max_ooo_bytes;
            if !full {
                break;
            }
            // The hole before the earliest byte we have will not fill
            // within the limits: declare it lost and move on.
            let earliest = match self.held.front() {
                Some(h) if seq_diff(h.seq, self.next) < rel => h.seq,
                _ => seq,
            };
            // Progress: `next` reaches this segment or at least one
            // held segment is delivered.
            self.gap_to(earliest, ctx, "out-of-order data exceeded its limit");
        }
        let rel = seq_diff(seq, self.next);
        let at = self
            .held
            .iter()
            .position(|h| seq_diff(h.seq, self.next) >= rel)
            .unwrap_or(self.held.len());
        if let Some(same) = self.held.get_mut(at).filter(|h| h.seq == seq) {
            // Keep the longer copy of a segment sent twice.
            if same.data.len() >= data.len() {
                ctx.counters.duplicates += 1;
                return;
            }
            self.held_bytes -= same.data.len();
            self.held_bytes += data.len();
            same.data.clear();
            same.data.extend_from_slice(data);
            same.frame = ctx.frame;
            return;
        }
        self.held_bytes += data.len();
        self.held.insert(
            at,
            Held {
                seq,
                frame: ctx.frame,
                data: data.to_vec(),
            },
        );
    }

    /// Delivers queued segments that `next` has reached.
    fn drain_held(&mut self, ctx: &mut Ctx<'_, '_>) {
        while let Some(h) = self.held.front() {
            let rel = seq_diff(h.seq, self.next);
            if rel > 0 {
                break;
            }
            let Some(h) = self.held.pop_front() else {
                break;
            };
            self.held_bytes -= h.data.len();
            if rel + h.data.len() as i64 <= 0 {
                ctx.counters.duplicates += 1;
                continue;
            }
            self.next = h.seq.wrapping_add(h.data.len() as u32);
            self.deliver(&h.data[(-rel) as usize..], h.frame, ctx);
        }
    }

    /// Declares the bytes from `next` up to `to` lost.
    fn gap_to(&mut self, to: u32, ctx: &mut Ctx<'_, '_>, why: &str) {
        let missing = to.wrapping_sub(self.next);
        self.flush_hunt_tail(ctx);
        if self.mode == Mode::Framing {
            let dropped = self.buf.len();
            ctx.finding(
                FindingKind::TcpGap,
                format!(
                    "TCP {} -> {}: {missing} bytes missing ({why}); {dropped} bytes of a partial message dropped, resynchronising at the next SIP start line",
                    ctx.key.src, ctx.key.dst
                ),
            );
            ctx.counters.skipped_bytes += dropped as u64;
            self.buf.clear();
            self.framer = Framer::new(ctx.limits.max_message);
            self.mode = Mode::Hunting;
        }
        self.next = to;
        self.drain_held(ctx);
    }

    /// Hands in-order bytes, carried by frame `data_frame`, to the framer.
    fn deliver(&mut self, data: &[u8], data_frame: u64, ctx: &mut Ctx<'_, '_>) {
        if data.is_empty() {
            return;
        }
        match self.mode {
            Mode::Desync | Mode::Closed => ctx.counters.skipped_bytes += data.len() as u64,
            Mode::Hunting => self.hunt(data, data_frame, ctx),
            Mode::Framing => self.frame_bytes(data, data_frame, ctx),
        }
    }

    /// Looks for a place to start framing. In this mode `buf` holds at
    /// most a short undecided tail of the previous chunk.
    fn hunt(&mut self, data: &[u8], data_frame: u64, ctx: &mut Ctx<'_, '_>) {
        if !self.buf.is_empty() {
            let tail_frame = self.buf_first_frame;
            let more = MAX_START_LINE
                .saturating_sub(self.buf.len())
                .min(data.len());
            let mut window = Vec::with_capacity(self.buf.len() + more);
            window.extend_from_slice(&self.buf);
            window.extend_from_slice(&data[..more]);
            match start_line(&window) {
                StartLine::Complete | StartLine::Partial => {
                    let tail = std::mem::take(&mut self.buf);
                    self.mode = Mode::Framing;
                    self.frame_bytes(&tail, tail_frame, ctx);
                    self.deliver(data, data_frame, ctx);
                    return;
                }
                StartLine::Prefix if more == data.len() => {
                    self.buf = window;
                    return;
                }
                StartLine::Prefix | StartLine::No => {
                    let tail = std::mem::take(&mut self.buf);
                    ctx.datagram(tail_frame, &tail, PayloadKind::Other);
                }
            }
        }
        match find_sync_point(data) {
            SyncPoint::None => ctx.datagram(data_frame, data, PayloadKind::Other),
            SyncPoint::Undecided(at) => {
                if at > 0 {
                    ctx.datagram(data_frame, &data[..at], PayloadKind::Other);
                }
                if self.mem() + data.len() - at > ctx.budget {
                    ctx.datagram(data_frame, &data[at..], PayloadKind::Other);
                    return;
                }
                // Short: `Undecided` needs less than MAX_START_LINE bytes.
                self.buf.extend_from_slice(&data[at..]);
                self.buf_first_frame = data_frame;
            }
            SyncPoint::At(at) => {
                if at > 0 {
                    ctx.datagram(data_frame, &data[..at], PayloadKind::Other);
                }
                self.mode = Mode::Framing;
                self.frame_bytes(&data[at..], data_frame, ctx);
            }
        }
    }

    /// Reports an undecided tail as what it is: not SIP.
    fn flush_hunt_tail(&mut self, ctx: &mut Ctx<'_, '_>) {
        if self.mode == Mode::Hunting && !self.buf.is_empty() {
            let tail = std::mem::take(&mut self.buf);
            ctx.datagram(self.buf_first_frame, &tail, PayloadKind::Other);
        }
    }

    fn frame_bytes(&mut self, data: &[u8], data_frame: u64, ctx: &mut Ctx<'_, '_>) {
        let limit = self.framer.limit();
        let mut rest = data;
        // First complete the buffered message, appending at most limit + 1
        // bytes at a time so the buffer stays bounded.
        while !self.buf.is_empty() {
            if rest.is_empty() {
                return;
            }
            let take = (limit + 1)
                .saturating_sub(self.buf.len())
                .max(1)
                .min(rest.len());
            if self.mem() + take > ctx.budget {
                self.give_up(
                    ctx,
                    FindingKind::TcpMemoryLimit,
                    "all TCP streams together hit their buffer limit",
                );
                return;
            }
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            let mut off = 0;
            // The buffered message began in an earlier frame; any later one
            // begins in the bytes just appended.
            let mut first = self.buf_first_frame;
            loop {
                let (len, kind) = match self.framer.next_frame(&self.buf[off..]) {
                    Frame::Message { len, .. } => (len, PayloadKind::Sip),
                    Frame::Ping { len } => (len, PayloadKind::KeepAlivePing),
                    Frame::Pong { len } => (len, PayloadKind::KeepAlivePong),
                    Frame::NeedMore => break,
                    bad => {
                        self.framing_failed(bad, ctx);
                        return;
                    }
                };
                ctx.datagram(first, &self.buf[off..off + len], kind);
                off += len;
                first = data_frame;
            }
            if off > 0 {
                self.buf.drain(..off);
                self.buf_first_frame = data_frame;
            }
        }
        // Nothing buffered: frame straight from the segment.
        loop {
            let (len, kind) = match self.framer.next_frame(rest) {
                Frame::Message { len, .. } => (len, PayloadKind::Sip),
                Frame::Ping { len } => (len, PayloadKind::KeepAlivePing),
                Frame::Pong { len } => (len, PayloadKind::KeepAlivePong),
                Frame::NeedMore => break,
                bad => {
                    self.framing_failed(bad, ctx);
                    return;
                }
            };
            ctx.datagram(data_frame, &rest[..len], kind);
            rest = &rest[len..];
        }
        if !rest.is_empty() {
            if self.mem() + rest.len() > ctx.budget {
                self.give_up(
                    ctx,
                    FindingKind::TcpMemoryLimit,
                    "all TCP streams together hit their buffer limit",
                );
                return;
            }
            // NeedMore: `rest` is at most the limit (the framer says
            // TooLarge past it).
            self.buf.extend_from_slice(rest);
            self.buf_first_frame = data_frame;
        }
    }

    fn framing_failed(&mut self, frame: Frame, ctx: &mut Ctx<'_, '_>) {
        let limit = self.framer.limit();
        let (kind, why) = match frame {
            Frame::TooLarge { declared: Some(n) } => (
                FindingKind::TcpMessageTooLarge,
                format!("a message of {n} bytes exceeds the {limit}-byte limit"),
            ),
            Frame::TooLarge { declared: None } => (
                FindingKind::TcpMessageTooLarge,
                format!("no end of headers within the {limit}-byte limit"),
            ),
            Frame::BadContentLength { offset } => (
                FindingKind::TcpBadContentLength,
                format!("Content-Length is not a number (offset {offset} of the message)"),
            ),
            _ => return,
        };
        self.give_up(ctx, kind, &why);
    }

    /// Desynchronises this direction: one finding, then skip to its end.
    fn give_up(&mut self, ctx: &mut Ctx<'_, '_>, kind: FindingKind, why: &str) {
        ctx.finding(
            kind,
            format!(
                "TCP {} -> {}: {why}; stream desynchronised, skipped until it ends",
                ctx.key.src, ctx.key.dst
            ),
        );
        ctx.counters.skipped_bytes += self.mem() as u64;
        self.mode = Mode::Desync;
        self.buf = Vec::new();
        self.held.clear();
        self.held_bytes = 0;
    }

    /// Ends this direction, reporting what was left incomplete.
    fn close(&mut self, ctx: &mut Ctx<'_, '_>, kind: FindingKind, why: &str) {
        self.flush_hunt_tail(ctx);
        if self.mode == Mode::Framing {
            if !self.buf.is_empty() {
                ctx.finding(
                    kind,
                    format!(
                        "TCP {} -> {} {why} inside a message: {} bytes from frame {} never completed",
                        ctx.key.src,
                        ctx.key.dst,
                        self.buf.len(),
                        self.buf_first_frame
                    ),
                );
            }
            if self.held_bytes > 0 {
                ctx.finding(
                    FindingKind::TcpGap,
                    format!(
                        "TCP {} -> {} {why} with {} bytes waiting behind a hole that never filled",
                        ctx.key.src, ctx.key.dst, self.held_bytes
                    ),
                );
            }
        }
        ctx.counters.skipped_bytes += self.mem() as u64;
        self.mode = Mode::Closed;
        self.buf = Vec::new();
        self.held.clear();
        self.held_bytes = 0;
    }
}

/// All directions being reassembled.
#[derive(Debug)]
pub struct TcpTable {
    dirs: HashMap<DirKey, Dir>,
    total: usize,
    limits: TcpLimits,
    next_sweep: Option<Timestamp>,
    counters: TcpCounters,
}

impl TcpTable {
    pub fn new(limits: TcpLimits) -> TcpTable {
        TcpTable {
            dirs: HashMap::new(),
            total: 0,
            limits,
            next_sweep: None,
            counters: TcpCounters::default(),
        }
    }

    /// Bytes buffered by all directions.
    pub fn buffered_bytes(&self) -> usize {
        self.total
    }

    /// Directions tracked (including closed ones still lingering).
    pub fn streams(&self) -> usize {
        self.dirs.len()
    }

    pub fn counters(&self) -> TcpCounters {
        self.counters
    }

    /// Processes one segment of frame `frame`, captured at `ts`; `now` is
    /// the capture clock (the latest timestamp so far), which idle
    /// timeouts follow so that a timestamp going back cannot stall them.
    pub fn segment(
        &mut self,
        seg: Segment<'_>,
        frame: u64,
        ts: Timestamp,
        now: Timestamp,
        sink: Sink<'_>,
    ) {
        self.sweep(frame, ts, now, sink);
        let key = DirKey {
            src: seg.src,
            dst: seg.dst,
        };
        if seg.rst {
            let back = DirKey {
                src: seg.dst,
                dst: seg.src,
            };
            for k in [key, back] {
                self.remove(k, frame, ts, sink, FindingKind::TcpIncomplete, "was reset");
            }
            return;
        }
        let seq_start = if seg.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        if !self.dirs.contains_key(&key) {
            // Bare ACKs do not open state.
            if seg.wire_len == 0 && !seg.syn && !seg.fin {
                return;
            }
            if self.dirs.len() >= self.limits.max_streams {
                self.evict(frame, ts, sink);
            }
            self.dirs
                .insert(key, Dir::new(seq_start, &self.limits, now));
        }
        let TcpTable {
            dirs,
            total,
            limits,
            counters,
            ..
        } = self;
        let Some(dir) = dirs.get_mut(&key) else {
            return;
        };
        let before = dir.mem();
        let mut ctx = Ctx {
            key,
            frame,
            ts,
            limits,
            budget: limits.max_total_bytes.saturating_sub(*total - before),
            counters,
            sink,
        };
        dir.last_ts = now;
        if seg.syn && dir.next != seq_start {
            // Same addresses, new initial sequence number: a new connection.
            dir.close(
                &mut ctx,
                FindingKind::TcpIncomplete,
                "was replaced by a new connection",
            );
            *dir = Dir::new(seq_start, limits, now);
        }
        let mut finished = false;
        match dir.mode {
            Mode::Desync | Mode::Closed => {
                ctx.counters.skipped_bytes += seg.data.len() as u64;
                finished = dir.mode == Mode::Desync && seg.fin;
            }
            Mode::Hunting | Mode::Framing => {
                dir.accept(seq_start, seg.data, seg.wire_len, &mut ctx);
                if seg.fin {
                    dir.fin_at = Some(seq_start.wrapping_add(seg.wire_len as u32));
                }
                if let Some(fin) = dir.fin_at
                    && dir.mode != Mode::Closed
                    && seq_diff(fin, dir.next) <= 0
                {
                    dir.close(&mut ctx, FindingKind::TcpIncomplete, "closed (FIN)");
                }
            }
        }
        *total = *total - before + dir.mem();
        if finished {
            dirs.remove(&key);
        }
    }

    /// Reports and drops every direction (end of capture).
    pub fn finish(&mut self, frame: u64, ts: Timestamp, sink: Sink<'_>) {
        let mut keys: Vec<(u64, DirKey)> = self
            .dirs
            .iter()
            .map(|(k, d)| (d.buf_first_frame, *k))
            .collect();
        keys.sort_by_key(|(f, k)| (*f, k.src.to_string(), k.dst.to_string()));
        for (_, k) in keys {
            self.remove(
                k,
                frame,
                ts,
                sink,
                FindingKind::TcpIncomplete,
                "ended with the capture",
            );
        }
    }

    fn remove(
        &mut self,
        key: DirKey,
        frame: u64,
        ts: Timestamp,
        sink: Sink<'_>,
        kind: FindingKind,
        why: &str,
    ) {
        let Some(mut dir) = self.dirs.remove(&key) else {
            return;
        };
        self.total -= dir.mem();
        let mut ctx = Ctx {
            key,
            frame,
            ts,
            limits: &self.limits,
            budget: 0,
            counters: &mut self.counters,
            sink,
        };
        dir.close(&mut ctx, kind, why);
    }

    /// Makes room: drops a closed direction if any, else the least
    /// recently active one.
    fn evict(&mut self, frame: u64, ts: Timestamp, sink: Sink<'_>) {
        let victim = self
            .dirs
            .iter()
            .min_by_key(|(_, d)| (d.mode != Mode::Closed, d.last_ts))
            .map(|(k, _)| *k);
        if let Some(k) = victim {
            self.remove(
                k,
                frame,
                ts,
                sink,
                FindingKind::TcpStreamEvicted,
                "was evicted (stream table full)",
            );
        }
    }

    /// Drops idle directions, at most once per second of capture time.
    fn sweep(&mut self, frame: u64, ts: Timestamp, now: Timestamp, sink: Sink<'_>) {
        if self.next_sweep.is_some_and(|t| now < t) {
            return;
        }
        self.next_sweep = Some(now.saturating_add(SWEEP_EVERY));
        let idle = self.limits.idle_timeout;
        let stale: Vec<DirKey> = self
            .dirs
            .iter()
            .filter(|(_, d)| {
                let limit = if d.mode == Mode::Closed {
                    idle.min(CLOSED_LINGER)
                } else {
                    idle
                };
                now.since(d.last_ts) > limit
            })
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            self.remove(k, frame, ts, sink, FindingKind::TcpIncomplete, "went idle");
        }
    }
}
