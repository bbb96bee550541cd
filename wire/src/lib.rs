/*!
The wire format of the P2P-SIP overlay (profile `dsip-chord/1`, and the
legacy `sipping-02` syntax): a zero-copy nom parser of SIP/2.0 messages with
typed views of every header the profile uses, a printer of the canonical
form, builders for every P2P message, 160-bit IDs and ring math.

No I/O, no clock: everything here is a pure function of its input, so the
reference node, the harness's scripted peers and the offline capture checks
all read and write messages through the same code.
*/

pub mod framer;
pub mod id;

pub use framer::{Frame, Framer};
pub use id::{HexCase, Id, IdError, PeerId, ResourceId, peer_id};
