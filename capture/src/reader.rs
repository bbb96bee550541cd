//! Streaming reader of legacy pcap and pcapng files.
//!
//! Built on pcap-parser's streaming readers, whose `next()` answers
//! `Incomplete` (refill), `BufferTooSmall`, `UnexpectedEof` or a parse
//! error. All of that is handled in one loop ([`CaptureReader::step`]):
//! every block is consumed after use; the buffer grows for a large block up
//! to [`Limits::max_block`] and no further; a refill that brings no new
//! byte ends the loop (clean end if nothing was pending, truncation
//! otherwise), so it can neither spin nor grow without bound.
//!
//! The input is any [`Read`]; short reads (pipes) are retried until the
//! buffer is full or the input ends, and I/O errors are kept to be
//! returned as [`CaptureError::Io`] (pcap-parser only says "read error").

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{
    InterfaceDescriptionBlock, LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader,
};

use crate::{CaptureError, Decoder, Event, FindingKind, Limits, LinkType, Stats, Timestamp};

const PCAPNG_MAGIC: [u8; 4] = [0x0A, 0x0D, 0x0D, 0x0A];
/// Legacy magics as they appear in the file: little-endian µs, ns and
/// modified (Kuznetzov) formats, then big-endian µs and ns.
const PCAP_MAGICS: [[u8; 4]; 5] = [
    [0xD4, 0xC3, 0xB2, 0xA1],
    [0x4D, 0x3C, 0xB2, 0xA1],
    [0x34, 0xCD, 0xB2, 0xA1],
    [0xA1, 0xB2, 0xC3, 0xD4],
    [0xA1, 0xB2, 0x3C, 0x4D],
];
const PCAPNG_BOM: u32 = 0x1A2B_3C4D;
/// The read buffer never starts smaller than this.
const MIN_BUFFER: usize = 4096;

/// pcapng packet block types.
const EPB: u32 = 6;
const SPB: u32 = 3;
const OBSOLETE_PB: u32 = 2;

/// The container format of a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Legacy pcap, with its timestamp precision and byte order.
    Pcap { nanosecond: bool, big_endian: bool },
    /// pcapng (each section may have its own byte order).
    PcapNg,
}

/// The caller's reader, with the sniffed first bytes put back in front,
/// reads retried until the buffer is full, and the I/O error kept.
struct Input<R> {
    head: Vec<u8>,
    head_pos: usize,
    inner: R,
    error: Arc<Mutex<Option<io::Error>>>,
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if self.head_pos < self.head.len() {
                let k = (self.head.len() - self.head_pos).min(buf.len() - n);
                buf[n..n + k].copy_from_slice(&self.head[self.head_pos..self.head_pos + k]);
                self.head_pos += k;
                n += k;
                continue;
            }
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let msg = e.to_string();
                    if let Ok(mut slot) = self.error.lock() {
                        slot.get_or_insert(e);
                    }
                    return Err(io::Error::other(msg));
                }
            }
        }
        if self.head_pos == self.head.len() && !self.head.is_empty() {
            self.head = Vec::new();
            self.head_pos = 0;
        }
        Ok(n)
    }
}

/// Reads until `buf` is full or the input ends.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

enum Blocks<R: Read> {
    Legacy(LegacyPcapReader<Input<R>>),
    Ng(PcapNGReader<Input<R>>),
}

impl<R: Read> Blocks<R> {
    fn get(&mut self) -> &mut dyn PcapReaderIterator {
        match self {
            Blocks::Legacy(r) => r,
            Blocks::Ng(r) => r,
        }
    }
}

/// How to turn a pcapng interface's timestamps into nanoseconds.
#[derive(Debug, Clone, Copy)]
enum TsUnit {
    /// 10^-p seconds.
    Decimal(u32),
    /// 2^-p seconds.
    Binary(u32),
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link: LinkType,
    snaplen: u32,
    unit: TsUnit,
    offset_ns: i128,
}

