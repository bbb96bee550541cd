/*!
Scripted peers ("puppets"): harness-owned sockets that say exactly what a
case tells them to, right or deliberately wrong, and record everything.

A puppet owns one unconnected UDP socket on its own 127.x.y.z address (an
unconnected socket never reports an earlier ICMP error on a later receive),
and opens TCP connections on demand when a case sends over TCP. Every
datagram and TCP message it receives lands in its [`Inbox`], parsed
leniently; `expect` steps search the inbox. Every byte it sends or
receives is recorded in the case's [`Recorder`] (ladder and pcap).

A puppet can answer some requests by itself ([`Auto`]): OPTIONS (so an
IUT that verifies peers before adopting them, QUERY-7, finds it alive),
node queries from its own [`View`] of the ring (200 for its own ID, 404
when it is responsible, else 302 towards the key), and notifies (200).
Auto-answered requests stay in the inbox, flagged, so a case can still
expect them.

Placement on the ring (a Peer-ID in a wanted arc) happens when the puppet
binds: see [`Puppet::bind_in`] and [`crate::net::place`].
*/

pub mod inbox;
pub mod store;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use p2psip_wire::build::{self, Identity, Link, Txn};
use p2psip_wire::{
    Class, Frame, Framer, Id, LinkKind, LinkType, Message, Method, ParseOptions, Peer, Transport,
    closest_preceding, parse, print,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpSocket, UdpSocket};
use tokio::task::JoinHandle;

use crate::evidence::{Dir, Recorder};
use crate::net::{self, Arc as RingArc, PlaceError};
pub use inbox::{Inbox, Kind, Matcher, Received};

/// Largest datagram a puppet reads.
const RECV_BUF: usize = 65_536;
/// Largest TCP message a puppet frames (more than any receiver's limit,
/// so the puppet sees what an IUT sends even when it is too large).
const TCP_LIMIT: usize = 1 << 20;

/// Which requests a puppet answers by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Auto {
    /// OPTIONS: 200 with Supported: dht, its DHT-PeerID and its links.
    pub options: bool,
    /// Node queries: from its [`View`] (QUERY-2, QUERY-3).
    pub queries: bool,
    /// Notifies (join-shaped REGISTERs carrying links): 200 with its links.
    pub notifies: bool,
    /// Resource registrations, transfers and lookups, as a holder would
    /// ([`store`]).
    pub store: bool,
    /// Leaves (join-shaped REGISTERs with Expires 0): 200.
    pub leaves: bool,
}

impl Auto {
    pub const NONE: Auto = Auto {
        options: false,
        queries: false,
        notifies: false,
        store: false,
        leaves: false,
    };
    pub const PEER: Auto = Auto {
        options: true,
        queries: true,
        notifies: true,
        store: false,
        leaves: false,
    };
}

/// What a puppet claims about its neighbours when it answers by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub pred: Option<Peer>,
    pub succ: Vec<Peer>,
    /// Lifetime of the links it reports (seconds, > 0, WIRE-5).
    pub link_expires: u32,
}

impl View {
    /// The DHT-Link set: P1 then S1..Sn.
    pub fn links(&self) -> Vec<Link> {
        let expires = self.link_expires.max(1);
        let mut out = Vec::new();
        if let Some(p) = self.pred {
            out.push(Link {
                link: LinkType {
                    kind: LinkKind::P,
                    depth: 1,
                },
                peer: p,
                expires,
            });
        }
        for (i, s) in self.succ.iter().enumerate().take(255) {
            out.push(Link {
                link: LinkType {
                    kind: LinkKind::S,
                    depth: (i + 1) as u8,
                },
                peer: *s,
                expires,
            });
        }
        out
    }
}

