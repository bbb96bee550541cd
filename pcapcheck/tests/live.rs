//! The scenario of `common` on real loopback sockets, captured by tcpdump:
//! reference nodes run in this process on their tokio driver, the scripted
//! senders are plain UDP sockets, and `tcpdump -i lo` records everything
//! of the scenario's 127.a.b.0/24. The clean capture must check clean and
//! each fault capture must report its requirement.
//!
//! Skips with a message when tcpdump is missing or may not capture here.
//! `PCAPCHECK_REGEN=1` also copies the captures to `vectors/pcap/` (the
//! committed samples).
//!
//! Every scenario binds its own addresses with port 0 and runs in its own
//! thread; every wait has a deadline; tcpdump is stopped and reaped.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use p2psip_node::Fault;
use p2psip_node::driver;
use p2psip_pcapcheck::check;
use tokio::sync::watch;

/// tcpdump writing the scenario's subnet to `file`; stopped on drop.
struct Tcpdump {
    child: Child,
}

impl Tcpdump {
    fn start(net: &str, file: &Path) -> Result<Tcpdump, String> {
        let mut child = Command::new("tcpdump")
            .args([
                "-i", "lo", "-U", "-n", "-s", "0", "-B", "32768", "-Z", "root", "-w",
            ])
            .arg(file)
            .args(["net", net])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run tcpdump: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let mut said = String::new();
            for l in lines.by_ref().map_while(Result::ok) {
                if l.contains("listening on") {
                    let _ = tx.send(Ok(()));
                    break;
                }
                said.push_str(&l);
                said.push('\n');
            }
            let _ = tx.send(Err(said));
            for _ in lines {}
        });
        let mut t = Tcpdump { child };
        match rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(t),
            Ok(Err(said)) => {
                t.stop();
                Err(format!("tcpdump cannot capture on lo: {}", said.trim()))
            }
            Err(_) => {
                t.stop();
                Err("tcpdump did not start listening within 5 s".into())
            }
        }
    }

    /// SIGINT (tcpdump flushes and exits), then SIGKILL after 5 s; reaped.
    fn stop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGINT);
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

fn tcpdump_missing() -> Option<String> {
    match Command::new("tcpdump").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        Ok(_) => Some("tcpdump --version failed".into()),
        Err(e) => Some(format!("tcpdump not available: {e}")),
    }
}

struct Node {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(ip: IpAddr, seed: u64, fault: Option<Fault>, boot: Option<SocketAddr>) -> Node {
    let bound = driver::bind(SocketAddr::new(ip, 0))
        .await
        .expect("bind a node on loopback");
    let cfg = common::config(bound.addr(), seed, fault).with_bootstrap(boot);
    let (tx, rx) = watch::channel(false);
    let running = driver::spawn(bound, cfg, rx).expect("a valid config");
    Node {
        addr: running.addr,
        shutdown: tx,
        task: running.task,
    }
}

/// Runs the scenario on 127.a.b.0/24 while tcpdump writes `file`.
fn run(fault: Option<Fault>, a: u8, b: u8, file: &Path) -> Result<(), String> {
    let plan = common::plan(a, b);
    let mut dump = Tcpdump::start(&format!("127.{a}.{b}.0/24"), file)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let sleep = |ms: u64| tokio::time::sleep(Duration::from_millis(ms));
        let mut ring = vec![start(plan.ring[0], 1, None, None).await];
        let boot = ring[0].addr;
        for (i, ip) in plan.ring.iter().enumerate().skip(1) {
            sleep(100).await;
            let f = if i == common::FAULTY { fault } else { None };
            ring.push(start(*ip, i as u64 + 1, f, Some(boot)).await);
        }
        sleep(2500).await;
        let joiner = start(plan.joiner, 99, None, Some(boot)).await;
        sleep(1000).await;
        let target = ring[common::FAULTY].addr;
        let bind = |ip: IpAddr| UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind a sender");
        let spoofer = bind(plan.spoofer);
        let from = spoofer.local_addr().expect("local address");
        let _ = spoofer.send_to(&common::spoofed_join(&plan, from, target), target);
        let ua = bind(plan.ua);
        let from = ua.local_addr().expect("local address");
        for n in 1..=common::AORS {
            let _ = ua.send_to(&common::ua_register(from, target, n), target);
        }
        let client = bind(plan.client);
        let from = client.local_addr().expect("local address");
        let keys = common::keys();
        for (n, k) in keys.iter().enumerate() {
            let _ = client.send_to(&common::query(from, target, n as u32 + 1, *k), target);
        }
        sleep(1000).await;
        let joiner2 = start(plan.joiner2, 98, None, Some(boot)).await;
        for n in 0..common::QUERIES {
            let k = keys[n as usize % keys.len()];
            let _ = client.send_to(&common::query(from, target, 100 + n, k), target);
            tokio::time::sleep(common::QUERY_GAP).await;
        }
        let _ = ring[plan.leaver].shutdown.send(true);
        sleep(1000).await;
        ring[plan.victim].task.abort();
        sleep(2000).await;
        for n in ring.iter().chain([&joiner, &joiner2]) {
            n.task.abort();
        }
    });
    drop(rt);
    // Let tcpdump write the last packets before it stops.
    std::thread::sleep(Duration::from_millis(200));
    dump.stop();
    Ok(())
}

