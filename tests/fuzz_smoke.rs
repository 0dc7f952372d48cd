//! Goal: every fuzz target builds and runs against today's decoders without a crash, so a
//! target that no longer compiles, or a decoder change that panics on its seeds or on what
//! the fuzzer finds in a few seconds, fails the test suite rather than the next fuzzing
//! session.
//!
//! Method: when the nightly toolchain and cargo-fuzz are installed, run `scripts/fuzz.sh
//! --dev --seconds 2`, which builds all targets once, unoptimized so that rebuilding after
//! a change of the library is quick (incrementally, in `scripts/fuzz/target`), and runs
//! each for two seconds from the committed seeds; then check its summary: every
//! target listed, each with executions and no crash. Without nightly or cargo-fuzz the test
//! prints `SKIP: <reason>` to stderr (past libtest's capture, so it shows) and passes.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Why the fuzz tools cannot run here, if they cannot.
fn missing_tool() -> Option<String> {
    let ok = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|out| out.status.success())
    };
    if !ok("rustup", &["run", "nightly", "rustc", "--version"]) {
        return Some(
            "the nightly toolchain is not installed (rustup toolchain install nightly)".into(),
        );
    }
    if !ok("cargo", &["+nightly", "fuzz", "--version"]) {
        return Some("cargo-fuzz is not installed (cargo install cargo-fuzz)".into());
    }
    None
}

fn targets() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("scripts/fuzz/fuzz_targets"))
        .expect("reading scripts/fuzz/fuzz_targets")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_fuzz_target_runs_without_a_crash() {
    if let Some(reason) = missing_tool() {
        writeln!(std::io::stderr(), "SKIP: fuzz smoke run: {reason}").unwrap();
        return;
    }
    let output = Command::new(root().join("scripts/fuzz.sh"))
        .args(["--dev", "--seconds", "2"])
        .output()
        .expect("running scripts/fuzz.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/fuzz.sh failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let targets = targets();
    assert!(targets.len() >= 10, "fuzz targets: {targets:?}");
    for target in &targets {
        let line = stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(target.as_str()))
            .unwrap_or_else(|| panic!("no summary line for {target}:\n{stdout}"));
        let fields: Vec<&str> = line.split_whitespace().collect();
        let executions: u64 = fields[1]
            .parse()
            .unwrap_or_else(|_| panic!("executions of {target} not a number: {line}"));
        assert!(executions > 0, "{target} ran nothing: {line}");
        assert_eq!(fields[2..], ["0", "ok"], "{target}: {line}");
    }
    writeln!(std::io::stderr(), "fuzz smoke run:\n{stdout}").unwrap();
}
