//! Properties: no input makes the reader panic, and TCP reassembly yields
//! the same messages whatever the segmentation, order and duplication.

mod common;

use common::*;
use p2psip_capture::{CaptureReader, Decoder, Event, Limits, LinkType, PayloadKind, Timestamp};
use proptest::prelude::*;

fn small_limits() -> Limits {
    Limits {
        read_buffer: 4096,
        max_block: 1 << 20,
        ..Limits::default()
    }
}

/// Reads to the end; errors are fine, panics and hangs are not.
fn read_anything(bytes: &[u8]) -> usize {
    let Ok(mut r) = CaptureReader::with_limits(bytes, small_limits()) else {
        return 0;
    };
    let mut n = 0;
    let _ = r.for_each(|_| n += 1);
    n
}

const LINKS: [u32; 9] = [0, 1, 101, 108, 113, 228, 229, 276, 147];

/// A plausible frame: a UDP or TCP packet in one of the link types.
fn frame_strategy() -> impl Strategy<Value = (u32, Vec<u8>)> {
    (
        0..LINKS.len(),
        any::<bool>(),
        any::<bool>(),
        any::<u32>(),
        0u8..8,
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(link, v6, tcp, seq, flags, payload)| {
            let (a, b) = if v6 {
                (addr("[fd00::1]:5060"), addr("[fd00::2]:5060"))
            } else {
                (addr("10.0.0.1:5060"), addr("10.0.0.2:5060"))
            };
            let mut payload = payload;
            if payload.first().is_some_and(|b| b % 2 == 0) {
                payload.splice(
                    0..0,
                    b"INVITE sip:x SIP/2.0\r\nl: 3\r\n\r\n".iter().copied(),
                );
            }
            let ip = if tcp {
                let f = Flags {
                    syn: flags & 1 != 0,
                    fin: flags & 2 != 0,
                    rst: flags & 4 != 0,
                };
                ip_tcp(a, b, seq % 4096, f, &payload)
            } else {
                ip_udp(a, b, &payload)
            };
            let link = LINKS[link];
            let framed = match link {
                0 => null(false, &ip),
                1 => eth(&[(0x8100, 5)], &ip),
                113 => sll(&ip),
                276 => sll2(&ip),
                108 => [&[0u8, 0, 0, if v6 { 24 } else { 2 }][..], &ip].concat(),
                _ => ip,
            };
            (link, framed)
        })
}

/// Flips bytes of `data` at positions picked by `flips`.
fn mutate(mut data: Vec<u8>, flips: &[(usize, u8)]) -> Vec<u8> {
    if !data.is_empty() {
        for (at, x) in flips {
            let i = at % data.len();
            data[i] ^= x;
        }
    }
    data
}

proptest! {

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        read_anything(&bytes);
    }

    #[test]
    fn arbitrary_records_after_valid_headers_never_panic(
        be in any::<bool>(),
        link in 0..LINKS.len(),
        body in prop::collection::vec(any::<u8>(), 0..3000),
    ) {
        let mut pcap_file = pcap(be, false, LINKS[link], &[]);
        pcap_file.extend_from_slice(&body);
        read_anything(&pcap_file);
        let mut ng = Ng::new(be);
        ng.idb(LINKS[link] as u16, Some(9), None);
        ng.buf.extend_from_slice(&body);
        read_anything(&ng.buf);
    }

    #[test]
    fn mutated_captures_never_panic(
        frames in prop::collection::vec(frame_strategy(), 1..12),
        flips in prop::collection::vec((any::<usize>(), 1u8..=255), 0..6),
        ng in any::<bool>(),
    ) {
        let file = if ng {
            let mut ng = Ng::new(false);
            for link in LINKS {
                ng.idb(link as u16, None, None);
            }
            for (link, f) in &frames {
                let if_id = LINKS.iter().position(|l| l == link).unwrap_or(0) as u32;
                ng.epb(if_id, 1, f);
            }
            ng.buf
        } else {
            let recs: Vec<(i64, Vec<u8>)> = frames.iter().map(|(_, f)| (0, f.clone())).collect();
            pcap(false, true, 1, &recs)
        };
        read_anything(&mutate(file, &flips));
    }

    #[test]
    fn decoder_takes_any_frame(link in any::<u32>(), frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..20)) {
        let mut d = Decoder::new(Limits::default());
        for (i, f) in frames.iter().enumerate() {
            d.frame(i as u64 + 1, Timestamp::ZERO, LinkType(link % 300), f, &mut |_| {});
        }
        d.finish(&mut |_| {});
    }

    #[test]
    fn mutated_frames_through_the_decoder(frames in prop::collection::vec(frame_strategy(), 1..30), flips in prop::collection::vec((any::<usize>(), 1u8..=255), 1..4)) {
        let mut d = Decoder::new(Limits::default());
        for (i, (link, f)) in frames.into_iter().enumerate() {
            let f = mutate(f, &flips);
            d.frame(i as u64 + 1, Timestamp::from_nanos(i as i64), LinkType(link), &f, &mut |_| {});
        }
        d.finish(&mut |_| {});
        prop_assert_eq!(d.tcp_buffered_bytes(), 0);
    }
}

