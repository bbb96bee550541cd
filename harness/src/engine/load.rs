/*!
Loading suites: the embedded `suites/<name>.toml` (or a `--suites DIR`), each
checked in full before anything runs, with errors that name the file and
line; and the requirement catalogue of the profile (`docs/spec.md`,
embedded too), which gives levels and titles to the report and lets the
loader refuse a case citing an unknown requirement.
*/

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use p2psip_reports::{Level, RequirementDef};
use sha1::{Digest, Sha1};

use super::model::{CaseDef, Place, PuppetDef, Step, SuiteFile};
use super::msg::{parse_raw, raw_names};
use crate::checks;
use crate::iut::file::line_col;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
pub use embedded::{EMBEDDED_SUITES, PROFILE_TEXT};

/// Default case deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// A step and the line it is on.
#[derive(Debug, Clone)]
pub struct StepAt {
    pub step: Step,
    pub line: usize,
}

/// A loaded, validated case.
#[derive(Debug, Clone)]
pub struct Case {
    pub def: CaseDef,
    pub suite: String,
    pub steps: Vec<StepAt>,
    pub puppets: Vec<PuppetDef>,
    /// Checks after the steps: the suite defaults', then the case's.
    pub after: Vec<String>,
    pub deadline: Duration,
    /// `file:line` of the case.
    pub origin: String,
}

impl Case {
    pub fn id(&self) -> &str {
        &self.def.id
    }

    /// Instance names of the topology: `iut1..`, `ref1..`.
    pub fn instance_names(&self) -> Vec<String> {
        let t = &self.def.topology;
        (1..=t.iut)
            .map(|i| format!("iut{i}"))
            .chain((1..=t.refs).map(|i| format!("ref{i}")))
            .collect()
    }
}

/// A suite's title and doc, for listings.
#[derive(Debug, Clone)]
pub struct SuiteInfo {
    pub name: String,
    pub title: String,
    pub origin: String,
}

/// Everything that can run.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub suites: Vec<SuiteInfo>,
    pub cases: Vec<Arc<Case>>,
    /// SHA-1 over the suite texts, in name order.
    pub suites_digest: String,
    pub profile_digest: String,
    pub requirements: Vec<RequirementDef>,
}

/// Why suites could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{origin}:{line}:{column}: {message}")]
    At {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

/// The requirement catalogue: every `- **ID** (LEVEL...) text` line of
/// the profile.
pub fn requirement_catalogue(spec: &str) -> Vec<RequirementDef> {
    let mut out = Vec::new();
    for line in spec.lines() {
        let Some(rest) = line.strip_prefix("- **") else {
            continue;
        };
        let Some((id, rest)) = rest.split_once("**") else {
            continue;
        };
        if !id.contains('-')
            || !id
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
        {
            continue;
        }
        let rest = rest.trim_start();
        let Some(rest) = rest.strip_prefix('(') else {
            continue;
        };
        let level = if rest.starts_with("MUST") {
            Level::Must
        } else if rest.starts_with("SHOULD") {
            Level::Should
        } else if rest.starts_with("MAY") {
            Level::May
        } else {
            continue;
        };
        let title = rest.split_once(')').map(|(_, t)| t.trim()).unwrap_or("");
        let mut d = RequirementDef::new(id, level);
        if !title.is_empty() {
            let mut t = title.to_string();
            if t.len() > 140 {
                t.truncate(crate::text::floor_boundary(&t, 137));
                t.push_str("...");
            }
            d.title = Some(t);
        }
        out.push(d);
    }
    out
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha1::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The embedded suites.
pub fn embedded() -> Result<Catalogue, LoadError> {
    let sources: Vec<(String, String)> = EMBEDDED_SUITES
        .iter()
        .map(|(n, t)| (format!("suites/{n}"), t.to_string()))
        .collect();
    load(&sources)
}

/// Every `*.toml` file of `dir`.
pub fn from_dir(dir: &Path) -> Result<Catalogue, LoadError> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        LoadError::Other(format!(
            "cannot read suites directory {}: {e}",
            dir.display()
        ))
    })?;
    let mut files: Vec<_> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut sources = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| LoadError::Other(format!("cannot read {}: {e}", f.display())))?;
        sources.push((f.display().to_string(), text));
    }
    load(&sources)
}

