//! Any text, any bytes, any clock reading: grading and every renderer must
//! succeed, and their output must stay well-formed.

use p2psip_reports::*;
use proptest::prelude::*;

fn verdict() -> impl Strategy<Value = RawVerdict> {
    prop_oneof![
        Just(RawVerdict::Pass),
        Just(RawVerdict::Fail),
        Just(RawVerdict::Skip),
        Just(RawVerdict::Error)
    ]
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![Just(Level::Must), Just(Level::Should), Just(Level::May)]
}

fn time() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        0.0..1e6f64
    ]
}

fn ladder_entry() -> impl Strategy<Value = LadderEntry> {
    (
        time(),
        any::<String>(),
        any::<String>(),
        proptest::option::of(any::<String>()),
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        any::<bool>(),
    )
        .prop_map(|(t, from, to, label, summary, bytes, text)| {
            let mut e = LadderEntry::new(t, from, to, Transport::Tcp, summary);
            e.from_label = label;
            e.raw = Some(if text {
                RawMessage::Text(String::from_utf8_lossy(&bytes).into_owned())
            } else {
                RawMessage::Binary(bytes)
            });
            e
        })
}

fn case_run() -> impl Strategy<Value = CaseRun> {
    (
        any::<String>(),
        any::<String>(),
        any::<String>(),
        level(),
        proptest::collection::vec(any::<String>(), 0..3),
        proptest::collection::vec((verdict(), any::<String>()), 0..4),
        proptest::collection::vec(ladder_entry(), 0..3),
        any::<String>(),
        proptest::option::of(time()),
    )
        .prop_map(
            |(id, suite, title, level, reqs, attempts, ladder, pcap, at)| {
                let mut c = CaseRun::new(id, suite, title.clone(), level).requirements(reqs);
                for (v, detail) in attempts {
                    let evidence = Evidence {
                        ladder: ladder.clone(),
                        pcap: Some(pcap.clone()),
                        logs: vec![LogBlock {
                            instance: title.clone(),
                            lines: vec![detail.clone()],
                        }],
                        failure: Some(Failure {
                            requirement: title.clone(),
                            expected: detail.clone(),
                            actual: pcap.clone(),
                            at_ms: at,
                        }),
                        notes: vec![detail.clone()],
                    };
                    c = c.attempt(Attempt::new(v, detail).evidence(evidence));
                }
                c
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_renderer_survives_any_input(
        cases in proptest::collection::vec(case_run(), 0..4),
        iut in any::<String>(),
        seed in any::<u64>(),
        ms in any::<u64>(),
    ) {
        let harness = HarnessInfo {
            name: iut.clone(),
            version: iut.clone(),
            suites_digest: iut.clone(),
            profile_digest: iut.clone(),
        };
        let mut input = RunInput::new(
            harness,
            IutInfo { name: iut.clone(), ..Default::default() },
            iut.clone(),
            seed,
        );
        input.duration_ms = ms;
        input.cases = cases;
        let report = grade(input, None);

        let json = json::to_string(&report).unwrap();
        let back = json::from_str(&json).unwrap();
        prop_assert_eq!(json::to_string(&back).unwrap(), json);

        let mut xml = Vec::new();
        junit::write(&report, &mut xml).unwrap();
        let xml = String::from_utf8(xml).unwrap();
        let bad = xml.contains(['\u{FFFE}', '\u{FFFF}']);
        prop_assert!(!bad);
        let parsed = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        prop_assert_eq!(parsed.tests, report.cases.len());

        let html = html::to_string(&report).unwrap();
        prop_assert_eq!(html.matches("<script").count(), 1);

        let _ = markdown::to_string(&report);
        let mut toml = Vec::new();
        expect::write(&report, &mut toml).unwrap();
        let toml = String::from_utf8(toml).unwrap();
        let exp = Expectations::parse(&toml, "written");
        prop_assert!(exp.is_ok(), "{:?}\n{}", exp, toml);
    }

    #[test]
    fn expectations_parser_never_panics(text in any::<String>()) {
        let _ = Expectations::parse(&text, "fuzz");
    }

    #[test]
    fn loader_never_panics(text in any::<String>()) {
        let _ = json::from_str(&text);
    }

    #[test]
    fn glob_star_matches_any_infix(a in "[a-z.]{0,6}", mid in any::<String>(), b in "[a-z.]{0,6}") {
        let text = format!("{a}{mid}{b}");
        let pattern = format!("{a}*{b}");
        let matched = expect::glob_match(&pattern, &text);
        prop_assert!(matched);
    }
}