/// Why a puppet could not do what it was told.
#[derive(Debug, thiserror::Error)]
pub enum PuppetError {
    #[error("placing the puppet: {0}")]
    Place(#[from] PlaceError),
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
}

struct Shared {
    name: String,
    identity: Mutex<Identity>,
    rec: Arc<Recorder>,
    inbox: Inbox,
    auto: Mutex<Auto>,
    view: Mutex<View>,
    udp: Arc<UdpSocket>,
    tcp: tokio::sync::Mutex<HashMap<SocketAddr, TcpConn>>,
    counter: AtomicU32,
    /// The address `udp` is bound to: the identity's, unless the puppet
    /// advertises another one ([`Puppet::advertise`]).
    sock: SocketAddr,
    store: Mutex<store::Store>,
}

struct TcpConn {
    local: SocketAddr,
    write: OwnedWriteHalf,
    reader: JoinHandle<()>,
}

/// A scripted peer. Dropping it stops its tasks and closes its sockets.
pub struct Puppet {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    last_sent: Mutex<Option<Sent>>,
}

/// The last message a puppet sent: for `resend` (TXN-2) and to match
/// responses to it by branch.
#[derive(Debug, Clone)]
pub struct Sent {
    pub to: SocketAddr,
    pub transport: Transport,
    pub bytes: Arc<[u8]>,
    pub branch: Option<String>,
    pub at: Instant,
}

impl Drop for Puppet {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(mut conns) = self.shared.tcp.try_lock() {
            for (_, c) in conns.drain() {
                c.reader.abort();
            }
        }
    }
}

