//! Link-layer headers: from a captured frame to the IPv4 or IPv6 packet it
//! carries.
//!
//! Supported: Ethernet (with any stack of 802.1Q / 802.1ad / QinQ tags),
//! Linux cooked capture v1 (SLL) and v2 (SLL2), raw IP (101, 228, 229),
//! BSD loopback (NULL, host byte order, either) and OpenBSD LOOP (network
//! byte order).

use std::fmt;

use etherparse::{Ethernet2HeaderSlice, SingleVlanHeaderSlice};

/// A pcap/pcapng link-layer header type (LINKTYPE_* value).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub u32);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    pub const RAW: LinkType = LinkType(101);
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const IPV4: LinkType = LinkType(228);
    pub const IPV6: LinkType = LinkType(229);
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// Whether [`decode`] understands this link type.
    pub fn is_supported(self) -> bool {
        matches!(self.0, 0 | 1 | 101 | 108 | 113 | 228 | 229 | 276)
    }

    fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "NULL",
            1 => "ETHERNET",
            101 => "RAW",
            108 => "LOOP",
            113 => "LINUX_SLL",
            228 => "IPV4",
            229 => "IPV6",
            276 => "LINUX_SLL2",
            _ => return None,
        })
    }
}

impl fmt::Debug for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}({})", self.0),
            None => write!(f, "LinkType({})", self.0),
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network<'a> {
    Ipv4(&'a [u8]),
    Ipv6(&'a [u8]),
    /// Not IP (ARP, LLC, ...): nothing to report.
    NotIp,
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    Unsupported,
    Truncated(&'static str),
    Bad(&'static str),
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
/// More stacked tags than this is not a frame anyone sends.
const MAX_VLAN_TAGS: usize = 8;

/// The network packet inside a frame of link type `link`.
pub fn decode(link: LinkType, frame: &[u8]) -> Result<Network<'_>, LinkError> {
    match link.0 {
        1 => ethernet(frame),
        101 => raw_ip(frame),
        228 => Ok(Network::Ipv4(frame)),
        229 => Ok(Network::Ipv6(frame)),
        113 => {
            // packet type, ARPHRD, address length, 8 address bytes, protocol.
            let rest = frame.get(16..).ok_or(LinkError::Truncated("SLL header"))?;
            ethertype(u16::from_be_bytes([frame[14], frame[15]]), rest)
        }
        276 => {
            // protocol, reserved, ifindex, ARPHRD, packet type, address
            // length, 8 address bytes.
            let rest = frame.get(20..).ok_or(LinkError::Truncated("SLL2 header"))?;
            ethertype(u16::from_be_bytes([frame[0], frame[1]]), rest)
        }
        0 => {
            let head: [u8; 4] = frame
                .get(..4)
                .and_then(|h| h.try_into().ok())
                .ok_or(LinkError::Truncated("loopback header"))?;
            // Host byte order of the capturing machine: families are small
            // numbers, so a value with high bits set is the other order.
            let le = u32::from_le_bytes(head);
            let family = if le <= 0xFFFF {
                le
            } else {
                u32::from_be_bytes(head)
            };
            bsd_family(family, &frame[4..])
        }
        108 => {
            let head: [u8; 4] = frame
                .get(..4)
                .and_then(|h| h.try_into().ok())
                .ok_or(LinkError::Truncated("loopback header"))?;
            bsd_family(u32::from_be_bytes(head), &frame[4..])
        }
        _ => Err(LinkError::Unsupported),
    }
}

fn ethernet(frame: &[u8]) -> Result<Network<'_>, LinkError> {
    let eth = Ethernet2HeaderSlice::from_slice(frame)
        .map_err(|_| LinkError::Truncated("Ethernet header"))?;
    let mut ether_type = eth.ether_type().0;
    let mut rest = &frame[eth.slice().len()..];
    let mut tags = 0;
    while matches!(
        ether_type,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        tags += 1;
        if tags > MAX_VLAN_TAGS {
            return Err(LinkError::Bad("too many VLAN tags"));
        }
        let vlan = SingleVlanHeaderSlice::from_slice(rest)
            .map_err(|_| LinkError::Truncated("VLAN tag"))?;
        ether_type = vlan.ether_type().0;
        rest = &rest[vlan.slice().len()..];
    }
    ethertype(ether_type, rest)
}

fn ethertype(ether_type: u16, rest: &[u8]) -> Result<Network<'_>, LinkError> {
    Ok(match ether_type {
        ETHERTYPE_IPV4 => Network::Ipv4(rest),
        ETHERTYPE_IPV6 => Network::Ipv6(rest),
        // Cooked captures may carry VLAN tags too.
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
            let vlan = SingleVlanHeaderSlice::from_slice(rest)
                .map_err(|_| LinkError::Truncated("VLAN tag"))?;
            match vlan.ether_type().0 {
                ETHERTYPE_IPV4 => Network::Ipv4(&rest[vlan.slice().len()..]),
                ETHERTYPE_IPV6 => Network::Ipv6(&rest[vlan.slice().len()..]),
                _ => Network::NotIp,
            }
        }
        _ => Network::NotIp,
    })
}