/// A stream of SIP messages and keep-alives.
fn stream_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        prop_oneof![
            8 => (0usize..1000, 0usize..400).prop_map(|(n, body)| sip(n, body)),
            1 => Just(b"\r\n\r\n".to_vec()),
            1 => Just(b"\r\n".to_vec()),
        ],
        1..12,
    )
    .prop_map(|mut msgs| {
        // A stream starts with a message (a pong first is indistinguishable
        // from a ping cut in two).
        msgs.insert(0, sip(9999, 1));
        // Adjacent pong then ping frame differently ("\r\n\r\n\r\n"); keep
        // keep-alives apart by messages.
        let mut out: Vec<Vec<u8>> = Vec::new();
        for m in msgs {
            if m.starts_with(b"\r\n") && out.last().is_some_and(|p| p.starts_with(b"\r\n")) {
                continue;
            }
            out.push(m);
        }
        out
    })
}

struct Seg {
    off: usize,
    len: usize,
}

proptest! {

    #[test]
    fn tcp_reassembly_is_independent_of_segmentation(
        msgs in stream_strategy(),
        isn in any::<u32>(),
        cuts in prop::collection::vec(1usize..300, 1..400),
        swaps in prop::collection::vec((any::<usize>(), 0usize..6), 0..40),
        dups in prop::collection::vec((any::<usize>(), any::<usize>(), 1usize..200), 0..10),
        syn in any::<bool>(),
    ) {
        let stream: Vec<u8> = msgs.concat();
        // Segments of the given sizes (the last size repeats).
        let mut segs = Vec::new();
        let mut off = 0;
        let mut i = 0;
        while off < stream.len() {
            let len = cuts[i.min(cuts.len() - 1)].min(stream.len() - off);
            segs.push(Seg { off, len });
            off += len;
            i += 1;
        }
        // Local reordering: swap a segment with one a few places later.
        for (at, dist) in swaps {
            let a = at % segs.len();
            let b = (a + dist).min(segs.len() - 1);
            segs.swap(a, b);
        }
        // Retransmissions and overlapping resends, anywhere after the
        // first segment.
        for (at, from, len) in dups {
            let from = from % stream.len();
            let len = len.min(stream.len() - from);
            let at = 1 + at % segs.len();
            segs.insert(at.min(segs.len()), Seg { off: from, len });
        }
        let a = addr("10.0.0.1:40000");
        let b = addr("10.0.0.2:5060");
        let mut d = Decoder::new(Limits::default());
        let mut got: Vec<(PayloadKind, Vec<u8>)> = Vec::new();
        let mut findings = Vec::new();
        let mut sink = |e: Event<'_>| match e {
            Event::Datagram { kind, payload, .. } => got.push((kind, payload.to_vec())),
            Event::Finding { kind, message, .. } => findings.push((kind, message)),
        };
        let mut frame = 0;
        if syn {
            frame += 1;
            let p = ip_tcp(a, b, isn.wrapping_sub(1), Flags { syn: true, ..Flags::default() }, b"");
            d.frame(frame, Timestamp::ZERO, LinkType::RAW, &p, &mut sink);
        } else {
            // Without a handshake the first segment seen fixes the origin:
            // make it the first one.
            let first = segs.iter().position(|s| s.off == 0).unwrap_or(0);
            let s = segs.remove(first);
            segs.insert(0, s);
        }
        for s in &segs {
            frame += 1;
            let seq = isn.wrapping_add(s.off as u32);
            let p = ip_tcp(a, b, seq, Flags::default(), &stream[s.off..s.off + s.len]);
            d.frame(frame, Timestamp::from_nanos(frame as i64), LinkType::RAW, &p, &mut sink);
        }
        d.finish(&mut sink);
        prop_assert!(findings.is_empty(), "{:?}", findings);
        // Every byte comes out once, in order.
        let all: Vec<u8> = got.iter().flat_map(|g| g.1.clone()).collect();
        prop_assert_eq!(&all, &stream);
        // Messages come out whole. A ping cut between its two CRLFs reads
        // as two pongs: the framer cannot wait for bytes that may never
        // come, on a live stream or here.
        let sip_out: Vec<&Vec<u8>> = got.iter().filter(|g| g.0 == PayloadKind::Sip).map(|g| &g.1).collect();
        let sip_in: Vec<&Vec<u8>> = msgs.iter().filter(|m| !m.starts_with(b"\r\n")).collect();
        prop_assert_eq!(sip_out, sip_in);
        for (kind, p) in &got {
            let expected = match &p[..] {
                b"\r\n\r\n" => PayloadKind::KeepAlivePing,
                b"\r\n" => PayloadKind::KeepAlivePong,
                _ => PayloadKind::Sip,
            };
            prop_assert_eq!(*kind, expected);
        }
        prop_assert_eq!(d.tcp_buffered_bytes(), 0);
    }
}
