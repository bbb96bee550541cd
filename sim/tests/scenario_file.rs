//! A TOML scenario through the command's planning stage, as
//! `p2psip sim --scenario FILE` reads it.

use p2psip_sim::SimArgs;
use p2psip_sim::cli::plan;
use p2psip_sim::runner;

#[test]
fn a_scenario_file_runs() {
    let dir = std::env::temp_dir().join(format!("p2psip-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("leave.toml");
    std::fs::write(
        &path,
        r#"
name = "leave"

[[step]]
action = "join"
count = 16
rate = 8.0

[[step]]
action = "converge"

[[step]]
action = "register"
count = 4

[[step]]
action = "leave"
count = 3

[[step]]
action = "converge"

[[step]]
action = "settle"

[[step]]
action = "check_registrations"
"#,
    )
    .unwrap();
    let args = SimArgs {
        scenario: path.display().to_string(),
        no_measured: true,
        ..SimArgs::default()
    };
    let (cfg, opts, scenario) = plan(&args).unwrap();
    assert_eq!(scenario.name, "leave");
    let r = runner::run(cfg, opts, &scenario).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(r.passed, "{}", r.summary());
    assert_eq!(r.totals.counters.leaves, 3);
    assert_eq!(r.totals.counters.left, 3, "each leaver reported Left");

    let bad = SimArgs {
        scenario: "/nonexistent/scenario.toml".into(),
        ..SimArgs::default()
    };
    assert!(plan(&bad).is_err());
}