fn raw_ip(frame: &[u8]) -> Result<Network<'_>, LinkError> {
    match frame.first().map(|b| b >> 4) {
        Some(4) => Ok(Network::Ipv4(frame)),
        Some(6) => Ok(Network::Ipv6(frame)),
        Some(_) => Err(LinkError::Bad("raw IP packet of unknown version")),
        None => Err(LinkError::Truncated("raw IP packet")),
    }
}

/// BSD address families: AF_INET is 2 everywhere; AF_INET6 is 24
/// (NetBSD, OpenBSD, BSD/OS), 28 (FreeBSD, DragonFly), 30 (Darwin) or 10
/// (Linux).
fn bsd_family(family: u32, rest: &[u8]) -> Result<Network<'_>, LinkError> {
    Ok(match family {
        2 => Network::Ipv4(rest),
        10 | 24 | 28 | 30 => Network::Ipv6(rest),
        _ => Network::NotIp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_loopback_either_byte_order() {
        let le = [2, 0, 0, 0, 0x45];
        let be = [0, 0, 0, 2, 0x45];
        assert_eq!(decode(LinkType::NULL, &le), Ok(Network::Ipv4(&[0x45])));
        assert_eq!(decode(LinkType::NULL, &be), Ok(Network::Ipv4(&[0x45])));
        assert_eq!(
            decode(LinkType::NULL, &[30, 0, 0, 0]),
            Ok(Network::Ipv6(&[]))
        );
        assert_eq!(
            decode(LinkType::LOOP, &[0, 0, 0, 24, 1]),
            Ok(Network::Ipv6(&[1]))
        );
        assert_eq!(
            decode(LinkType::LOOP, &[0, 0, 0]),
            Err(LinkError::Truncated("loopback header"))
        );
    }

    #[test]
    fn ethernet_with_stacked_tags() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x88, 0xA8, 0, 10, 0x81, 0x00, 0, 20, 0x86, 0xDD, 0x60]);
        assert_eq!(decode(LinkType::ETHERNET, &f), Ok(Network::Ipv6(&[0x60])));
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 1, 2]);
        assert_eq!(decode(LinkType::ETHERNET, &arp), Ok(Network::NotIp));
        assert!(matches!(
            decode(LinkType::ETHERNET, &f[..15]),
            Err(LinkError::Truncated(_))
        ));
    }

    #[test]
    fn many_tags_are_refused() {
        let mut f = vec![0u8; 12];
        for _ in 0..(MAX_VLAN_TAGS + 1) {
            f.extend_from_slice(&[0x81, 0x00, 0, 1]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        assert_eq!(
            decode(LinkType::ETHERNET, &f),
            Err(LinkError::Bad("too many VLAN tags"))
        );
    }

    #[test]
    fn raw_and_unsupported() {
        assert_eq!(
            decode(LinkType::RAW, &[0x45, 0]),
            Ok(Network::Ipv4(&[0x45, 0]))
        );
        assert!(matches!(
            decode(LinkType::RAW, &[0x15]),
            Err(LinkError::Bad(_))
        ));
        assert_eq!(decode(LinkType(147), &[1]), Err(LinkError::Unsupported));
    }
}
