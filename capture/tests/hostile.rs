//! Hostile and broken input: never a panic, never a hang, bounded memory;
//! a typed error for what is not a capture, a finding for what is broken
//! inside one.

mod common;

use std::io::{self, Read};

use common::*;
use p2psip_capture::{CaptureError, CaptureReader, Event, FindingKind, Limits};

fn small_pcap() -> (Vec<u8>, Vec<usize>) {
    let a = addr("10.0.0.1:5060");
    let b = addr("10.0.0.2:5060");
    let m = sip(1, 20);
    let recs = vec![
        (0, ip_udp(a, b, &m)),
        (1, ip_tcp(a, b, 0, Flags::default(), &m[..40])),
        (2, ip_tcp(a, b, 40, Flags::default(), &m[40..])),
    ];
    let file = pcap(false, false, 101, &recs);
    let mut bounds = vec![24];
    for (_, r) in &recs {
        bounds.push(bounds.last().unwrap() + 16 + r.len());
    }
    (file, bounds)
}

fn small_pcapng() -> Vec<u8> {
    let a = addr("10.0.0.1:5060");
    let b = addr("[::2]:5060");
    let mut ng = Ng::new(false);
    ng.idb(101, Some(9), None);
    ng.epb(0, 5, &ip_udp(a, addr("10.0.0.2:5060"), &sip(1, 0)));
    ng.idb(1, None, None);
    ng.epb(1, 6, &eth(&[], &ip_udp(addr("[::1]:5060"), b, b"\r\n\r\n")));
    ng.spb(&ip_udp(a, addr("10.0.0.2:5060"), b"x"));
    ng.buf.clone()
}

/// Reads everything, returning the events or the error. A small read
/// buffer keeps the hundreds of reads below fast in debug builds.
fn read(bytes: &[u8]) -> Result<Vec<Event<'static>>, CaptureError> {
    let limits = Limits {
        read_buffer: 4096,
        ..Limits::default()
    };
    let mut r = CaptureReader::with_limits(bytes, limits)?;
    let mut events = Vec::new();
    r.for_each(|e| events.push(e.into_owned()))?;
    Ok(events)
}

#[test]
fn not_a_capture_is_an_error() {
    assert!(matches!(read(b""), Err(CaptureError::Empty)));
    assert!(matches!(
        read(b"hello world"),
        Err(CaptureError::NotACapture { .. })
    ));
    assert!(matches!(
        read(&[0xD4, 0xC3]),
        Err(CaptureError::TruncatedHeader { .. })
    ));
    assert!(matches!(
        read(&[0xD4, 0xC3, 0xB2, 0xA1, 2, 0]),
        Err(CaptureError::TruncatedHeader { .. })
    ));
    let mut bad_bom = small_pcapng();
    bad_bom[8] = 0x99;
    assert!(matches!(
        read(&bad_bom),
        Err(CaptureError::BadHeader { .. })
    ));
    let mut bad_len = small_pcapng();
    bad_len[4] = 0x1D;
    assert!(matches!(
        read(&bad_len),
        Err(CaptureError::BadHeader { .. })
    ));
    let msg = read(b"GIF89a").unwrap_err().to_string();
    assert!(msg.contains("not a pcap or pcapng"), "{msg}");
}

#[test]
fn truncated_at_every_offset_of_a_pcap() {
    let (file, bounds) = small_pcap();
    let full = read(&file).unwrap();
    for cut in 0..file.len() {
        match read(&file[..cut]) {
            Err(e) => assert!(cut < 24, "cut {cut}: {e}"),
            Ok(events) => {
                assert!(cut >= 24);
                let truncated = findings(&events).contains(&(
                    bounds.iter().filter(|b| **b <= cut).count() as u64 - 1,
                    FindingKind::TruncatedFile,
                ));
                assert_eq!(truncated, !bounds.contains(&cut), "cut {cut}: {events:?}");
                // What was read is what the whole file says up to there.
                let got = datagrams(&events);
                assert_eq!(got[..], datagrams(&full)[..got.len()], "cut {cut}");
            }
        }
    }
}

#[test]
fn truncated_at_every_offset_of_a_pcapng() {
    let file = small_pcapng();
    let full = read(&file).unwrap();
    assert_eq!(datagrams(&full).len(), 3);
    for cut in 0..file.len() {
        if let Ok(events) = read(&file[..cut]) {
            let got = datagrams(&events);
            assert_eq!(got[..], datagrams(&full)[..got.len()], "cut {cut}");
            let truncated = findings(&events)
                .iter()
                .any(|f| f.1 == FindingKind::TruncatedFile);
            let complete_blocks = got.len() == 3 && cut == file.len();
            assert!(
                truncated || complete_blocks || cut % 4 == 0,
                "cut {cut}: {events:?}"
            );
        }
    }
}