impl Puppet {
    /// Binds a puppet on a fresh loopback address whose Peer-ID lies in
    /// `arc` (anywhere when `None`).
    pub async fn bind_in(
        name: &str,
        arc: Option<RingArc>,
        overlay: &str,
        peer_expires: u32,
        rec: Arc<Recorder>,
    ) -> Result<Puppet, PuppetError> {
        let (std_sock, addr) = net::place(arc, |ip: IpAddr| {
            let s = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
            let a = s.local_addr()?;
            Ok((s, a))
        })?;
        std_sock.set_nonblocking(true)?;
        let udp = Arc::new(UdpSocket::from_std(std_sock)?);
        let peer = Peer::at(addr);
        rec.label(addr, name.to_string());
        let shared = Arc::new(Shared {
            name: name.to_string(),
            identity: Mutex::new(Identity::new(peer, overlay).with_expires(peer_expires)),
            rec,
            inbox: Inbox::default(),
            auto: Mutex::new(Auto::NONE),
            view: Mutex::new(View {
                link_expires: peer_expires,
                ..View::default()
            }),
            udp,
            tcp: tokio::sync::Mutex::new(HashMap::new()),
            counter: AtomicU32::new(0),
            sock: addr,
            store: Mutex::new(store::Store::default()),
        });
        let task = tokio::spawn(udp_loop(shared.clone()));
        Ok(Puppet {
            shared,
            task,
            last_sent: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address its UDP socket is bound to.
    pub fn socket_addr(&self) -> SocketAddr {
        self.shared.sock
    }

    /// Advertises `addr` instead of its socket's address: its Peer-ID,
    /// Peer URI and Via sent-by use it, and its inbox records it as the
    /// address messages were sent to (a NAT relay's front, or a public
    /// mapping the puppet learned). Packets still leave from its socket.
    pub fn advertise(&self, addr: SocketAddr) {
        lock(&self.shared.identity).peer = Peer::at(addr);
    }

    pub fn addr(&self) -> SocketAddr {
        self.peer().addr
    }

    pub fn peer(&self) -> Peer {
        lock(&self.shared.identity).peer
    }

    pub fn id(&self) -> Id {
        self.peer().id
    }

    /// The identity it sends (DHT-PeerID).
    pub fn identity(&self) -> Identity {
        lock(&self.shared.identity).clone()
    }

    pub fn set_auto(&self, auto: Auto) {
        *lock(&self.shared.auto) = auto;
    }

    pub fn set_view(&self, view: View) {
        *lock(&self.shared.view) = view;
    }

    pub fn view(&self) -> View {
        lock(&self.shared.view).clone()
    }

    pub fn inbox(&self) -> &Inbox {
        &self.shared.inbox
    }

    /// The copy it holds at `key` (with `auto = ["store"]`).
    pub fn held(&self, key: &Id) -> Option<store::Held> {
        lock(&self.shared.store).get(key, Instant::now())
    }

    /// A fresh client transaction: unique branch, Call-ID and tag.
    pub fn txn(&self) -> Txn {
        let n = self.shared.counter.fetch_add(1, Ordering::Relaxed);
        let addr = self.addr();
        let stem = format!("{}-{}-{}", self.shared.name, addr.port(), n);
        Txn::udp(
            &format!("z9hG4bK-{stem}"),
            &format!("call-{stem}"),
            &format!("tag-{stem}"),
            n + 1,
            addr,
        )
    }

    /// A fresh To tag for a response.
    pub fn tag(&self) -> String {
        let n = self.shared.counter.fetch_add(1, Ordering::Relaxed);
        format!("tag-{}-{n}", self.shared.name)
    }

    pub fn last_sent(&self) -> Option<Sent> {
        lock(&self.last_sent).clone()
    }

    /// Sends bytes as they are, over UDP or TCP, and remembers them.
    pub async fn send_bytes(
        &self,
        to: SocketAddr,
        transport: Transport,
        bytes: &[u8],
        segments: &[usize],
        gap: Duration,
    ) -> Result<(), PuppetError> {
        let branch = branch_of(bytes);
        match transport {
            Transport::Udp => self.send_udp(to, bytes).await?,
            Transport::Tcp => self.send_tcp(to, bytes, segments, gap).await?,
        }
        // Only requests define "the last request" responses match against.
        if is_request_bytes(bytes) || branch.is_none() {
            *lock(&self.last_sent) = Some(Sent {
                to,
                transport,
                bytes: Arc::from(bytes),
                branch,
                at: Instant::now(),
            });
        }
        Ok(())
    }

    /// Sends a built message.
    pub async fn send_msg(
        &self,
        to: SocketAddr,
        transport: Transport,
        msg: &Message<'_>,
    ) -> Result<(), PuppetError> {
        self.send_bytes(to, transport, &print(msg), &[], Duration::ZERO)
            .await
    }

    async fn send_udp(&self, to: SocketAddr, bytes: &[u8]) -> std::io::Result<()> {
        send_udp(&self.shared, to, bytes).await
    }

    /// Writes on the TCP connection to `to`, opening it first if needed;
    /// `segments` splits the bytes into writes of those sizes (the rest in
    /// one last write), `gap` apart (WIRE-9).
    async fn send_tcp(
        &self,
        to: SocketAddr,
        bytes: &[u8],
        segments: &[usize],
        gap: Duration,
    ) -> std::io::Result<()> {
        let mut conns = self.shared.tcp.lock().await;
        let conn = match conns.entry(to) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(open_tcp(self.shared.clone(), to).await?)
            }
        };
        let mut rest = bytes;
        let mut cuts = segments.iter();
        while !rest.is_empty() {
            let n = cuts
                .next()
                .copied()
                .unwrap_or(rest.len())
                .clamp(1, rest.len());
            let (chunk, tail) = rest.split_at(n);
            self.shared
                .rec
                .packet(Dir::Sent, conn.local, to, Transport::Tcp, chunk);
            conn.write.write_all(chunk).await?;
            conn.write.flush().await?;
            rest = tail;
            if !rest.is_empty() && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
        }
        Ok(())
    }

    /// Closes the TCP connection to `to`, if any.
    pub async fn close_tcp(&self, to: SocketAddr) {
        let mut conns = self.shared.tcp.lock().await;
        if let Some(mut c) = conns.remove(&to) {
            self.shared.rec.tcp_close(c.local, to);
            let _ = c.write.shutdown().await;
            c.reader.abort();
        }
    }

    /// Answers `req` (received from `source`) with `resp`, on the path the
    /// request came: the UDP socket, or the TCP connection it arrived on.
    pub async fn respond(&self, req: &Received, resp: &Message<'_>) -> Result<(), PuppetError> {
        let bytes = print(resp);
        match req.transport {
            Transport::Udp => self.send_udp(req.from, &bytes).await?,
            Transport::Tcp => self.send_tcp(req.from, &bytes, &[], Duration::ZERO).await?,
        }
        Ok(())
    }

    /// The response a peer gives to `req`: Via/To/From/Call-ID/CSeq
    /// copied (RFC 3261 §8.2.6), received/rport filled (NAT-2), the
    /// puppet's identity and links.
    pub fn response_to(
        &self,
        req: &Received,
        code: u16,
        links: &[Link],
    ) -> Option<Message<'static>> {
        let m = req.message.as_ref()?;
        let mut r = build::response(m, code, build::reason_phrase(code), req.from, &self.tag());
        r.make_p2p(&self.identity());
        r.push_links(links);
        Some(r)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn send_udp(shared: &Shared, to: SocketAddr, bytes: &[u8]) -> std::io::Result<()> {
    let from = shared.sock;
    shared
        .rec
        .packet(Dir::Sent, from, to, Transport::Udp, bytes);
    shared.udp.send_to(bytes, to).await.map(|_| ())
}

async fn open_tcp(shared: Arc<Shared>, to: SocketAddr) -> std::io::Result<TcpConn> {
    let ip = shared.sock.ip();
    let sock = match to {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    sock.set_reuseaddr(true)?;
    sock.bind(SocketAddr::new(ip, 0))?;
    let stream = tokio::time::timeout(Duration::from_secs(5), sock.connect(to))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "TCP connect timed out")
        })??;
    stream.set_nodelay(true)?;
    let local = stream.local_addr()?;
    shared.rec.label(local, format!("{} (tcp)", shared.name));
    shared.rec.tcp_open(local, to);
    let (mut read, write) = stream.into_split();
    let sh = shared.clone();
    let reader = tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        let mut framer = Framer::new(TCP_LIMIT);
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let n = match read.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    sh.rec.tcp_close(to, local);
                    sh.inbox.push_closed(to, local);
                    return;
                }
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            loop {
                match framer.next_frame(&buf) {
                    Frame::NeedMore => break,
                    Frame::Message { len, .. } | Frame::Ping { len } | Frame::Pong { len } => {
                        let msg: Vec<u8> = buf.drain(..len).collect();
                        sh.rec
                            .packet(Dir::Received, to, local, Transport::Tcp, &msg);
                        sh.inbox.push(to, local, Transport::Tcp, &msg);
                    }
                    Frame::TooLarge { .. } | Frame::BadContentLength { .. } => {
                        // Cannot resynchronise: keep the rest as one blob.
                        let msg: Vec<u8> = std::mem::take(&mut buf);
                        sh.rec
                            .packet(Dir::Received, to, local, Transport::Tcp, &msg);
                        sh.inbox.push(to, local, Transport::Tcp, &msg);
                        break;
                    }
                }
            }
        }
    });
    Ok(TcpConn {
        local,
        write,
        reader,
    })
}

