//! A small, fixed run used by the renderer tests and snapshots.

#![allow(dead_code)]

use p2psip_reports::*;

pub fn harness() -> HarnessInfo {
    HarnessInfo {
        name: "p2psip".into(),
        version: "0.1.0".into(),
        suites_digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        profile_digest: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae".into(),
    }
}

pub fn iut() -> IutInfo {
    IutInfo {
        name: "chordd".into(),
        version: Some("2.1.0".into()),
        command: Some(vec!["chordd".into(), "--port".into(), "5060".into()]),
        address: None,
    }
}

const REGISTER: &str = "REGISTER sip:10.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-1\r\n\
To: <sip:peer-ID@overlay>\r\n\
From: <sip:peer-ID@overlay>;tag=1\r\n\
DHT-PeerID: <sip:peer-ID@10.0.0.2;algorithm=sha1>;overlay=chord;expires=600\r\n\
Content-Length: 0\r\n\r\n";

const REDIRECT: &str = "SIP/2.0 302 Moved Temporarily\r\n\
Contact: <sip:S1@10.0.0.9:5060>\r\n\
Content-Length: 0\r\n\r\n";

fn join_ladder() -> Vec<LadderEntry> {
    vec![
        LadderEntry::new(
            0.25,
            "10.0.0.2:5060",
            "10.0.0.1:5060",
            Transport::Udp,
            "REGISTER (join)",
        )
        .labels("puppet-a", "iut-1")
        .raw_bytes(REGISTER),
        LadderEntry::new(
            1.5,
            "10.0.0.1:5060",
            "10.0.0.2:5060",
            Transport::Udp,
            "302 Moved Temporarily -> S1",
        )
        .labels("iut-1", "puppet-a")
        .raw_bytes(REDIRECT),
        LadderEntry::new(
            2.0,
            "10.0.0.2:5060",
            "10.0.0.3:5060",
            Transport::Tcp,
            "framed keepalive",
        )
        .labels("puppet-a", "puppet-b")
        .raw_bytes(vec![0x00, 0x01, 0xfe, 0xff]),
    ]
}

fn case(id: &str, title: &str, level: Level, reqs: &[&str]) -> CaseRun {
    let suite = id.split('.').next().unwrap_or(id);
    CaseRun::new(id, suite, title, level).requirements(reqs.iter().copied())
}

/// The fixed run: one case of every kind.
pub fn run_input() -> RunInput {
    let mut run = RunInput::new(harness(), iut(), "dsip-chord/1", 1234);
    run.started = Timestamp::from_unix_millis(1_735_787_045_678).expect("valid time");
    run.duration_ms = 4321;
    run.run.repeat = 1;
    run.requirements = vec![
        RequirementDef {
            id: "JOIN-1".into(),
            level: Level::Must,
            title: Some("A peer joins by REGISTER to the admitting peer".into()),
        },
        RequirementDef::new("JOIN-3", Level::Must),
        RequirementDef::new("JOIN-4", Level::Must),
        RequirementDef::new("QUERY-2", Level::Must),
        RequirementDef::new("FING-2", Level::Should),
        RequirementDef::new("NAT-1", Level::May),
        RequirementDef::new("NAT-2", Level::May),
        RequirementDef::new("LEAVE-1", Level::Must),
        RequirementDef::new("STAB-9", Level::Must),
    ];
    let evidence = Evidence {
        ladder: join_ladder(),
        pcap: Some("pcap/join.admit-redirects-toward-key.pcap".into()),
        logs: vec![LogBlock {
            instance: "iut-1".into(),
            lines: vec![
                "INFO join request from peer-ID".into(),
                "DEBUG redirecting to <sip:S1@10.0.0.9:5060>".into(),
            ],
        }],
        failure: Some(Failure {
            requirement: "JOIN-4".into(),
            expected: "302 Contact is the closest preceding finger of peer-ID (S7)".into(),
            actual: "302 Contact is S1".into(),
            at_ms: Some(1.5),
        }),
        notes: vec!["finger table of iut-1 was seeded with S1..S8".into()],
    };
    run.cases = vec![
        case(
            "join.accepts-register",
            "Bootstrap peer accepts REGISTER",
            Level::Must,
            &["JOIN-1"],
        )
        .attempt(Attempt::pass("200 OK with the peer list").duration_ms(12)),
        case(
            "join.admit-redirects-toward-key",
            "Admitting peer redirects toward the joining key",
            Level::Must,
            &["JOIN-3", "QUERY-2", "JOIN-4"],
        )
        .attempt(
            Attempt::fail(
                "redirected to S1 instead of the closest preceding finger\nsee ladder at 1.5 ms",
            )
            .duration_ms(30)
            .evidence(evidence),
        ),
        case(
            "fingers.refresh-period",
            "Fingers are refreshed",
            Level::Should,
            &["FING-2"],
        )
        .attempt(Attempt::fail("no finger refresh within 30 s").duration_ms(30_000)),
        case(
            "nat.stun-keepalive",
            "STUN keepalives are sent",
            Level::May,
            &["NAT-1"],
        )
        .attempt(Attempt::pass("keepalive seen").duration_ms(5)),
        case(
            "nat.relay",
            "Relays media for NATed peers",
            Level::May,
            &["NAT-2"],
        )
        .attempt(Attempt::fail("no relay offered").duration_ms(7)),
        case(
            "leave.graceful",
            "Leaving peer transfers its keys",
            Level::Must,
            &["LEAVE-1"],
        )
        .attempt(Attempt::skip("profile does not include graceful leave")),
        case(
            "stab.successor-list",
            "Successor list is repaired",
            Level::Must,
            &["STAB-9"],
        )
        .attempt(Attempt::pass("repaired").duration_ms(9))
        .attempt(Attempt::fail("successor list still lists dead S2").duration_ms(9))
        .attempt(Attempt::pass("repaired").duration_ms(9)),
        case(
            "query.unknown-key",
            "Query for an unknown key gets 404",
            Level::Must,
            &["QUERY-2"],
        )
        .attempt(Attempt::error("IUT closed the TCP connection during setup")),
        case(
            "join.old-bug",
            "Join with expired credentials is refused",
            Level::Must,
            &["JOIN-1"],
        )
        .attempt(Attempt::pass("403 as required").duration_ms(4)),
        case(
            "join.known-bug",
            "Join retransmits REGISTER",
            Level::Must,
            &["JOIN-3"],
        )
        .attempt(Attempt::fail("no retransmission after 500 ms").duration_ms(600)),
    ];
    run.known_case_ids = Some(
        run.cases
            .iter()
            .map(|c| c.id.clone())
            .chain(["route.not-selected".to_string()])
            .collect(),
    );
    run.run.expectations = Some("ci/expect.toml".into());
    run
}

