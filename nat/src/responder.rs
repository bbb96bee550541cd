//! An RFC 5780 STUN server on loopback: two IPs, two ports each, Binding
//! requests answered from the address CHANGE-REQUEST asks for, with
//! RESPONSE-ORIGIN and OTHER-ADDRESS.
//!
//! Addresses are indexed 0..4 as (IP1, port1), (IP1, port2), (IP2, port1),
//! (IP2, port2): flipping bit 1 changes the IP, bit 0 the port. Index 0 is
//! the primary address.
//!
//! Behind the relay the server's real sockets are reached through fronts,
//! so, like every outside node, it must *advertise* its fronts: the
//! addresses put in RESPONSE-ORIGIN and OTHER-ADDRESS are the advertised
//! ones ([`StunResponder::set_advertised`]), which default to the real ones.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use p2psip_stun::{
    Attribute, Class, HEADER_LEN, Message, Method, TransactionId, codes, decode, looks_like_stun,
};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// SOFTWARE of the responder's answers.
pub const SOFTWARE: &str = "p2psip-nat rfc5780 responder";

/// An answer to send: from address `via` (an index) to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub via: usize,
    pub to: SocketAddr,
    pub payload: Vec<u8>,
}

/// The server logic, without sockets: what to answer to `datagram` from
/// `from` received on address index `received_on` (0..4). `None` for
/// anything that is not a STUN request.
pub fn answer(
    datagram: &[u8],
    from: SocketAddr,
    received_on: usize,
    advertised: &[SocketAddr; 4],
) -> Option<Reply> {
    let received_on = received_on & 3;
    if !looks_like_stun(datagram) {
        return None;
    }
    let request = match decode(datagram) {
        Ok(m) => m,
        Err(_) => {
            // A malformed request still gets a 400 (RFC 5389 §7.3), built
            // from its header, which passed `looks_like_stun`.
            let mut tid = [0u8; 12];
            tid.copy_from_slice(&datagram[8..HEADER_LEN]);
            let is_request = datagram[0] & 0x01 == 0 && datagram[1] & 0x10 == 0;
            if !is_request {
                return None;
            }
            let header = Message::new(Class::Request, Method::BINDING, TransactionId::new(tid));
            return reply(
                Message::error_response(&header, codes::BAD_REQUEST, "Bad Request"),
                received_on,
                from,
            );
        }
    };
    if request.class != Class::Request {
        return None;
    }
    if request.method != Method::BINDING {
        return reply(
            Message::error_response(&request, codes::BAD_REQUEST, "Unsupported method"),
            received_on,
            from,
        );
    }
    let unknown = request.unknown_comprehension_required();
    if !unknown.is_empty() {
        // RFC 5389 §7.3.1: 420 listing them, from where it was received.
        return reply(
            Message::error_response(&request, codes::UNKNOWN_ATTRIBUTE, "Unknown Attribute")
                .with(Attribute::UnknownAttributes(unknown)),
            received_on,
            from,
        );
    }
    let change = request.change_request().unwrap_or_default();
    let via =
        received_on ^ if change.change_ip { 2 } else { 0 } ^ if change.change_port { 1 } else { 0 };
    let response = Message::success_response(&request)
        .with(Attribute::XorMappedAddress(from))
        .with(Attribute::MappedAddress(from))
        // RFC 5780 §7.3, §7.4: where it is sent from, and the address a
        // change of both IP and port would answer from.
        .with(Attribute::ResponseOrigin(advertised[via]))
        .with(Attribute::OtherAddress(advertised[received_on ^ 3]))
        .with(Attribute::Software(SOFTWARE.to_string()));
    reply(response, via, from)
}

fn reply(message: Message, via: usize, to: SocketAddr) -> Option<Reply> {
    let payload = message.with_fingerprint().encode().ok()?;
    Some(Reply { via, to, payload })
}

/// Why the responder could not start.
#[derive(Debug, Error)]
pub enum ResponderError {
    #[error("the two responder IPs must differ and be IPv4 loopback: {0} and {1}")]
    BadIps(Ipv4Addr, Ipv4Addr),
    #[error("could not bind two ports on both IPs after {0} attempts")]
    NoPorts(usize),
    #[error("the responder needs a running tokio runtime")]
    NoRuntime,
}