async fn udp_loop(shared: Arc<Shared>) {
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let (n, from) = match shared.udp.recv_from(&mut buf).await {
            Ok(x) => x,
            // Transient errors (an ICMP report on some platforms): keep
            // reading; the socket itself stays usable.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let bytes = &buf[..n];
        let me = lock(&shared.identity).peer.addr;
        shared
            .rec
            .packet(Dir::Received, from, shared.sock, Transport::Udp, bytes);
        // The automatic answer (and what it stores) is made before the
        // request becomes visible to expectations and checks.
        let (_, resp) = shared
            .inbox
            .push_with(from, me, Transport::Udp, bytes, |r| {
                let resp = auto_answer(&shared, r);
                (resp.is_some(), resp)
            });
        if let Some(resp) = resp {
            let _ = send_udp(&shared, from, &print(&resp)).await;
        }
    }
}

/// The automatic answer to `req`, if the puppet gives one.
fn auto_answer(shared: &Shared, req: &Received) -> Option<Message<'static>> {
    let auto = *lock(&shared.auto);
    if auto == Auto::NONE {
        return None;
    }
    let m = req.message.as_ref()?;
    if !m.is_request() {
        return None;
    }
    let me = lock(&shared.identity).clone();
    let view = lock(&shared.view).clone();
    let n = shared.counter.fetch_add(1, Ordering::Relaxed);
    let tag = format!("tag-{}-auto-{n}", shared.name);
    let links = view.links();
    let respond = |code: u16, contact: Option<Peer>| {
        let mut r = build::response(m, code, build::reason_phrase(code), req.from, &tag);
        if let Some(c) = contact {
            r.push_contact(build::peer_uri(&c), None);
        }
        r.make_p2p(&me);
        r.push_links(&links);
        r
    };
    match (m.method(), Class::of_request(m)) {
        (Some(Method::Options), _) if auto.options => Some(respond(200, None)),
        (Some(Method::Register), Class::Query) if auto.queries => {
            let key = m.to()?.addr.uri.peer_id()?;
            let (code, contact) = answer_query(&me.peer, &view, &key);
            Some(respond(code, contact))
        }
        (Some(Method::Register), Class::Notify) if auto.notifies => Some(respond(200, None)),
        (Some(Method::Register), Class::Leave) if auto.leaves => Some(respond(200, None)),
        (
            Some(Method::Register),
            c @ (Class::ResourceRegister | Class::Transfer | Class::Lookup),
        ) if auto.store => {
            let key = store::key_of_request(m)?;
            let (code, next) = answer_query(&me.peer, &view, &key);
            if code == 302 && c != Class::Transfer {
                return Some(respond(302, next));
            }
            let now = Instant::now();
            let mut st = lock(&shared.store);
            if c != Class::Lookup {
                st.apply(key, m, req.from, now);
            }
            let live = st.get(&key, now).map(|h| h.live(now)).unwrap_or_default();
            drop(st);
            let code = if c == Class::Lookup && live.is_empty() {
                404
            } else {
                200
            };
            let mut r = build::response(m, code, build::reason_phrase(code), req.from, &tag);
            for (u, secs) in live {
                r.push_contact(u, Some(secs));
            }
            r.make_p2p(&me);
            r.push_links(&links);
            Some(r)
        }
        _ => None,
    }
}