/// Loads and validates suite texts `(origin, text)`.
pub fn load(sources: &[(String, String)]) -> Result<Catalogue, LoadError> {
    let requirements = requirement_catalogue(PROFILE_TEXT);
    let known: HashSet<&str> = requirements.iter().map(|r| r.id.as_str()).collect();
    let mut suites = Vec::new();
    let mut cases = Vec::new();
    let mut ids: HashSet<String> = HashSet::new();
    let mut names: HashSet<String> = HashSet::new();
    for (origin, text) in sources {
        let at = |offset: usize, message: String| {
            let (line, column) = line_col(text, offset);
            LoadError::At {
                origin: origin.clone(),
                line,
                column,
                message,
            }
        };
        let file: SuiteFile = toml::from_str(text).map_err(|e| {
            at(
                e.span().map_or(0, |s| s.start),
                e.message().trim().to_string(),
            )
        })?;
        if !is_kebab(&file.suite) {
            return Err(at(
                0,
                format!("suite name {:?} is not kebab-case", file.suite),
            ));
        }
        if !names.insert(file.suite.clone()) {
            return Err(at(0, format!("suite {:?} is defined twice", file.suite)));
        }
        suites.push(SuiteInfo {
            name: file.suite.clone(),
            title: file.title.clone(),
            origin: origin.clone(),
        });
        for dflt in &file.defaults.after {
            if checks::find(dflt).is_none() {
                return Err(at(
                    0,
                    format!("defaults.after names unknown check {dflt:?}"),
                ));
            }
        }
        for spanned in file.cases {
            let case_off = spanned.span().start;
            let def = spanned.into_inner();
            let line = line_col(text, case_off).0;
            let mut steps = Vec::new();
            for s in &def.steps {
                let off = s.span().start;
                let step: Step = s
                    .get_ref()
                    .clone()
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        at(
                            off,
                            format!("in a step of case {}: {}", def.id, e.message().trim()),
                        )
                    })?;
                steps.push(StepAt {
                    step,
                    line: line_col(text, off).0,
                });
            }
            let deadline_ms = def.deadline_ms.or(file.defaults.deadline_ms);
            let deadline = deadline_ms.map_or(DEFAULT_DEADLINE, Duration::from_millis);
            let mut after = file.defaults.after.clone();
            after.extend(def.after.iter().cloned());
            let case = Case {
                puppets: def.topology.puppets.iter().map(|p| p.def()).collect(),
                suite: file.suite.clone(),
                steps,
                after,
                deadline,
                origin: format!("{origin}:{line}"),
                def,
            };
            validate(&case, &known).map_err(|(l, m)| LoadError::At {
                origin: origin.clone(),
                line: l.unwrap_or(line),
                column: 1,
                message: format!("case {}: {m}", case.def.id),
            })?;
            if !ids.insert(case.def.id.clone()) {
                return Err(at(
                    case_off,
                    format!("case id {:?} is used twice", case.def.id),
                ));
            }
            cases.push(Arc::new(case));
        }
    }
    let texts: Vec<&str> = sources.iter().map(|(_, t)| t.as_str()).collect();
    Ok(Catalogue {
        suites,
        cases,
        suites_digest: digest(&texts),
        profile_digest: digest(&[PROFILE_TEXT]),
        requirements,
    })
}