impl Interface {
    fn timestamp(&self, high: u32, low: u32) -> Timestamp {
        let units = (u128::from(high) << 32) | u128::from(low);
        let ns: i128 = match self.unit {
            TsUnit::Decimal(p) if p <= 9 => (units * 10u128.pow(9 - p)) as i128,
            TsUnit::Decimal(p) => (units / 10u128.pow(p - 9)) as i128,
            // units < 2^64, so units * 1e9 < 2^94.
            TsUnit::Binary(p) => ((units * 1_000_000_000) >> p) as i128,
        };
        let total = ns.saturating_add(self.offset_ns);
        Timestamp::from_nanos(total.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }
}

/// Where the file reading stands, apart from the pcap-parser reader.
struct State {
    limits: Limits,
    frame: u64,
    last_ts: Timestamp,
    legacy_link: LinkType,
    legacy_nanos: bool,
    /// Byte order of the current pcapng section.
    ng_big_endian: bool,
    interfaces: Vec<Interface>,
    decoder: Decoder,
}

/// What one call of pcap-parser's `next()` came to, owning nothing of its
/// buffer so the buffer can be refilled.
enum Step {
    Consumed(usize),
    Eof,
    NeedMore(Option<usize>),
    Truncated,
    ReadError,
    Malformed(String),
}

/// Reads a capture file and reports its events.
///
/// ```no_run
/// # fn main() -> Result<(), p2psip_capture::CaptureError> {
/// use p2psip_capture::{CaptureReader, Event};
/// let file = std::fs::File::open("case.pcap")?;
/// let mut reader = CaptureReader::new(file)?;
/// reader.for_each(|event| {
///     if let Event::Datagram { frame, payload, .. } = event {
///         println!("{frame}: {} bytes", payload.len());
///     }
/// })?;
/// # Ok(()) }
/// ```
pub struct CaptureReader<R: Read> {
    blocks: Blocks<R>,
    io_error: Arc<Mutex<Option<io::Error>>>,
    format: Format,
    /// Bytes before the data of a legacy record (24 in the modified
    /// format, which adds interface, protocol and packet type).
    record_header: usize,
    capacity: usize,
    state: State,
    done: bool,
}

impl<R: Read> CaptureReader<R> {
    /// Opens a capture with the default [`Limits`].
    pub fn new(reader: R) -> Result<CaptureReader<R>, CaptureError> {
        CaptureReader::with_limits(reader, Limits::default())
    }

