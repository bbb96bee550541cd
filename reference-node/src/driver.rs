/*!
Runs [`Node`] cores on tokio sockets: one UDP socket and one TCP listener
per node, on the same address.

The loop of a node (quinn's `ConnectionDriver` shape): drain every output
of the core, re-arm the one sleep to the core's next deadline, then wait
for whichever comes first: a datagram, a framed TCP message, a new TCP
connection, the deadline, or the shutdown signal (which becomes a graceful
leave, LEAVE-1).

TCP (WIRE-9): each connection has a reader task that frames the stream by
Content-Length with [`Framer`] (several messages per segment, one message
over many) and answers CRLF CRLF keep-alives with CRLF, and a writer task
fed by a bounded queue. A message over the size limit (WIRE-8) is handed
to the core as [`Input::TooLarge`] (it answers 513) and the connection is
closed; nothing larger than the limit is buffered. UDP sockets are never
connected: a connected UDP socket would report an earlier ICMP
unreachable as an error on the next receive.
*/

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use p2psip_wire::{Frame, Framer, Id, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::core::{Config, Event, Input, Node, Output, Time};

/// TCP connections a node keeps at most.
const MAX_CONNECTIONS: usize = 256;
/// Messages queued from all readers to a node, and to one writer.
const QUEUE: usize = 256;

/// A node's sockets, bound.
pub struct Bound {
    udp: UdpSocket,
    tcp: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    /// The address both sockets are bound to (the picked port for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds UDP and TCP on `listen`; with port 0, on a port free for both.
pub async fn bind(listen: SocketAddr) -> io::Result<Bound> {
    let mut last_err = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind(listen).await?;
        let addr = udp.local_addr()?;
        match TcpListener::bind(addr).await {
            Ok(tcp) => return Ok(Bound { udp, tcp, addr }),
            Err(e) if listen.port() == 0 => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
}

/// A running node.
pub struct Running {
    pub addr: SocketAddr,
    pub id: Id,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the core on the bound sockets. `cfg.local` is set to the bound
/// address. The task ends when the node has left (after `shutdown` turned
/// true) or when its sockets fail.
pub fn spawn(
    bound: Bound,
    mut cfg: Config,
    shutdown: watch::Receiver<bool>,
) -> Result<Running, crate::ConfigError> {
    cfg.local = bound.addr;
    let epoch = Instant::now();
    let addr = bound.addr;
    let span = tracing::info_span!("node", %addr);
    let node = span.in_scope(|| Node::new(cfg, Time::ZERO))?;
    let me = node.me();
    let task = tokio::spawn(run(node, bound, shutdown, epoch).instrument(span));
    Ok(Running {
        addr,
        id: me.id,
        task,
    })
}

enum FromConn {
    Message(SocketAddr, Vec<u8>),
    TooLarge(SocketAddr, Vec<u8>),
    Closed(SocketAddr),
}

async fn run(mut node: Node, bound: Bound, mut shutdown: watch::Receiver<bool>, epoch: Instant) {
    let Bound { udp, tcp, addr } = bound;
    let udp = Arc::new(udp);
    let max = node.config().max_message;
    let (conn_tx, mut conn_rx) = mpsc::channel::<FromConn>(QUEUE);
    let mut conns: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    let now = |epoch: Instant| Time::from_duration(epoch.elapsed());
    let far = Duration::from_secs(86_400);
    let sleep = tokio::time::sleep(far);
    tokio::pin!(sleep);
    let mut leaving = *shutdown.borrow();
    if leaving {
        node.handle_input(now(epoch), Input::Command(crate::Command::Leave));
    }
    tracing::info!(%addr, me = %node.me(), "node started");
    loop {
        // Drain everything the core wants done.
        while let Some(out) = node.poll_output() {
            match out {
                Output::Transmit(t) => match t.transport {
                    Transport::Udp => {
                        if let Err(e) = udp.send_to(&t.bytes, t.to).await {
                            tracing::debug!(to = %t.to, error = %e, "UDP send failed");
                        }
                    }
                    Transport::Tcp => match conns.get(&t.to) {
                        Some(w) => {
                            if w.try_send(t.bytes).is_err() {
                                tracing::debug!(to = %t.to, "TCP queue full or closed: dropped");
                            }
                        }
                        None => tracing::debug!(to = %t.to, "no TCP connection to answer on"),
                    },
                },
                Output::Event(e) => log_event(&e),
            }
        }
        if node.is_stopped() {
            tracing::info!("node stopped");
            return;
        }
        // One sleep, re-armed to the core's next deadline.
        let deadline = node
            .poll_timeout()
            .map_or(Instant::now() + far, |t| epoch + t.as_duration());
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        tokio::select! {
            r = udp.recv_from(&mut buf) => match r {
                Ok((n, from)) if n > max => {
                    // WIRE-8 over UDP: dropped, never buffered further.
                    tracing::debug!(%from, len = n, "datagram over the size limit dropped");
                }
                Ok((n, from)) => node.handle_input(now(epoch), Input::Receive { from, transport: Transport::Udp, bytes: &buf[..n] }),
                // An unconnected socket can still see ICMP errors on some
                // systems; they say nothing about the next datagram.
                Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => {}
                Err(e) => {
                    tracing::error!(error = %e, "UDP receive failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(m) = conn_rx.recv() => match m {
                FromConn::Message(from, bytes) => node.handle_input(now(epoch), Input::Receive { from, transport: Transport::Tcp, bytes: &bytes }),
                FromConn::TooLarge(from, head) => node.handle_input(now(epoch), Input::TooLarge { from, transport: Transport::Tcp, head: &head }),
                FromConn::Closed(from) => { conns.remove(&from); }
            },
            r = tcp.accept() => match r {
                Ok((stream, from)) if conns.len() < MAX_CONNECTIONS => {
                    let _ = stream.set_nodelay(true);
                    let (rd, wr) = stream.into_split();
                    let (wtx, wrx) = mpsc::channel(QUEUE);
                    conns.insert(from, wtx.clone());
                    tokio::spawn(write_conn(wr, wrx).in_current_span());
                    tokio::spawn(read_conn(rd, from, conn_tx.clone(), wtx, max).in_current_span());
                    tracing::debug!(%from, "TCP connection accepted");
                }
                Ok((_, from)) => tracing::warn!(%from, "too many TCP connections: refused"),
                Err(e) => tracing::debug!(error = %e, "TCP accept failed"),
            },
            () = &mut sleep => node.handle_input(now(epoch), Input::Timeout),
            r = shutdown.changed(), if !leaving => {
                if r.is_err() || *shutdown.borrow() {
                    leaving = true;
                    tracing::info!("shutdown: leaving the overlay");
                    node.handle_input(now(epoch), Input::Command(crate::Command::Leave));
                }
            }
        }
    }
}

/// Frames one TCP stream (WIRE-9) and feeds the node.
async fn read_conn(
    mut rd: OwnedReadHalf,
    from: SocketAddr,
    to_node: mpsc::Sender<FromConn>,
    writer: mpsc::Sender<Vec<u8>>,
    max: usize,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut framer = Framer::new(max);
    let mut chunk = vec![0u8; 16 * 1024];
    'conn: loop {
        loop {
            match framer.next_frame(&buf) {
                Frame::NeedMore => break,
                Frame::Ping { len } => {
                    buf.drain(..len);
                    // RFC 5626 §3.5.1: a CRLF CRLF ping gets a CRLF pong.
                    if writer.send(b"\r\n".to_vec()).await.is_err() {
                        break 'conn;
                    }
                }
                Frame::Pong { len } => {
                    buf.drain(..len);
                }
                Frame::Message { len, .. } => {
                    let msg: Vec<u8> = buf.drain(..len).collect();
                    if to_node.send(FromConn::Message(from, msg)).await.is_err() {
                        break 'conn;
                    }
                }
                Frame::TooLarge { .. } => {
                    buf.truncate(max);
                    let _ = to_node.send(FromConn::TooLarge(from, buf)).await;
                    break 'conn;
                }
                Frame::BadContentLength { .. } => {
                    // The parser names the problem in a 400 (WIRE-7); the
                    // stream cannot be framed after it.
                    let _ = to_node
                        .send(FromConn::Message(from, std::mem::take(&mut buf)))
                        .await;
                    break 'conn;
                }
            }
        }
        // Never buffer more than the limit (WIRE-8): read only what keeps
        // the buffer within limit + 1, which the framer then refuses.
        let room = (max + 1).saturating_sub(buf.len()).clamp(1, chunk.len());
        match rd.read(&mut chunk[..room]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    drop(writer);
    let _ = to_node.send(FromConn::Closed(from)).await;
}

async fn write_conn(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(bytes) = rx.recv().await {
        if wr.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}

fn log_event(e: &Event) {
    match e {
        Event::Joined { me, by } => {
            tracing::info!(me = %me, by = ?by.map(|p| p.to_string()), "joined")
        }
        Event::JoinFailed { reason } => tracing::warn!(reason, "join failed"),
        Event::AddressChanged { old, new } => {
            tracing::info!(old = %old, new = %new, "address changed")
        }
        Event::Left => tracing::info!("left"),
        // Predecessor and successor changes are logged by the core itself.
        Event::PredecessorChanged { .. } | Event::SuccessorChanged { .. } => {}
        other => tracing::info!(event = ?other, "event"),
    }
}