#[test]
fn absurd_snaplen_and_record_lengths() {
    let (mut file, _) = small_pcap();
    // The header's snaplen is only informative.
    file[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(datagrams(&read(&file).unwrap()).len(), 2);
    // A record claiming 4 GiB stops reading with a finding.
    let (mut file, bounds) = small_pcap();
    let second = bounds[1];
    file[second + 8..second + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let events = read(&file).unwrap();
    assert_eq!(datagrams(&events).len(), 1);
    assert_eq!(findings(&events), vec![(1, FindingKind::BlockTooLarge)]);
    // A big but allowed record in a cut file: the buffer grows, bounded.
    let (mut file, bounds) = small_pcap();
    file.truncate(bounds[1]);
    file.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    file.extend_from_slice(&(3_000_000u32).to_le_bytes());
    file.extend_from_slice(&(3_000_000u32).to_le_bytes());
    file.extend_from_slice(&vec![0x45; 100_000]);
    let mut r = CaptureReader::new(&file[..]).unwrap();
    let mut events = Vec::new();
    r.for_each(|e| events.push(e.into_owned())).unwrap();
    assert_eq!(findings(&events), vec![(1, FindingKind::TruncatedFile)]);
    assert!(
        r.buffer_capacity() > 3_000_000 && r.buffer_capacity() <= Limits::default().max_block + 1
    );
}

fn ng_with(block: &[u8]) -> Vec<u8> {
    let mut ng = Ng::new(false);
    ng.idb(101, None, None);
    ng.epb(
        0,
        1,
        &ip_udp(addr("10.0.0.1:5060"), addr("10.0.0.2:5060"), &sip(1, 0)),
    );
    let mut f = ng.buf.clone();
    f.extend_from_slice(block);
    f
}

#[test]
fn pcapng_bad_block_lengths() {
    let cases: Vec<(Vec<u8>, FindingKind)> = vec![
        (
            [6u32, 0, 0].iter().flat_map(|x| x.to_le_bytes()).collect(),
            FindingKind::BadBlock,
        ),
        (
            [6u32, 13, 0, 0]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            FindingKind::BadBlock,
        ),
        (
            [6u32, 0xFFFF_FFF0, 0, 0]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            FindingKind::BlockTooLarge,
        ),
        (b"garbage garbage garbage!".to_vec(), FindingKind::BadBlock),
        (
            b"\x00\x00\x00\x01\x00\x00\x00\x02garbage!".to_vec(),
            FindingKind::BlockTooLarge,
        ),
    ];
    for (block, kind) in cases {
        let events = read(&ng_with(&block)).unwrap();
        assert_eq!(datagrams(&events).len(), 1, "{block:02x?}");
        assert_eq!(findings(&events), vec![(1, kind)], "{block:02x?}");
    }
}

#[test]
fn short_lengths_on_every_block_type() {
    // Some block parsers subtract the header size before checking the
    // length; none of that may panic.
    for block_type in [1u32, 2, 3, 4, 5, 6, 9, 10, 0x0BAD, 0x8000_0001, 0x4000_0BAD] {
        for len in [0u32, 4, 8, 12, 16, 20] {
            let block: Vec<u8> = [block_type, len, len, 0, 0, 0, 0, 0]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            let events = read(&ng_with(&block)).unwrap();
            assert!(
                !findings(&events).is_empty(),
                "type {block_type:#x} len {len}"
            );
        }
    }
}

#[test]
fn malformed_block_with_a_sound_length_is_skipped() {
    // An EPB whose captured length exceeds its block.
    let mut epb = Vec::new();
    for x in [6u32, 36, 0, 0, 1, 500, 500, 0xAAAA_AAAA, 36] {
        epb.extend_from_slice(&x.to_le_bytes());
    }
    let mut file = ng_with(&epb);
    // Then a good packet again.
    let mut ng = Ng {
        be: false,
        buf: Vec::new(),
    };
    ng.epb(
        0,
        2,
        &ip_udp(addr("10.0.0.1:5060"), addr("10.0.0.2:5060"), &sip(2, 0)),
    );
    file.extend_from_slice(&ng.buf);
    let events = read(&file).unwrap();
    let d = datagrams(&events);
    assert_eq!(d.iter().map(|d| d.0).collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(findings(&events), vec![(2, FindingKind::BadBlock)]);
}

/// A reader that fails after some bytes.
struct Failing {
    data: Vec<u8>,
    pos: usize,
    fail_at: usize,
}

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.fail_at {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "pipe broke"));
        }
        let n = buf
            .len()
            .min(self.fail_at - self.pos)
            .min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn io_errors_are_returned_with_their_kind() {
    let (file, bounds) = small_pcap();
    let r = CaptureReader::new(Failing {
        data: file.clone(),
        pos: 0,
        fail_at: 2,
    });
    assert!(matches!(r, Err(CaptureError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset));
    let _ = bounds;
    let recs: Vec<(i64, Vec<u8>)> = (0..100)
        .map(|i| {
            (
                i,
                ip_udp(addr("10.0.0.1:5060"), addr("10.0.0.2:5060"), &sip(1, 0)),
            )
        })
        .collect();
    let file = pcap(false, false, 101, &recs);
    let limits = Limits {
        read_buffer: 0,
        ..Limits::default()
    };
    let mut r = CaptureReader::with_limits(
        Failing {
            data: file,
            pos: 0,
            fail_at: 10_000,
        },
        limits,
    )
    .unwrap();
    let mut n = 0;
    let err = r.for_each(|_| n += 1).unwrap_err();
    assert!(n > 20 && n < 100, "{n} events before the error");
    assert!(
        matches!(err, CaptureError::Io(ref e) if e.kind() == io::ErrorKind::ConnectionReset),
        "{err}"
    );
}

/// Hands out one byte per read, like a slow pipe, with interruptions.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    interrupt: bool,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        if self.pos == self.data.len() || buf.is_empty() {
            return Ok(0);
        }
        buf[0] = self.data[self.pos];
        self.pos += 1;
        Ok(1)
    }
}

#[test]
fn short_reads_give_the_same_events() {
    for file in [small_pcap().0, small_pcapng()] {
        let mut r = CaptureReader::new(Trickle {
            data: file.clone(),
            pos: 0,
            interrupt: false,
        })
        .unwrap();
        let mut events = Vec::new();
        r.for_each(|e| events.push(e.into_owned())).unwrap();
        assert_eq!(events, read(&file).unwrap());
    }
}

#[test]
fn garbage_after_the_header_ends_reading_with_findings() {
    let (mut file, _) = small_pcap();
    file.truncate(24);
    file.extend((0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let events = read(&file).unwrap();
    assert!(!findings(&events).is_empty());
}