/// A running responder; dropping it stops its tasks.
#[derive(Debug)]
pub struct StunResponder {
    real: [SocketAddr; 4],
    advertised: Arc<Mutex<[SocketAddr; 4]>>,
    tasks: Vec<JoinHandle<()>>,
}

const BIND_ATTEMPTS: usize = 32;

impl StunResponder {
    /// Binds (ip1, p1), (ip1, p2), (ip2, p1), (ip2, p2) with system-chosen
    /// p1 and p2, retrying when the second IP has them taken.
    pub fn bind(ip1: Ipv4Addr, ip2: Ipv4Addr) -> Result<StunResponder, ResponderError> {
        if ip1 == ip2 || !ip1.is_loopback() || !ip2.is_loopback() {
            return Err(ResponderError::BadIps(ip1, ip2));
        }
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| ResponderError::NoRuntime)?;
        let sockets = (0..BIND_ATTEMPTS)
            .find_map(|_| bind_four(ip1, ip2))
            .ok_or(ResponderError::NoPorts(BIND_ATTEMPTS))?;
        let _guard = runtime.enter();
        let mut real = [SocketAddr::new(IpAddr::V4(ip1), 0); 4];
        let mut tokio_sockets = Vec::with_capacity(4);
        for (i, s) in sockets.into_iter().enumerate() {
            real[i] = s
                .local_addr()
                .map_err(|_| ResponderError::NoPorts(BIND_ATTEMPTS))?;
            s.set_nonblocking(true)
                .map_err(|_| ResponderError::NoPorts(BIND_ATTEMPTS))?;
            tokio_sockets.push(Arc::new(
                UdpSocket::from_std(s).map_err(|_| ResponderError::NoRuntime)?,
            ));
        }
        let sockets: Arc<Vec<Arc<UdpSocket>>> = Arc::new(tokio_sockets);
        let advertised = Arc::new(Mutex::new(real));
        let tasks = (0..4)
            .map(|i| runtime.spawn(serve(i, sockets.clone(), advertised.clone())))
            .collect();
        Ok(StunResponder {
            real,
            advertised,
            tasks,
        })
    }

    /// The real socket addresses, in index order.
    pub fn addresses(&self) -> [SocketAddr; 4] {
        self.real
    }

    /// The addresses to report (RESPONSE-ORIGIN, OTHER-ADDRESS), in index order.
    pub fn set_advertised(&self, advertised: [SocketAddr; 4]) {
        *self.advertised.lock().unwrap_or_else(|e| e.into_inner()) = advertised;
    }

    /// Stops the tasks and waits until they are gone (sockets closed).
    pub async fn shutdown(mut self, deadline: Duration) -> bool {
        let tasks = std::mem::take(&mut self.tasks);
        for t in &tasks {
            t.abort();
        }
        tokio::time::timeout(deadline, async {
            for t in tasks {
                let _ = t.await;
            }
        })
        .await
        .is_ok()
    }
}

impl Drop for StunResponder {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn bind_four(ip1: Ipv4Addr, ip2: Ipv4Addr) -> Option<Vec<std::net::UdpSocket>> {
    let a = std::net::UdpSocket::bind((ip1, 0)).ok()?;
    let b = std::net::UdpSocket::bind((ip1, 0)).ok()?;
    let p1 = a.local_addr().ok()?.port();
    let p2 = b.local_addr().ok()?.port();
    let c = std::net::UdpSocket::bind((ip2, p1)).ok()?;
    let d = std::net::UdpSocket::bind((ip2, p2)).ok()?;
    Some(vec![a, b, c, d])
}

async fn serve(
    index: usize,
    sockets: Arc<Vec<Arc<UdpSocket>>>,
    advertised: Arc<Mutex<[SocketAddr; 4]>>,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        // Serves until aborted.
        let Ok((len, from)) = sockets[index].recv_from(&mut buf).await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let adv = *advertised.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = answer(&buf[..len], from, index, &adv) {
            let send = sockets[r.via].send_to(&r.payload, r.to);
            if let Err(e) = tokio::time::timeout(Duration::from_secs(1), send).await {
                tracing::debug!(error = %e, "responder send missed its deadline");
            }
        }
    }
}
