/*!
Implementations under test: the IUT file ([`file`]), its command
templates ([`template`]), the overlay parameters they receive
([`params`]), the instance supervisor ([`supervisor`]) and the registry of
live process groups ([`registry`]).

[`reference_node`] is the built-in default: the project's reference node,
started through the same template path as any third-party IUT.
*/

pub mod file;
pub mod params;
pub mod registry;
pub mod supervisor;
pub mod template;

use std::path::PathBuf;
use std::time::Duration;

pub use file::{Feature, IutFileError, IutSpec, StopMode, TransportName};
pub use params::{ParamOverrides, Params};
pub use supervisor::{
    Instance, Launch, LogLine, RegisterError, SpawnError, describe_status, register,
};
pub use template::{Template, TemplateError};

/// The arguments of the reference node's command line after the program
/// (and the `node` subcommand when it runs in-process), as templates.
pub const NODE_ARGS: &[&str] = &[
    "--listen",
    "{ip}:{port}",
    "--bootstrap",
    "{bootstrap}",
    "--overlay",
    "{overlay}",
    "--stabilize-ms",
    "{stabilize_ms}",
    "--fix-fingers-ms",
    "{fix_fingers_ms}",
    "--keepalive-ms",
    "{keepalive_ms}",
    "--t1-ms",
    "{t1_ms}",
    "--expires-s",
    "{expires_s}",
    "--peer-expires-s",
    "{expires_s}",
    "--replicas",
    "{replicas}",
    "--successors",
    "{successors}",
    "--data-dir",
    "{data_dir}",
    "--advertise",
    "{advertise}",
];

/// The program (and leading arguments) that runs the reference node.
///
/// This is the one place that decides how the built-in default starts
/// the reference node: the running harness executable with its hidden
/// `node` subcommand (the node runs in-process from the `p2psip-node`
/// library, so no second binary is needed). `P2PSIP_NODE` names a
/// `p2psip-node` binary to use instead.
pub fn reference_node_program() -> Vec<String> {
    if let Some(p) = std::env::var_os("P2PSIP_NODE") {
        return vec![p.to_string_lossy().into_owned()];
    }
    vec![harness_exe().display().to_string(), "node".to_string()]
}

/// The `p2psip` executable: the running one, or (when the running one is
/// a test binary) the one built next to it.
pub fn harness_exe() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("p2psip"));
    let is_p2psip = exe.file_stem().is_some_and(|s| s == "p2psip");
    if is_p2psip {
        return exe;
    }
    sibling_binary("p2psip")
}

/// `name` in the directory of the running executable, or in its parent
/// (test binaries live in `target/<profile>/deps`).
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from(name));
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let here = dir.join(name);
    if here.exists() {
        return here;
    }
    if dir.file_name().is_some_and(|n| n == "deps")
        && let Some(up) = dir.parent()
    {
        let there = up.join(name);
        if there.exists() {
            return there;
        }
    }
    here
}

/// The built-in default IUT: the reference node, optionally with fault
/// switches (`--fault NAME` each).
pub fn reference_node(faults: &[&str]) -> IutSpec {
    let mut command: Vec<Template> = reference_node_program()
        .iter()
        .map(|s| Template::literal(s))
        .collect();
    for a in NODE_ARGS {
        // The arguments above are valid templates by construction.
        command.push(Template::parse(a, &[]).expect("built-in template"));
    }
    for f in faults {
        command.push(Template::literal("--fault"));
        command.push(Template::literal(f));
    }
    let name = if faults.is_empty() {
        "p2psip-node (reference)".to_string()
    } else {
        format!("p2psip-node (reference, fault {})", faults.join(","))
    };
    IutSpec {
        name,
        version: Some(env!("CARGO_PKG_VERSION").to_string()),
        command,
        env: Vec::new(),
        transports: vec![TransportName::Udp, TransportName::Tcp],
        features: vec![Feature::Adapter, Feature::Stun],
        ready_timeout: Duration::from_secs(5),
        stop: StopMode::Sigterm,
        stop_grace: Duration::from_millis(1000),
        register_command: None,
        origin: "built-in".to_string(),
    }
}
