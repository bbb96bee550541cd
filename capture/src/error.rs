//! Errors: what stops a capture from being read at all, or a write from
//! happening. Problems inside a readable capture are findings
//! ([`crate::Event::Finding`]), not errors.

use std::io;

/// Why a capture cannot be read (or cannot be read further).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The input holds no byte at all.
    #[error("the input is empty: not a capture file")]
    Empty,
    /// The first bytes are no pcap or pcapng magic number.
    #[error("not a pcap or pcapng file (starts with {magic:02x?})")]
    NotACapture { magic: Vec<u8> },
    /// The magic number is right but the file ends inside its header.
    #[error("{format} file header truncated: only {len} bytes")]
    TruncatedHeader { format: &'static str, len: usize },
    /// The magic number is right but the header is malformed.
    #[error("bad {format} file header: {reason}")]
    BadHeader {
        format: &'static str,
        reason: String,
    },
    /// Reading the underlying input failed.
    #[error("reading the capture failed: {0}")]
    Io(#[from] io::Error),
}

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("writing the capture failed: {0}")]
    Io(#[from] io::Error),
    /// Source and destination are not of the same IP version.
    #[error("source {src} and destination {dst} are not of the same address family")]
    MixedFamilies {
        src: std::net::SocketAddr,
        dst: std::net::SocketAddr,
    },
    /// The payload cannot be carried by one datagram of this transport.
    #[error("payload of {len} bytes exceeds the {max} bytes one UDP datagram can carry")]
    PayloadTooLarge { len: usize, max: usize },
    /// Legacy pcap stores unsigned 32-bit seconds.
    #[error("timestamp {0:?} is outside the range of a pcap record (1970..2106)")]
    TimestampOutOfRange(crate::Timestamp),
    /// Header synthesis failed (a length that does not fit a header field).
    #[error("cannot build packet headers: {0}")]
    Build(String),
}