fn name(fault: Option<Fault>) -> String {
    fault.map_or_else(|| "clean".to_owned(), |f| f.name().to_owned())
}

#[test]
fn loopback_captures_of_a_reference_ring() {
    if let Some(why) = tcpdump_missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let a = 10 + (std::process::id() % 200) as u8;
    let mut scenarios: Vec<Option<Fault>> = vec![None];
    scenarios.extend(common::OBSERVABLE.iter().map(|(f, _)| Some(*f)));
    let handles: Vec<_> = scenarios
        .iter()
        .enumerate()
        .map(|(i, fault)| {
            let fault = *fault;
            let file = dir.path().join(format!("{}.pcap", name(fault)));
            let b = 200 + i as u8;
            std::thread::spawn(move || run(fault, a, b, &file).map(|()| file))
        })
        .collect();
    let mut files: Vec<(Option<Fault>, PathBuf)> = Vec::new();
    for (h, fault) in handles.into_iter().zip(&scenarios) {
        match h.join().expect("a scenario thread") {
            Ok(f) => files.push((*fault, f)),
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        }
    }
    let regen = std::env::var_os("PCAPCHECK_REGEN").is_some();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/pcap");
    let mut problems = Vec::new();
    for (fault, file) in &files {
        let input = std::fs::File::open(file).expect("the capture");
        let analysis = check(BufReader::new(input), &common::options()).expect("readable");
        let violated: Vec<&str> = analysis.violated().iter().map(|r| r.id()).collect();
        if let Some(keep) = std::env::var_os("PCAPCHECK_KEEP") {
            let _ = std::fs::create_dir_all(&keep);
            let _ = std::fs::copy(
                file,
                Path::new(&keep).join(format!("{}.pcap", name(*fault))),
            );
        }
        let ok = match fault {
            None => analysis.is_clean() && analysis.counters.messages > 300,
            Some(f) => {
                let want = common::OBSERVABLE
                    .iter()
                    .find(|(x, _)| x == f)
                    .map(|(_, r)| *r)
                    .expect("listed");
                violated.contains(&want)
            }
        };
        // Whether a peer reports another before its first probe of it
        // answered depends on timer phases on real sockets: the
        // simulation shows it every time; here it is only kept when seen.
        if !ok && *fault == Some(Fault::ReportUnverified) {
            eprintln!("report-unverified: not shown by this run (timing); not a failure");
            continue;
        }
        if !ok {
            let shown: Vec<String> = analysis
                .findings
                .iter()
                .take(10)
                .map(|f| f.to_string())
                .collect();
            problems.push(format!(
                "{}: {} messages, violated {violated:?}\n{}",
                name(*fault),
                analysis.counters.messages,
                shown.join("\n")
            ));
        } else if regen {
            std::fs::create_dir_all(&samples).expect("vectors/pcap");
            std::fs::copy(file, samples.join(format!("{}.pcap", name(*fault))))
                .expect("copy a sample");
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
