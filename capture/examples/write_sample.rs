//! Writes a small sample capture of SIP over UDP and TCP, on the standard
//! port and on others, to check how tools dissect `PcapWriter` output:
//!
//! ```text
//! cargo run -p p2psip-capture --example write_sample -- /tmp/sample.pcap
//! tshark -r /tmp/sample.pcap
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddr;

use p2psip_capture::{PcapWriter, Timestamp};

fn message(method: &str, n: usize, body: usize) -> Vec<u8> {
    let mut m = format!(
        "{method} sip:peer{n}@example.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK{n}\r\n\
         From: <sip:a@example.test>;tag=1\r\nTo: <sip:b@example.test>\r\nCall-ID: {n}@example.test\r\n\
         CSeq: {n} {method}\r\nMax-Forwards: 70\r\nContent-Length: {body}\r\n\r\n"
    )
    .into_bytes();
    m.resize(m.len() + body, b'x');
    m
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sample.pcap".to_string());
    let addr = |s: &str| s.parse::<SocketAddr>();
    let mut w = PcapWriter::new(BufWriter::new(File::create(&path)?))?;
    let t = |ms: i64| Timestamp::from_nanos(1_700_000_000_000_000_000 + ms * 1_000_000);
    let (a, b) = (addr("192.0.2.1:5060")?, addr("192.0.2.2:5060")?);
    let (c, d) = (addr("192.0.2.1:40000")?, addr("192.0.2.2:7000")?);
    let (e, f) = (addr("[2001:db8::1]:5060")?, addr("[2001:db8::2]:5060")?);
    w.write_udp(t(0), a, b, &message("OPTIONS", 1, 0))?;
    w.write_udp(t(1), c, d, &message("REGISTER", 2, 0))?;
    w.write_udp(t(2), e, f, &message("OPTIONS", 3, 0))?;
    w.write_tcp_handshake(t(3), a, b)?;
    w.write_tcp(t(4), a, b, &message("INVITE", 4, 100))?;
    w.write_tcp_handshake(t(5), c, d)?;
    w.write_tcp(t(6), c, d, &message("MESSAGE", 5, 100_000))?;
    w.write_udp(t(7), b, a, &message("NOTIFY", 6, 65_100))?;
    w.write_tcp_fin(t(8), a, b)?;
    w.into_inner()?;
    println!("wrote {path}");
    Ok(())
}
