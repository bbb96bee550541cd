//! Property tests: every encodable message round-trips, arbitrary bytes
//! never panic the decoder, and the cheap test agrees with the decoder.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use p2psip_stun::{
    Attribute, ChangeRequest, Class, ErrorCode, Message, Method, TransactionId, decode,
    is_known_type, looks_like_stun, message_len,
};
use proptest::prelude::*;

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
    ]
}

fn class() -> impl Strategy<Value = Class> {
    prop_oneof![
        Just(Class::Request),
        Just(Class::Indication),
        Just(Class::SuccessResponse),
        Just(Class::ErrorResponse),
    ]
}

/// Attributes other than MESSAGE-INTEGRITY, which ends what is decoded.
fn attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        socket_addr().prop_map(Attribute::MappedAddress),
        socket_addr().prop_map(Attribute::XorMappedAddress),
        socket_addr().prop_map(Attribute::ResponseOrigin),
        socket_addr().prop_map(Attribute::OtherAddress),
        (any::<bool>(), any::<bool>()).prop_map(|(change_ip, change_port)| {
            Attribute::ChangeRequest(ChangeRequest {
                change_ip,
                change_port,
            })
        }),
        "\\PC{0,40}".prop_map(Attribute::Software),
        "[a-z:0-9]{0,30}".prop_map(Attribute::Username),
        (300u16..700, "\\PC{0,30}")
            .prop_map(|(code, reason)| Attribute::ErrorCode(ErrorCode::new(code, reason))),
        proptest::collection::vec(any::<u16>(), 0..6).prop_map(Attribute::UnknownAttributes),
        (
            any::<u16>().prop_filter("typed", |t| !is_known_type(*t)),
            proptest::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(attr_type, value)| Attribute::Other { attr_type, value }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        class(),
        0u16..0x1000,
        any::<[u8; 12]>(),
        proptest::collection::vec(attribute(), 0..8),
        proptest::option::of(any::<[u8; 20]>()),
        any::<bool>(),
    )
        .prop_map(|(class, method, tid, attributes, integrity, fingerprint)| {
            let mut m = Message::new(class, Method::new(method).unwrap(), TransactionId::new(tid));
            m.attributes = attributes;
            if let Some(h) = integrity {
                m.attributes.push(Attribute::MessageIntegrity(h));
            }
            m.fingerprint = fingerprint;
            m
        })
}

proptest! {
    #[test]
    fn round_trip(m in message()) {
        let wire = m.encode().unwrap();
        prop_assert!(looks_like_stun(&wire));
        prop_assert_eq!(message_len(&wire), Some(wire.len()));
        prop_assert_eq!(wire.len() % 4, 0);
        prop_assert_eq!(decode(&wire).unwrap(), m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let decoded = decode(&data);
        let cheap = looks_like_stun(&data);
        // Whatever decodes passed the cheap test first.
        if decoded.is_ok() {
            prop_assert!(cheap);
        }
    }

    /// Random bytes behind a valid header reach the attribute parser.
    #[test]
    fn arbitrary_attributes_never_panic(
        tid in any::<[u8; 12]>(),
        body in proptest::collection::vec(any::<u8>(), 0..50).prop_map(|mut b| {
            b.truncate(b.len() / 4 * 4);
            b
        }),
    ) {
        let mut wire = vec![0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        wire[2..4].copy_from_slice(&(body.len() as u16).to_be_bytes());
        wire.extend_from_slice(&tid);
        wire.extend_from_slice(&body);
        prop_assert!(looks_like_stun(&wire));
        let _ = decode(&wire);
    }

    /// A single bit flip in a fingerprinted message is never silently read
    /// as the same message.
    #[test]
    fn bit_flips_are_detected(m in message(), bit in any::<usize>()) {
        let m = Message { fingerprint: true, ..m };
        let mut wire = m.encode().unwrap();
        let bit = bit % (wire.len() * 8);
        wire[bit / 8] ^= 1 << (bit % 8);
        if let Ok(other) = decode(&wire) {
            prop_assert_ne!(other, m);
        }
    }

    /// SIP on the same port is never taken for STUN.
    #[test]
    fn sip_is_not_stun(method in "[A-Z]{3,9}", rest in "\\PC{0,60}") {
        let text = format!("{method} sip:{rest} SIP/2.0\r\n\r\n");
        prop_assert!(!looks_like_stun(text.as_bytes()));
        prop_assert!(decode(text.as_bytes()).is_err());
    }
}

#[test]
fn encode_refuses_what_cannot_be_sent() {
    let tid = TransactionId::new([0; 12]);
    let bad_code = Message::new(Class::ErrorResponse, Method::BINDING, tid)
        .with(Attribute::ErrorCode(ErrorCode::new(200, "OK")));
    assert!(bad_code.encode().is_err());
    let typed_as_raw = Message::binding_request(tid).with(Attribute::Other {
        attr_type: 0x8028,
        value: vec![0; 4],
    });
    assert!(typed_as_raw.encode().is_err());
    let long = Message::binding_request(tid).with(Attribute::Other {
        attr_type: 0x7777,
        value: vec![0; 70_000],
    });
    assert!(long.encode().is_err());
    let too_many = (0..700).fold(Message::binding_request(tid), |m, _| {
        m.with(Attribute::Other {
            attr_type: 0x7777,
            value: vec![0; 96],
        })
    });
    assert!(too_many.encode().is_err());
    let software = Message::binding_request(tid).with(Attribute::Software("x".repeat(128)));
    assert!(software.encode().is_err());
}

#[test]
fn decode_rejects_malformed_headers_and_values() {
    let tid = TransactionId::new([3; 12]);
    let good = Message::binding_request(tid)
        .with(Attribute::XorMappedAddress(
            "10.0.0.1:5060".parse().unwrap(),
        ))
        .encode()
        .unwrap();
    assert!(decode(&good).is_ok());
    assert!(decode(&good[..19]).is_err());
    let mut cookie = good.clone();
    cookie[5] ^= 1;
    assert!(decode(&cookie).is_err());
    let mut long = good.clone();
    long.extend_from_slice(&[0; 4]);
    assert!(decode(&long).is_err());
    // Family 3 is not an address family.
    let mut family = good.clone();
    family[25] = 3;
    assert!(decode(&family).is_err());
    // An attribute claiming more than the message has.
    let mut overrun = good.clone();
    overrun[23] = 0x40;
    assert!(decode(&overrun).is_err());
}
