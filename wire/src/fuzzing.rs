/*!
The properties the fuzz targets check, kept here so that the stable test
suite runs the very same code over the fuzz corpus and the vectors.
*/

use crate::framer::{Frame, Framer};
use crate::{ParseOptions, Profile, parse, print};

/// Parses `data` in every mode and profile. Panics if the parser panics,
/// or if a parsed message does not survive print-then-parse unchanged.
pub fn check_parse(data: &[u8]) {
    for profile in [Profile::DsipChord, Profile::Sipping02] {
        for opts in [ParseOptions::strict(), ParseOptions::lenient()] {
            let opts = opts.with_profile(profile);
            if let Ok(p) = parse(data, opts) {
                let printed = print(&p.message);
                match parse(&printed, ParseOptions::lenient().with_profile(profile)) {
                    Ok(again) => {
                        assert_eq!(again.message, p.message, "print/parse changed the message")
                    }
                    Err(e) => panic!("the printed form of a parsed message is refused: {e}"),
                }
            }
        }
    }
}

/// Frames `data` as a TCP stream delivered in chunks whose sizes come from
/// the data itself. Panics if framing stalls or disagrees with itself.
pub fn check_stream(data: &[u8]) {
    let mut framer = Framer::new(4096);
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut step = 1 + data.first().copied().unwrap_or(7) as usize % 97;
    // Each round either consumes bytes or feeds more, so it ends.
    for _ in 0..(data.len() * 2 + 8) {
        match framer.next_frame(&buf) {
            Frame::Message { len, .. } | Frame::Ping { len } | Frame::Pong { len } => {
                assert!(
                    len > 0 && len <= buf.len(),
                    "frame of {len} in {} bytes",
                    buf.len()
                );
                let _ = parse(&buf[..len], ParseOptions::lenient());
                buf.drain(..len);
            }
            Frame::NeedMore => {
                if fed == data.len() {
                    return;
                }
                let end = (fed + step).min(data.len());
                buf.extend_from_slice(&data[fed..end]);
                fed = end;
                step = 1 + (step * 31 + 7) % 113;
            }
            Frame::TooLarge { .. } | Frame::BadContentLength { .. } => return,
        }
        assert!(buf.len() <= 4096 + 113, "buffered beyond the limit");
    }
}