    /// Opens a capture: reads and checks its file header (or first pcapng
    /// section header). Fails if the input is not a capture at all.
    pub fn with_limits(mut reader: R, limits: Limits) -> Result<CaptureReader<R>, CaptureError> {
        let mut magic = [0u8; 4];
        let n = read_up_to(&mut reader, &mut magic)?;
        if n == 0 {
            return Err(CaptureError::Empty);
        }
        let is_ng = magic == PCAPNG_MAGIC;
        let is_legacy = PCAP_MAGICS.contains(&magic);
        if n < 4 || !(is_ng || is_legacy) {
            let prefix_of_magic = std::iter::once(PCAPNG_MAGIC)
                .chain(PCAP_MAGICS)
                .any(|m| m[..n] == magic[..n]);
            if n < 4 && prefix_of_magic {
                return Err(CaptureError::TruncatedHeader {
                    format: "capture",
                    len: n,
                });
            }
            return Err(CaptureError::NotACapture {
                magic: magic[..n].to_vec(),
            });
        }
        let mut head = magic.to_vec();
        let mut capacity = limits.read_buffer.max(MIN_BUFFER);
        if is_legacy {
            // The whole file header, so a short one is told apart.
            let mut rest = [0u8; 20];
            let got = read_up_to(&mut reader, &mut rest)?;
            head.extend_from_slice(&rest[..got]);
            if got < rest.len() {
                return Err(CaptureError::TruncatedHeader {
                    format: "pcap",
                    len: head.len(),
                });
            }
        }
        if is_ng {
            // Read the whole first section header block up front, so that
            // it fits the buffer however many options it carries.
            let shb_len = read_shb(&mut reader, &mut head, &limits)?;
            capacity = capacity.max(shb_len + 1);
        }
        let io_error = Arc::new(Mutex::new(None));
        let input = Input {
            head,
            head_pos: 0,
            inner: reader,
            error: Arc::clone(&io_error),
        };
        let format_name = if is_ng { "pcapng" } else { "pcap" };
        let header_error = |e: PcapError<&[u8]>| match e {
            PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
                CaptureError::TruncatedHeader {
                    format: format_name,
                    len: 0,
                }
            }
            PcapError::ReadError => take_io_error(&io_error),
            other => CaptureError::BadHeader {
                format: format_name,
                reason: other.to_string(),
            },
        };
        let (blocks, format) = if is_ng {
            let r = PcapNGReader::new(capacity, input).map_err(header_error)?;
            (Blocks::Ng(r), Format::PcapNg)
        } else {
            let r = LegacyPcapReader::new(capacity, input).map_err(header_error)?;
            let format = Format::Pcap {
                nanosecond: magic == PCAP_MAGICS[1] || magic == PCAP_MAGICS[4],
                big_endian: magic[0] == 0xA1,
            };
            (Blocks::Legacy(r), format)
        };
        Ok(CaptureReader {
            blocks,
            io_error,
            format,
            record_header: if magic == PCAP_MAGICS[2] { 24 } else { 16 },
            capacity,
            state: State {
                limits,
                frame: 0,
                last_ts: Timestamp::ZERO,
                legacy_link: LinkType::ETHERNET,
                legacy_nanos: false,
                ng_big_endian: false,
                interfaces: Vec::new(),
                decoder: Decoder::new(limits),
            },
            done: false,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.state.decoder.stats()
    }

    /// The decoder, to look at its bounded state.
    pub fn decoder(&self) -> &Decoder {
        &self.state.decoder
    }

    /// Current size of the read buffer.
    pub fn buffer_capacity(&self) -> usize {
        self.capacity
    }

    /// Packet records read so far (the last frame number).
    pub fn frames(&self) -> u64 {
        self.state.frame
    }

    /// Reads to the end, handing every event to `f`. Payloads borrow the
    /// reader's buffers: copy what must outlive the call
    /// ([`Event::into_owned`]).
    pub fn for_each(&mut self, mut f: impl FnMut(Event<'_>)) -> Result<(), CaptureError> {
        while self.step(&mut f)? {}
        Ok(())
    }

    /// An iterator of owned events (one payload copy each).
    pub fn events(self) -> Events<R> {
        Events {
            reader: self,
            queue: VecDeque::new(),
            over: false,
        }
    }

    /// Reads one block and reports its events; `false` once the capture
    /// is over (its end, or a problem that stops reading, which is then
    /// reported as a finding). After the last block, what is left
    /// incomplete (TCP streams, fragments) is reported.
    pub fn step(&mut self, sink: &mut dyn FnMut(Event<'_>)) -> Result<bool, CaptureError> {
        if self.done {
            return Ok(false);
        }
        loop {
            // pcap-parser subtracts 12 from a pcapng block length before
            // checking it for some block types (an overflow panic in debug
            // builds): check it first.
            if matches!(self.blocks, Blocks::Ng(_))
                && let Some(len) = self.declared_len()
                && (len < 12 || len % 4 != 0)
            {
                return self.stop(
                    sink,
                    FindingKind::BadBlock,
                    format!("pcapng block length {len} is invalid"),
                );
            }
            let step = {
                let blocks = self.blocks.get();
                match blocks.next() {
                    Ok((len, block)) => {
                        if len > 0 {
                            self.state.block(block, sink);
                        }
                        Step::Consumed(len)
                    }
                    Err(e) => classify_error(e),
                }
            };
            match step {
                Step::Consumed(0) => {
                    return self.stop(sink, FindingKind::BadBlock, "a block of length 0".into());
                }
                Step::Consumed(len) => {
                    // Not `consume`, which moves the rest of the buffer to
                    // its front whenever half of it has been read (half of
                    // every byte copied once more); `refill` moves only the
                    // incomplete record left at the end.
                    self.blocks.get().consume_noshift(len);
                    return Ok(true);
                }
                Step::Eof => return self.stop_clean(sink),
                Step::Truncated => return self.truncated(sink),
                Step::ReadError => {
                    self.done = true;
                    return Err(take_io_error(&self.io_error));
                }
                Step::Malformed(why) => {
                    if !self.skip_malformed(&why, sink) {
                        return Ok(false);
                    }
                }
                Step::NeedMore(needed) => {
                    if !self.fill(needed, sink)? {
                        return Ok(false);
                    }
                }
            }
        }
    }

    /// Makes more bytes available for the block at the front; false when
    /// reading is over (and reported).
    fn fill(
        &mut self,
        needed: Option<usize>,
        sink: &mut dyn FnMut(Event<'_>),
    ) -> Result<bool, CaptureError> {
        let max_block = self.state.limits.max_block;
        let avail = self.blocks.get().data().len();
        if let Some(len) = self.declared_len() {
            if let Blocks::Ng(_) = self.blocks
                && (len < 12 || len % 4 != 0)
            {
                self.stop(
                    sink,
                    FindingKind::BadBlock,
                    format!("pcapng block length {len} is invalid"),
                )?;
                return Ok(false);
            }
            if len > max_block {
                self.stop(
                    sink,
                    FindingKind::BlockTooLarge,
                    format!("a block of {len} bytes exceeds the {max_block}-byte limit"),
                )?;
                return Ok(false);
            }
            if avail >= len {
                // All there, yet the parser wants more: its inner lengths
                // contradict its block length.
                return Ok(self.skip_malformed("inner lengths exceed the block length", sink));
            }
        }
        let want = match self.declared_len() {
            Some(len) => len,
            None => avail.saturating_add(needed.unwrap_or(1).max(1)),
        };
        if want > max_block {
            self.stop(
                sink,
                FindingKind::BlockTooLarge,
                format!("a block needs {want} bytes, over the {max_block}-byte limit"),
            )?;
            return Ok(false);
        }
        // pcap-parser wants the buffer strictly larger than the block.
        if want >= self.capacity {
            let new = (want + 1).max(self.capacity.saturating_mul(2).min(max_block + 1));
            self.blocks.get().grow(new);
            self.capacity = new;
        }
        if self.blocks.get().refill().is_err() {
            self.done = true;
            return Err(take_io_error(&self.io_error));
        }
        if self.blocks.get().data().len() > avail {
            return Ok(true);
        }
        // Nothing new: the input is over.
        if avail == 0 {
            self.stop_clean(sink)?;
        } else {
            self.truncated(sink)?;
        }
        Ok(false)
    }

    /// Length of the pending block as its header declares it, if readable.
    fn declared_len(&mut self) -> Option<usize> {
        let record_header = self.record_header;
        let big_endian = self.state.ng_big_endian;
        let ng = matches!(self.blocks, Blocks::Ng(_));
        let data = self.blocks.get().data();
        let u32_at = |at: usize, be: bool| -> Option<u32> {
            let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
            Some(if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        if ng {
            // A section header states its own byte order.
            let be = if data.get(..4) == Some(&PCAPNG_MAGIC[..]) {
                u32_at(8, true)? == PCAPNG_BOM
            } else {
                big_endian
            };
            u32_at(4, be).map(|n| n as usize)
        } else {
            let be = matches!(
                self.format,
                Format::Pcap {
                    big_endian: true,
                    ..
                }
            );
            u32_at(8, be).map(|caplen| record_header + caplen as usize)
        }
    }

    /// Skips a malformed pcapng block whose length can be trusted;
    /// otherwise stops. False when reading is over.
    fn skip_malformed(&mut self, why: &str, sink: &mut dyn FnMut(Event<'_>)) -> bool {
        let declared = self.declared_len();
        let avail = self.blocks.get().data().len();
        let skippable = match declared {
            Some(len) if matches!(self.blocks, Blocks::Ng(_)) => {
                len >= 12 && len % 4 == 0 && len <= avail
            }
            _ => false,
        };
        let Some(len) = declared.filter(|_| skippable) else {
            let _ = self.stop(
                sink,
                FindingKind::BadBlock,
                format!("malformed block ({why})"),
            );
            return false;
        };
        let data = self.blocks.get().data();
        let raw_type = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        let block_type = if self.state.ng_big_endian {
            raw_type.swap_bytes()
        } else {
            raw_type
        };
        if matches!(block_type, EPB | SPB | OBSOLETE_PB) {
            // Still a packet record: keep frame numbers aligned with the
            // record index.
            self.state.frame += 1;
        }
        let frame = self.state.frame;
        self.state.decoder.finding(
            frame,
            FindingKind::BadBlock,
            format!(
                "skipped a malformed pcapng block of type {block_type:#x} and {len} bytes ({why})"
            ),
            sink,
        );
        self.blocks.get().consume_noshift(len);
        true
    }

    fn truncated(&mut self, sink: &mut dyn FnMut(Event<'_>)) -> Result<bool, CaptureError> {
        let left = self.blocks.get().data().len();
        let frame = self.state.frame;
        self.stop(
            sink,
            FindingKind::TruncatedFile,
            format!(
                "the file is truncated after frame {frame}: {left} bytes of an incomplete record"
            ),
        )
    }

    /// Reports a finding that ends reading, then what is left incomplete.
    fn stop(
        &mut self,
        sink: &mut dyn FnMut(Event<'_>),
        kind: FindingKind,
        message: String,
    ) -> Result<bool, CaptureError> {
        if !self.done {
            let frame = self.state.frame;
            self.state.decoder.finding(frame, kind, message, sink);
        }
        self.stop_clean(sink)
    }

    fn stop_clean(&mut self, sink: &mut dyn FnMut(Event<'_>)) -> Result<bool, CaptureError> {
        if !self.done {
            self.done = true;
            self.state.decoder.finish(sink);
        }
        Ok(false)
    }
}

fn classify_error(e: PcapError<&[u8]>) -> Step {
    match e {
        PcapError::Eof => Step::Eof,
        PcapError::Incomplete(0) => Step::NeedMore(None),
        PcapError::Incomplete(n) => Step::NeedMore(Some(n)),
        PcapError::BufferTooSmall => Step::NeedMore(None),
        PcapError::UnexpectedEof => Step::Truncated,
        PcapError::ReadError => Step::ReadError,
        other => Step::Malformed(other.to_string().chars().take(200).collect()),
    }
}

fn take_io_error(slot: &Mutex<Option<io::Error>>) -> CaptureError {
    let kept = slot.lock().ok().and_then(|mut s| s.take());
    CaptureError::Io(kept.unwrap_or_else(|| io::Error::other("read failed")))
}

/// Reads the rest of the first pcapng section header block into `head`
/// (which holds its first 4 bytes); returns its length.
fn read_shb(
    reader: &mut impl Read,
    head: &mut Vec<u8>,
    limits: &Limits,
) -> Result<usize, CaptureError> {
    let mut fixed = [0u8; 8];
    let n = read_up_to(reader, &mut fixed)?;
    head.extend_from_slice(&fixed[..n]);
    if n < 8 {
        return Err(CaptureError::TruncatedHeader {
            format: "pcapng",
            len: head.len(),
        });
    }
    let bom = [fixed[4], fixed[5], fixed[6], fixed[7]];
    let len_bytes = [fixed[0], fixed[1], fixed[2], fixed[3]];
    let len = if u32::from_le_bytes(bom) == PCAPNG_BOM {
        u32::from_le_bytes(len_bytes)
    } else if u32::from_be_bytes(bom) == PCAPNG_BOM {
        u32::from_be_bytes(len_bytes)
    } else {
        return Err(CaptureError::BadHeader {
            format: "pcapng",
            reason: format!("byte-order magic {bom:02x?} is neither order of 1A2B3C4D"),
        });
    } as usize;
    if len < 28 || !len.is_multiple_of(4) || len > limits.max_block {
        return Err(CaptureError::BadHeader {
            format: "pcapng",
            reason: format!("section header block length {len} is invalid"),
        });
    }
    let start = head.len();
    head.resize(len, 0);
    let got = read_up_to(reader, &mut head[start..])?;
    if start + got < len {
        return Err(CaptureError::TruncatedHeader {
            format: "pcapng",
            len: start + got,
        });
    }
    Ok(len)
}

impl State {
    fn block(&mut self, block: PcapBlockOwned<'_>, sink: &mut dyn FnMut(Event<'_>)) {
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                self.legacy_link = LinkType(h.network.0 as u32 & 0xFFFF);
                self.legacy_nanos = h.is_nanosecond_precision();
            }
            PcapBlockOwned::Legacy(b) => {
                let frac = if self.legacy_nanos {
                    i64::from(b.ts_usec)
                } else {
                    i64::from(b.ts_usec) * 1000
                };
                let ts = Timestamp::from_nanos(i64::from(b.ts_sec) * 1_000_000_000 + frac);
                self.packet(ts, self.legacy_link, b.data, sink);
            }
            PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                self.ng_big_endian = shb.big_endian();
                self.interfaces.clear();
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => self.interface(&idb, sink),
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                use pcap_parser::traits::PcapNGPacketBlock;
                self.ng_packet(
                    epb.if_id,
                    Some((epb.ts_high, epb.ts_low)),
                    epb.packet_data(),
                    sink,
                );
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                let snaplen = self.interfaces.first().map_or(0, |i| i.snaplen);
                let mut len = (spb.origlen as usize).min(spb.data.len());
                if snaplen > 0 {
                    len = len.min(snaplen as usize);
                }
                self.ng_packet(0, None, &spb.data[..len], sink);
            }
            PcapBlockOwned::NG(Block::Unknown(u)) => {
                let block_type = if self.ng_big_endian {
                    u.block_type.swap_bytes()
                } else {
                    u.block_type
                };
                if block_type == OBSOLETE_PB {
                    self.obsolete_packet(u.data, sink);
                }
            }
            PcapBlockOwned::NG(_) => {}
        }
    }

    /// The obsolete Packet Block: u16 interface, u16 drops, timestamp,
    /// captured and original lengths, data.
    fn obsolete_packet(&mut self, body: &[u8], sink: &mut dyn FnMut(Event<'_>)) {
        let be = self.ng_big_endian;
        let u32_at = |at: usize| -> Option<u32> {
            let b: [u8; 4] = body.get(at..at + 4)?.try_into().ok()?;
            Some(if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        let parsed = (|| {
            let id: [u8; 2] = body.get(..2)?.try_into().ok()?;
            let if_id = if be {
                u16::from_be_bytes(id)
            } else {
                u16::from_le_bytes(id)
            };
            let caplen = u32_at(12)? as usize;
            let data = body.get(20..20usize.checked_add(caplen)?)?;
            Some((if_id, u32_at(4)?, u32_at(8)?, data))
        })();
        match parsed {
            Some((if_id, high, low, data)) => {
                self.ng_packet(u32::from(if_id), Some((high, low)), data, sink)
            }
            None => {
                self.frame += 1;
                self.decoder.finding(
                    self.frame,
                    FindingKind::BadBlock,
                    "obsolete packet block with inconsistent lengths".to_string(),
                    sink,
                );
            }
        }
    }

    fn ng_packet(
        &mut self,
        if_id: u32,
        ts: Option<(u32, u32)>,
        data: &[u8],
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        let Some(iface) = self.interfaces.get(if_id as usize).copied() else {
            self.frame += 1;
            self.decoder.finding(
                self.frame,
                FindingKind::UnknownInterface,
                format!(
                    "packet on interface {if_id}, but the section describes {}",
                    self.interfaces.len()
                ),
                sink,
            );
            return;
        };
        // A simple packet block has no timestamp: it inherits the last one.
        let ts = ts.map_or(self.last_ts, |(h, l)| iface.timestamp(h, l));
        self.packet(ts, iface.link, data, sink);
    }

    fn packet(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        data: &[u8],
        sink: &mut dyn FnMut(Event<'_>),
    ) {
        self.frame += 1;
        self.last_ts = ts;
        self.decoder.frame(self.frame, ts, link, data, sink);
    }

    fn interface(&mut self, idb: &InterfaceDescriptionBlock<'_>, sink: &mut dyn FnMut(Event<'_>)) {
        if self.interfaces.len() >= self.limits.max_interfaces {
            self.decoder.finding(
                self.frame,
                FindingKind::BadInterface,
                format!(
                    "more than {} interfaces in one section; the rest are ignored",
                    self.limits.max_interfaces
                ),
                sink,
            );
            return;
        }
        let be = self.ng_big_endian;
        let mut unit = TsUnit::Decimal(6);
        let mut offset_s: i64 = 0;
        for opt in &idb.options {
            let Ok(value) = opt.as_bytes() else { continue };
            match opt.code.0 {
                9 => match value.first() {
                    Some(&r) if r & 0x80 == 0 && r <= 19 => unit = TsUnit::Decimal(u32::from(r)),
                    Some(&r) if r & 0x80 != 0 && r & 0x7F <= 63 => {
                        unit = TsUnit::Binary(u32::from(r & 0x7F))
                    }
                    _ => self.decoder.finding(
                        self.frame,
                        FindingKind::BadInterface,
                        format!(
                            "interface {}: unusable if_tsresol {value:02x?}; microseconds assumed",
                            self.interfaces.len()
                        ),
                        sink,
                    ),
                },
                14 => {
                    if let Ok(b) = <[u8; 8]>::try_from(value) {
                        offset_s = if be {
                            i64::from_be_bytes(b)
                        } else {
                            i64::from_le_bytes(b)
                        };
                    }
                }
                _ => {}
            }
        }
        self.interfaces.push(Interface {
            link: LinkType(u32::from(idb.linktype.0 as u16)),
            snaplen: idb.snaplen,
            unit,
            offset_ns: i128::from(offset_s) * 1_000_000_000,
        });
    }
}

/// Owned events of a capture, one at a time. Ends after an error.
pub struct Events<R: Read> {
    reader: CaptureReader<R>,
    queue: VecDeque<Event<'static>>,
    over: bool,
}

impl<R: Read> Events<R> {
    pub fn reader(&self) -> &CaptureReader<R> {
        &self.reader
    }
}

impl<R: Read> Iterator for Events<R> {
    type Item = Result<Event<'static>, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(Ok(e));
            }
            if self.over {
                return None;
            }
            let queue = &mut self.queue;
            match self.reader.step(&mut |e| queue.push_back(e.into_owned())) {
                Ok(true) => {}
                Ok(false) => self.over = true,
                Err(e) => {
                    self.over = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Reads a whole in-memory capture into owned events.
pub fn read_all(capture: &[u8]) -> Result<Vec<Event<'static>>, CaptureError> {
    let mut reader = CaptureReader::new(capture)?;
    let mut events = Vec::new();
    reader.for_each(|e| events.push(e.into_owned()))?;
    Ok(events)
}