fn is_kebab(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

const AUTO_NAMES: &[&str] = &["options", "queries", "notifies", "peer", "store", "leaves"];
const CLASSES: &[&str] = &[
    "join",
    "query",
    "notify",
    "leave",
    "resource-register",
    "lookup",
    "transfer",
    "plain",
];

type Invalid = (Option<usize>, String);

fn validate(case: &Case, known: &HashSet<&str>) -> Result<(), Invalid> {
    let d = &case.def;
    let err = |m: String| -> Invalid { (None, m) };
    match d.id.strip_prefix(&format!("{}.", case.suite)) {
        Some(rest) if is_kebab(rest) => {}
        _ => {
            return Err(err(format!(
                "the id must be `{}.kebab-name` (stable, never positional)",
                case.suite
            )));
        }
    }
    if d.title.trim().is_empty() || d.desc.trim().is_empty() || d.expect.trim().is_empty() {
        return Err(err("title, desc and expect must not be empty".into()));
    }
    if d.requirements.is_empty() {
        return Err(err(
            "requirements must name at least one requirement ID".into()
        ));
    }
    for r in &d.requirements {
        if !known.contains(r.as_str()) {
            return Err(err(format!(
                "unknown requirement {r:?} (not in docs/spec.md)"
            )));
        }
    }
    if !(100..=300_000).contains(&case.deadline.as_millis()) {
        return Err(err("deadline_ms must be in 100..=300000".into()));
    }
    for n in &d.needs {
        if n != "tcp" && crate::iut::Feature::from_name(n).is_none() {
            return Err(err(format!(
                "needs: unknown {n:?} (tcp, adapter, recursive, stun, enrollment, offline)"
            )));
        }
    }
    let t = &d.topology;
    if t.iut > 16 || t.refs > 32 {
        return Err(err("at most 16 IUT instances and 32 reference nodes".into()));
    }
    let instances = case.instance_names();
    let mut placed: Vec<String> = Vec::new();
    for name in &instances {
        if let Some(p) = t.place.get(name) {
            check_place(p, &placed).map_err(|m| err(format!("place.{name}: {m}")))?;
        }
        placed.push(name.clone());
    }
    for k in t.place.keys() {
        if !instances.contains(k) {
            return Err(err(format!(
                "place.{k}: no such instance (have {})",
                instances.join(", ")
            )));
        }
    }
    let mut puppets: BTreeSet<String> = BTreeSet::new();
    for p in &case.puppets {
        let ok_name = !p.name.is_empty()
            && p.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !instances.contains(&p.name)
            && p.name != "observer"
            && !is_instance_like(&p.name);
        if !ok_name {
            return Err(err(format!(
                "bad puppet name {:?} (letters, digits, - and _; not iutN/refN/observer)",
                p.name
            )));
        }
        if !puppets.insert(p.name.clone()) {
            return Err(err(format!("puppet {:?} declared twice", p.name)));
        }
        for a in &p.auto {
            if !AUTO_NAMES.contains(&a.as_str()) {
                return Err(err(format!(
                    "puppet {}: auto {a:?} is not one of {AUTO_NAMES:?}",
                    p.name
                )));
            }
        }
        if let Some(pl) = &p.place {
            check_place(pl, &placed).map_err(|m| err(format!("puppet {}: place: {m}", p.name)))?;
        }
        placed.push(p.name.clone());
    }
    let party = |n: &str| -> bool {
        instances.iter().any(|i| i == n)
            || puppets.contains(n)
            || n == "observer"
            || n.parse::<std::net::SocketAddr>().is_ok()
    };
    let node = |n: &str| instances.iter().any(|i| i == n);
    let puppet = |n: &str| puppets.contains(n);
    let check_name = |c: &str| -> Result<(), String> {
        if checks::find(c).is_none() {
            return Err(format!("unknown check {c:?}"));
        }
        Ok(())
    };
    for c in &case.after {
        check_name(c).map_err(err)?;
    }
    crate::natlab::model::validate(case)?;
    for s in &case.steps {
        let at = |m: String| -> Invalid { (Some(s.line), m) };
        let need = |ok: bool, what: &str, v: &str| -> Result<(), Invalid> {
            if ok {
                Ok(())
            } else {
                Err(at(format!(
                    "{} step: {what} {v:?} is not declared",
                    s.step.name()
                )))
            }
        };
        match &s.step {
            Step::Start(x) | Step::Restart(x) => {
                let targets = x.targets();
                if targets.is_empty() {
                    return Err(at("start needs node or nodes".into()));
                }
                for n in &targets {
                    need(node(n), "instance", n)?;
                }
                if let Some(b) = &x.bootstrap {
                    need(party(b), "bootstrap", b)?;
                }
            }
            Step::Kill(x) | Step::Leave(x) | Step::Alive(x) => {
                need(node(&x.node), "instance", &x.node)?
            }
            Step::Send(x) => {
                need(puppet(&x.from), "puppet", &x.from)?;
                let forms = [
                    x.msg.is_some(),
                    x.raw.is_some(),
                    x.raw_hex.is_some(),
                    x.resend,
                ]
                .iter()
                .filter(|b| **b)
                .count();
                if forms > 1 {
                    return Err(at("send takes one of msg, raw, raw_hex, resend".into()));
                }
                for v in [&x.to, &x.via, &x.as_peer].into_iter().flatten() {
                    need(party(v), "name", v)?;
                }
                if let Some(raw) = &x.raw {
                    let pieces = parse_raw(raw).map_err(at)?;
                    for n in raw_names(&pieces) {
                        need(party(&n), "name", &n)?;
                    }
                }
                if let Some(h) = &x.raw_hex {
                    let clean: String = h.chars().filter(|c| !c.is_whitespace()).collect();
                    hex::decode(&clean).map_err(|e| at(format!("raw_hex: {e}")))?;
                }
                if let Some(le) = &x.line_ends
                    && le != "lf"
                    && le != "crlf"
                {
                    return Err(at("line_ends is \"crlf\" or \"lf\"".into()));
                }
                if x.transport == super::model::Via::Tcp && !d.needs.iter().any(|n| n == "tcp") {
                    return Err(at(
                        "a case that sends over TCP must list \"tcp\" in needs".into()
                    ));
                }
            }
            Step::Expect(x) | Step::ExpectNone(x) => {
                need(puppet(&x.at), "puppet", &x.at)?;
                if let Some(f) = &x.from {
                    need(party(f), "name", f)?;
                }
                if let Some(c) = &x.class
                    && !CLASSES.contains(&c.as_str())
                {
                    return Err(at(format!("class {c:?} is not one of {CLASSES:?}")));
                }
                let kinds = [x.response.is_some(), x.request.is_some(), x.stun, x.closed]
                    .iter()
                    .filter(|b| **b)
                    .count();
                if kinds > 1 {
                    return Err(at(
                        "expect takes at most one of response, request, stun, closed".into(),
                    ));
                }
                if x.class.is_some() && x.request.is_none() {
                    return Err(at("class needs request = \"REGISTER\" (or \"any\")".into()));
                }
                for c in &x.checks {
                    check_name(c).map_err(at)?;
                }
            }
            Step::Reply(x) => {
                need(puppet(&x.at), "puppet", &x.at)?;
                if let Some(c) = &x.contact
                    && c != "echo"
                {
                    need(party(c), "contact", c)?;
                }
                for (k, v) in x.links.iter().flatten() {
                    if !valid_link_key(k) {
                        return Err(at(format!(
                            "links key {k:?} is not P1, S1..S32 or F0..F159"
                        )));
                    }
                    need(party(v), "link", v)?;
                }
                if !(100..700).contains(&x.status) {
                    return Err(at(format!(
                        "status {} is not a SIP final or provisional status",
                        x.status
                    )));
                }
            }
            Step::Wait(_) | Step::Snapshot(_) | Step::LookupAll(_) => {}
            // Checked with the topology's NAT below.
            Step::NatRebind(_) | Step::NatAdopt(_) => {}
            Step::WaitUntil(x) | Step::Check(x) => check_name(&x.check).map_err(at)?,
            Step::View(x) => {
                need(puppet(&x.puppet), "puppet", &x.puppet)?;
                for v in x.pred.iter().chain(x.succ.iter()) {
                    need(party(v), "name", v)?;
                }
            }
            Step::Auto(x) => {
                need(puppet(&x.puppet), "puppet", &x.puppet)?;
                for a in &x.answer {
                    if !AUTO_NAMES.contains(&a.as_str()) {
                        return Err(at(format!("auto {a:?} is not one of {AUTO_NAMES:?}")));
                    }
                }
            }
            Step::Close(x) => {
                need(puppet(&x.puppet), "puppet", &x.puppet)?;
                if let Some(t) = &x.to {
                    need(party(t), "name", t)?;
                }
            }
            Step::Aor(x) => {
                if !is_kebab(&x.name) {
                    return Err(at(format!("aor name {:?} is not kebab-case", x.name)));
                }
                for (k, v) in &x.held_by {
                    if super::resource::copy_of(k).is_none() {
                        return Err(at(format!(
                            "held_by key {k:?} is not primary or replicaN (N >= 1)"
                        )));
                    }
                    need(party(v), "holder", v)?;
                }
                for v in &x.among {
                    need(party(v), "name", v)?;
                }
            }
            Step::Register(x) => {
                need(node(&x.node), "instance", &x.node)?;
                if let Some(u) = &x.ua {
                    need(puppet(u), "puppet", u)?;
                }
                if let Some(c) = &x.contact
                    && !c.starts_with("sip:")
                    && !c.starts_with("sips:")
                {
                    need(party(c), "contact", c)?;
                }
            }
        }
        if let Step::Send(x) = &s.step {
            use super::model::MsgKind;
            let resource_kind = matches!(
                x.msg,
                Some(MsgKind::Register | MsgKind::Lookup | MsgKind::Transfer)
            );
            if resource_kind != x.aor.is_some() {
                return Err(at(
                    "aor goes with msg = \"register\", \"lookup\" or \"transfer\", which need it"
                        .into(),
                ));
            }
            if let Some(c) = &x.contact
                && !c.starts_with("sip:")
                && !c.starts_with("sips:")
            {
                need(party(c), "contact", c)?;
            }
        }
    }
    Ok(())
}

fn is_instance_like(n: &str) -> bool {
    ["iut", "ref"].iter().any(|p| {
        n.strip_prefix(p)
            .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()))
    })
}

