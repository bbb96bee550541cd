/*!
Offline capture input and output for the conformance harness.

Reading: [`CaptureReader`] streams a legacy pcap or pcapng file from any
[`std::io::Read`] (a file, stdin) and turns it into [`Event`]s: one
[`Event::Datagram`] per UDP datagram (after IPv4/IPv6 reassembly), one per
complete SIP message framed out of a reassembled TCP stream (with the same
Content-Length framer, [`p2psip_wire::framer`], that live TCP uses), one per
keep-alive, and [`Event::Finding`]s for every bounded problem met on the way
(truncated packets, bad headers, stream gaps, limits hit...).

Memory is bounded by [`Limits`]: the read buffer, the pending IP fragments
and the open TCP streams each have a cap, so it never grows with the size of
the file. Hostile input yields findings or a [`CaptureError`], never a
panic or a hang.

Writing: [`PcapWriter`] records the harness's own traffic as a nanosecond
legacy pcap over Ethernet, synthesising IPv4/IPv6, UDP and TCP headers.

Layers, each in its own module: [`reader`] (file formats and the refill
loop), [`link`] (link-layer headers), [`decoder`] (IP, fragments, UDP,
dispatch), [`defrag`], [`tcp`] (per-direction stream reassembly and
framing), [`classify`] (SIP/STUN recognition) and [`writer`].
*/

pub mod classify;
pub mod decoder;
pub mod defrag;
pub mod error;
pub mod event;
pub mod link;
pub mod reader;
pub mod tcp;
pub mod time;
pub mod writer;

pub use decoder::{Decoder, Limits};
pub use error::{CaptureError, WriteError};
pub use event::{Event, FindingKind, PayloadKind, Stats, Transport};
pub use link::LinkType;
pub use reader::{CaptureReader, Events, Format, read_all};
pub use time::Timestamp;
pub use writer::PcapWriter;
