//! WIRE-6: what RFC 3261 allows a sender to vary (folding, name case,
//! compact forms, white space around separators, comma lists) reads the
//! same as the canonical form, in strict mode too; the lenient-only
//! variants are warnings in lenient mode and errors in strict mode.

use p2psip_wire::{Deviation, ErrorKind, ParseOptions, parse, print};

const ID: &str = "6c7c752f7592a104b9ba5e48ec077a01385b13c4"; // ID-2 of 10.4.1.2:5060

fn s1_id() -> String {
    p2psip_wire::peer_id("10.4.1.3".parse().unwrap(), 5061).to_string()
}

fn canonical() -> String {
    let s1 = s1_id();
    format!(
        "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.4.1.9:5060;branch=z9hG4bKabc;rport=5060;received=10.4.1.9\r\n\
To: <sip:peer@10.4.1.9:5060;peer-ID={j}>;tag=t1\r\n\
From: <sip:peer@10.4.1.9:5060;peer-ID={j}>;tag=f1\r\n\
Call-ID: c1@10.4.1.9\r\n\
CSeq: 7 REGISTER\r\n\
Contact: <sip:peer@10.4.1.9:5060;peer-ID={j}>;expires=600\r\n\
Supported: dht\r\n\
DHT-PeerID: <sip:peer@10.4.1.2:5060;peer-ID={ID}>;algorithm=sha1;dht=Chord1.0;overlay=chat;expires=600\r\n\
DHT-Link: <sip:peer@10.4.1.3:5061;peer-ID={s1}>;link=S1;expires=600\r\n\
DHT-Link: <sip:peer@10.4.1.2:5060;peer-ID={ID}>;link=P1;expires=600\r\n\
Content-Length: 0\r\n\r\n",
        j = p2psip_wire::peer_id("10.4.1.9".parse().unwrap(), 5060)
    )
}

fn same_as_canonical(variant: &str) {
    let c = canonical();
    let want = parse(c.as_bytes(), ParseOptions::strict()).expect("canonical parses strictly");
    let got = parse(variant.as_bytes(), ParseOptions::strict())
        .unwrap_or_else(|e| panic!("variant refused: {e}\n{variant}"));
    assert_eq!(
        got.message, want.message,
        "variant reads differently:\n{variant}"
    );
    assert_eq!(print(&got.message), c.as_bytes());
}

#[test]
fn canonical_is_a_fixed_point() {
    same_as_canonical(&canonical());
}

#[test]
fn wire_6_folded_lines() {
    let v = canonical()
        .replace("DHT-PeerID: <sip", "DHT-PeerID:\r\n   <sip")
        .replace(";algorithm=sha1;", "\r\n\t;algorithm=sha1;")
        .replace("CSeq: 7 REGISTER", "CSeq: 7\r\n REGISTER");
    same_as_canonical(&v);
}

#[test]
fn wire_6_header_name_case_and_colon_spacing() {
    let v = canonical()
        .replace("Call-ID:", "call-id  :")
        .replace("DHT-PeerID:", "dht-peerid:")
        .replace("DHT-Link:", "DHT-LINK\t:")
        .replace("CSeq:", "CSEQ:");
    same_as_canonical(&v);
}

#[test]
fn wire_6_compact_forms() {
    let v = canonical()
        .replace("Via:", "v:")
        .replace("To:", "t:")
        .replace("From:", "f:")
        .replace("Call-ID:", "i:")
        .replace("Contact:", "m:")
        .replace("Supported:", "k:")
        .replace("Content-Length:", "l:");
    same_as_canonical(&v);
}

#[test]
fn wire_6_white_space_around_separators() {
    let v = canonical()
        .replace(
            ";algorithm=sha1;dht=Chord1.0;",
            " ; algorithm = sha1 ;dht= Chord1.0 ; ",
        )
        .replace(";link=S1;expires=600", " ;link =S1 ; expires= 600")
        .replace(";tag=t1", " ; tag = t1")
        .replace(
            "SIP/2.0/UDP 10.4.1.9:5060",
            "SIP / 2.0 / UDP 10.4.1.9 : 5060",
        );
    same_as_canonical(&v);
}