fn valid_link_key(k: &str) -> bool {
    let (kind, depth) = k.split_at(1.min(k.len()));
    let Ok(d) = depth.parse::<u32>() else {
        return false;
    };
    match kind {
        "P" => d == 1,
        "S" => (1..=32).contains(&d),
        "F" => d < 160,
        _ => false,
    }
}

fn check_place(p: &Place, placed: &[String]) -> Result<(), String> {
    let keys = [p.after.is_some(), p.before.is_some(), p.between.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if keys != 1 {
        return Err("give exactly one of after, before, between".into());
    }
    let names: Vec<&String> = p
        .after
        .iter()
        .chain(p.before.iter())
        .chain(p.between.iter().flatten())
        .collect();
    for n in names {
        let (n, _) = crate::net::split_offset(n);
        if !placed.iter().any(|p| p == n) {
            return Err(format!(
                "{n:?} is not placed before this one (instances first, iut1.., ref1.., then puppets in order)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_reads_the_profile() {
        let c = requirement_catalogue(PROFILE_TEXT);
        let txn1 = c.iter().find(|r| r.id == "TXN-1").expect("TXN-1");
        assert_eq!(txn1.level, Level::Must);
        assert!(
            c.iter()
                .any(|r| r.id == "QUERY-8" && r.level == Level::Should)
        );
        assert!(c.len() > 60, "{}", c.len());
    }

    #[test]
    fn embedded_suites_load() {
        let cat = embedded().unwrap_or_else(|e| panic!("{e}"));
        assert!(!cat.cases.is_empty());
    }

    fn one(case: &str) -> String {
        let text = format!("suite = \"x\"\ntitle = \"X\"\n{case}");
        match load(&[("x.toml".into(), text)]) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    const HEAD: &str = "[[case]]\nid = \"x.a\"\ntitle = \"t\"\nrequirements = [\"TXN-4\"]\nlevel = \"MUST\"\ndesc = \"d\"\nexpect = \"e\"\ntopology = { iut = 1, puppets = [\"p\"] }\n";

    #[test]
    fn errors_name_the_line() {
        let ok = format!("{HEAD}steps = [\n  {{ do = \"start\", node = \"iut1\" }},\n]\n");
        assert_eq!(one(&ok), "ok");
        let bad = format!(
            "{HEAD}steps = [\n  {{ do = \"start\", node = \"iut1\" }},\n  {{ do = \"send\", from = \"q\" }},\n]\n"
        );
        let e = one(&bad);
        assert!(e.starts_with("x.toml:13:"), "{e}");
        assert!(e.contains("\"q\""), "{e}");
        let bad = format!("{HEAD}steps = [\n  {{ do = \"strat\", node = \"iut1\" }},\n]\n");
        let e = one(&bad);
        assert!(e.starts_with("x.toml:12:"), "{e}");
        let bad = format!("{HEAD}steps = [\n  {{ do = \"check\", check = \"ring.nope\" }},\n]\n");
        assert!(one(&bad).contains("ring.nope"));
        let bad = HEAD.replace("TXN-4", "TXN-99") + "steps = []\n";
        assert!(one(&bad).contains("TXN-99"));
        let bad = HEAD.replace("x.a", "x.A_b") + "steps = []\n";
        assert!(one(&bad).contains("kebab"));
    }
}