/// QUERY-2/QUERY-3 from a puppet's view: responsible → 200 (own ID) or
/// 404; otherwise 302 to the closest known peer in (me, key], else S1.
pub fn answer_query(me: &Peer, view: &View, key: &Id) -> (u16, Option<Peer>) {
    let responsible = match &view.pred {
        None => true,
        Some(p) => key.in_open_closed(&p.id, &me.id),
    };
    if responsible {
        return (if *key == me.id { 200 } else { 404 }, None);
    }
    let known: Vec<Peer> = view.pred.iter().chain(view.succ.iter()).copied().collect();
    let ids: Vec<Id> = known.iter().map(|p| p.id).collect();
    let next = closest_preceding(&me.id, key, &ids)
        .and_then(|id| known.iter().find(|p| p.id == id).copied())
        .or_else(|| view.succ.first().copied());
    match next {
        Some(p) => (302, Some(p)),
        None => (404, None),
    }
}

/// The top Via branch of raw bytes, when they parse far enough.
pub fn branch_of(bytes: &[u8]) -> Option<String> {
    let opts = ParseOptions {
        max_size: usize::MAX,
        ..ParseOptions::lenient().without_peer_id_check()
    };
    let p = parse(bytes, opts).ok()?;
    p.message
        .top_via()
        .and_then(|v| v.branch.as_ref())
        .map(|b| b.to_string())
}

fn is_request_bytes(bytes: &[u8]) -> bool {
    !bytes.starts_with(b"SIP/") && !bytes.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> Id {
        let mut x = [0u8; 20];
        x[0] = b;
        Id(x)
    }

    fn peer(b: u8) -> Peer {
        Peer {
            id: id(b),
            addr: SocketAddr::from(([127, 9, 9, b], 5000)),
        }
    }

    #[test]
    fn puppet_answers_queries_from_its_view() {
        let me = peer(50);
        let alone = View::default();
        assert_eq!(answer_query(&me, &alone, &id(50)), (200, None));
        assert_eq!(answer_query(&me, &alone, &id(10)), (404, None));
        let view = View {
            pred: Some(peer(40)),
            succ: vec![peer(60), peer(70)],
            link_expires: 30,
        };
        assert_eq!(answer_query(&me, &view, &id(45)), (404, None));
        assert_eq!(answer_query(&me, &view, &id(65)), (302, Some(peer(60))));
        assert_eq!(answer_query(&me, &view, &id(75)), (302, Some(peer(70))));
        assert_eq!(answer_query(&me, &view, &id(55)), (302, Some(peer(60))));
    }

    #[tokio::test]
    async fn puppets_talk_and_record() {
        let rec = Recorder::new();
        let a = Puppet::bind_in("a", None, "chat", 30, rec.clone())
            .await
            .unwrap();
        let b = Puppet::bind_in("b", None, "chat", 30, rec.clone())
            .await
            .unwrap();
        b.set_auto(Auto::PEER);
        let txn = a.txn();
        let opt = build::options(
            Some(&a.identity()),
            b.addr(),
            &txn,
            build::peer_uri(&a.peer()),
        );
        a.send_msg(b.addr(), Transport::Udp, &opt).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let got = a
            .inbox()
            .wait(&Matcher::response_to(&txn.branch, &[200]), deadline)
            .await
            .expect("200 from the auto-answering puppet");
        assert_eq!(got.from, b.addr());
        assert!(b.inbox().all().iter().any(|r| r.auto_answered));
        // a sent, b received, b answered, a received.
        assert_eq!(rec.packets().len(), 4);
    }
}