#[test]
fn wire_6_comma_joined_values() {
    let s1 = s1_id();
    let c = canonical();
    let v = c.replace(
        &format!(
            "DHT-Link: <sip:peer@10.4.1.3:5061;peer-ID={s1}>;link=S1;expires=600\r\nDHT-Link: "
        ),
        &format!("DHT-Link: <sip:peer@10.4.1.3:5061;peer-ID={s1}>;link=S1;expires=600 , "),
    );
    assert_ne!(v, c);
    same_as_canonical(&v);
}

/// Variants a lenient receiver accepts with a warning and strict mode refuses.
fn lenient_only(variant: &str, deviation: Deviation) {
    let lenient = parse(variant.as_bytes(), ParseOptions::lenient())
        .unwrap_or_else(|e| panic!("lenient refused: {e}\n{variant}"));
    assert!(
        lenient.warnings.contains(deviation),
        "{:?}",
        lenient.warnings
    );
    let c = canonical();
    let want = parse(c.as_bytes(), ParseOptions::strict()).unwrap();
    assert_eq!(lenient.message, want.message);
    let err = parse(variant.as_bytes(), ParseOptions::strict()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Deviation(deviation), "{err}");
    assert_eq!(err.requirement(), deviation.requirement());
}

#[test]
fn wire_6_lenient_dht_param_alias() {
    lenient_only(
        &canonical().replace(";dht=Chord1.0", ";dht-param=Chord1.0"),
        Deviation::DhtParamAlias,
    );
}

#[test]
fn wire_6_lenient_upper_hex() {
    lenient_only(
        &canonical().replace(ID, &ID.to_uppercase()),
        Deviation::UpperHexId,
    );
}

#[test]
fn wire_6_lenient_bare_lf() {
    lenient_only(&canonical().replace("\r\n", "\n"), Deviation::BareLf);
}

#[test]
fn wire_3_lenient_short_param() {
    lenient_only(
        &canonical().replace(&format!(";peer-ID={ID}"), &format!(";pID={ID}")),
        Deviation::ShortIdParam,
    );
}

#[test]
fn wire_6_legacy_token_is_a_warning_in_dsip_chord() {
    let v = canonical().replace("dht=Chord1.0", "dht=ChordIter1.0");
    let lenient = parse(v.as_bytes(), ParseOptions::lenient()).unwrap();
    assert!(lenient.warnings.contains(Deviation::LegacyDhtToken));
    assert!(parse(v.as_bytes(), ParseOptions::strict()).is_err());
}

#[test]
fn wire_5_link_rules() {
    let c = canonical();
    let no_exp = c.replacen(";link=S1;expires=600", ";link=S1", 1);
    assert_eq!(
        parse(no_exp.as_bytes(), ParseOptions::strict())
            .unwrap_err()
            .kind,
        ErrorKind::Deviation(Deviation::LinkWithoutExpires)
    );
    let zero = c.replacen(";link=S1;expires=600", ";link=S1;expires=0", 1);
    assert_eq!(
        parse(zero.as_bytes(), ParseOptions::strict())
            .unwrap_err()
            .kind,
        ErrorKind::Deviation(Deviation::LinkExpired)
    );
    let bad = c.replacen("link=S1", "link=Q1", 1);
    let e = parse(bad.as_bytes(), ParseOptions::lenient()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadLinkType);
    assert_eq!(e.requirement(), "WIRE-5");
    assert_eq!(&bad.as_bytes()[e.offset..e.offset + 2], b"Q1");
}

#[test]
fn wire_3_port_and_id_2_consistency() {
    let c = canonical();
    let no_port = c.replacen("<sip:peer@10.4.1.2:5060;", "<sip:peer@10.4.1.2;", 1);
    let e = parse(no_port.as_bytes(), ParseOptions::strict()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Deviation(Deviation::PeerUriWithoutPort));
    let wrong = c.replacen("<sip:peer@10.4.1.2:5060;", "<sip:peer@10.4.1.2:5062;", 1);
    let e = parse(wrong.as_bytes(), ParseOptions::strict()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Deviation(Deviation::PeerIdNotOfAddress));
    assert_eq!(e.requirement(), "ID-2");
    assert!(parse(wrong.as_bytes(), ParseOptions::lenient()).is_ok());
}