pub const EXPECTATIONS: &str = r#"
[[expect]]
case = "join.known-bug"
reason = "no REGISTER retransmission, ticket #7"

[[expect]]
case = "join.old-bug"
reason = "used to accept expired credentials, ticket #3"

[[expect]]
case = "route.*"
reason = "routing not implemented"
"#;

pub fn expectations() -> Expectations {
    Expectations::parse(EXPECTATIONS, "ci/expect.toml").expect("fixture expectations parse")
}

/// The graded fixed run.
pub fn report() -> Report {
    grade(run_input(), Some(&expectations()))
}

/// A run whose every text field tries to inject markup.
pub fn hostile_report() -> Report {
    const EVIL: &str = "<script>alert('x')</script>";
    let mut run = RunInput::new(
        harness(),
        IutInfo {
            name: format!("iut {EVIL}"),
            version: Some(EVIL.into()),
            command: Some(vec![EVIL.into()]),
            address: Some(format!("\"><img src=x onerror=alert(1)>{EVIL}")),
        },
        "dsip-chord/1",
        1,
    );
    run.started = Timestamp::from_unix_millis(0).expect("epoch");
    let evidence = Evidence {
        ladder: vec![
            LadderEntry::new(
                1.0,
                format!("a{EVIL}"),
                "b:1",
                Transport::Udp,
                format!("INVITE {EVIL}"),
            )
            .labels(EVIL, "b")
            .raw_bytes(format!(
                "INVITE sip:x SIP/2.0\r\nSubject: {EVIL}\r\n</pre></td></tr></table>{EVIL}\r\n\r\n"
            )),
        ],
        pcap: Some("http://evil.example/x.pcap".into()),
        logs: vec![LogBlock {
            instance: EVIL.into(),
            lines: vec![format!("log {EVIL}")],
        }],
        failure: Some(Failure {
            requirement: EVIL.into(),
            expected: EVIL.into(),
            actual: format!("</dd>{EVIL}"),
            at_ms: None,
        }),
        notes: vec![EVIL.into()],
    };
    run.cases = vec![
        CaseRun::new(format!("evil.{EVIL}"), EVIL, EVIL, Level::Must)
            .requirements([EVIL])
            .attempt(Attempt::fail(format!("detail {EVIL}")).evidence(evidence)),
        CaseRun::new(
            "evil.href\" onmouseover=\"alert(1)",
            "evil",
            "quotes",
            Level::Must,
        )
        .attempt(Attempt::pass("ok")),
    ];
    grade(run, None)
}