#[test]
fn wire_1_mandatory_headers() {
    let c = canonical();
    for (name, line_start) in [
        ("Call-ID", "Call-ID:"),
        ("CSeq", "CSeq:"),
        ("From", "From:"),
        ("To", "To:"),
        ("Via", "Via:"),
    ] {
        let v: String = c
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with(line_start))
            .collect();
        let e = parse(v.as_bytes(), ParseOptions::lenient()).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Deviation(Deviation::MissingMandatoryHeader),
            "{name}"
        );
        assert_eq!(e.requirement(), "WIRE-1");
    }
    let branch = c.replace("branch=z9hG4bKabc", "branch=abc");
    assert!(
        parse(branch.as_bytes(), ParseOptions::lenient())
            .unwrap()
            .warnings
            .contains(Deviation::BranchWithoutCookie)
    );
    assert!(parse(branch.as_bytes(), ParseOptions::strict()).is_err());
}

#[test]
fn wire_4_identity_rules() {
    let c = canonical();
    let two = c.replace("Content-Length: 0", &format!("DHT-PeerID: <sip:peer@10.4.1.2:5060;peer-ID={ID}>;algorithm=sha1;dht=Chord1.0;overlay=chat\r\nContent-Length: 0"));
    assert_eq!(
        parse(two.as_bytes(), ParseOptions::lenient())
            .unwrap_err()
            .kind,
        ErrorKind::Deviation(Deviation::DuplicateDhtPeerId)
    );
    let no_overlay = c.replace(";overlay=chat", "");
    assert_eq!(
        parse(no_overlay.as_bytes(), ParseOptions::lenient())
            .unwrap_err()
            .kind,
        ErrorKind::Deviation(Deviation::DhtPeerIdMissingParam)
    );
    let md5 = c.replace("algorithm=sha1", "algorithm=md5");
    assert!(
        parse(md5.as_bytes(), ParseOptions::lenient())
            .unwrap()
            .warnings
            .contains(Deviation::UnknownDhtOrAlgorithm)
    );
}

#[test]
fn body_and_content_length() {
    let msg = "MESSAGE sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK9;rport\r\nMax-Forwards: 70\r\nTo: <sip:bob@example.org>\r\nFrom: <sip:alice@example.org>;tag=a\r\nCall-ID: m1\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello and more";
    let p = parse(msg.as_bytes(), ParseOptions::strict()).unwrap();
    assert_eq!(&*p.message.body, b"hello");
    assert_eq!(p.len, msg.len() - " and more".len());
    let short = msg.replace("Content-Length: 5", "Content-Length: 50");
    assert_eq!(
        parse(short.as_bytes(), ParseOptions::lenient())
            .unwrap_err()
            .kind,
        ErrorKind::BodyTruncated
    );
}

#[test]
fn not_sip() {
    let mut stun = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    let e = parse(&stun, ParseOptions::lenient()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Stun);
    assert_eq!(e.requirement(), "WIRE-7");
    assert_eq!(
        parse(&[0xff, 0xfe, 0x00], ParseOptions::lenient())
            .unwrap_err()
            .kind,
        ErrorKind::NotSip
    );
}

/// A fold or a bare LF on any one line, the lines before it plain and the
/// lines after it too: the same message, and a bare LF is reported where
/// it is.
#[test]
fn wire_6_one_folded_or_bare_line_anywhere() {
    let c = canonical();
    let want = parse(c.as_bytes(), ParseOptions::strict()).unwrap();
    let line_ends: Vec<usize> = c.match_indices("\r\n").map(|(i, _)| i).collect();
    // Every line end but the empty line's.
    for &at in &line_ends[..line_ends.len() - 1] {
        let bare = format!("{}\n{}", &c[..at], &c[at + 2..]);
        let got = parse(bare.as_bytes(), ParseOptions::lenient())
            .unwrap_or_else(|e| panic!("{e}\n{bare}"));
        assert_eq!(got.message, want.message, "{bare}");
        let offsets: Vec<(Deviation, usize)> = got.warnings.iter().collect();
        assert_eq!(offsets, [(Deviation::BareLf, at)], "{bare}");
    }
    // A fold before the last parameter of each header line (the start
    // line cannot be folded).
    for (k, &at) in line_ends[1..line_ends.len() - 1].iter().enumerate() {
        let line_start = line_ends[k] + 2;
        let Some(semi) = c[line_start..at].rfind(';') else {
            continue;
        };
        let semi = line_start + semi;
        let folded = format!("{}\r\n {}", &c[..semi], &c[semi..]);
        same_as_canonical(&folded);
    }
}
