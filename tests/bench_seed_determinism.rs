//! Goal: a fixed `--seed` gives the same key sequence every time, and another seed another
//! one, for every key distribution.
//! Method: run `tskv-bench --dump-keys N` (a hidden flag that prints thread 0's first N
//! requests and exits, without connecting) twice per seed and compare the outputs.

use std::process::Command;

fn dump(seed: &str, dist: &str, count: usize) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tskv-bench"))
        .args([
            "--seed",
            seed,
            "--key-dist",
            dist,
            "--keys",
            "1000",
            "--ratio",
            "1:3",
        ])
        .args(["--dump-keys", &count.to_string()])
        .output()
        .expect("run tskv-bench");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 keys")
}

#[test]
fn same_seed_same_keys_other_seed_other_keys() {
    for dist in ["uniform", "sequential", "gaussian", "zipfian", "latest"] {
        let first = dump("42", dist, 500);
        let lines: Vec<&str> = first.lines().collect();
        assert_eq!(lines.len(), 500, "{dist}");
        for line in &lines {
            let (command, key) = line.split_once(' ').expect("COMMAND key");
            assert!(command == "SET" || command == "GET", "{line}");
            let index = key.strip_prefix("key:").expect("default prefix");
            assert_eq!(index.len(), 12, "zero-padded key {key}");
            assert!(
                index.parse::<u64>().unwrap() < 1000,
                "{key} outside the keyspace"
            );
        }
        assert_eq!(
            first,
            dump("42", dist, 500),
            "{dist}: same seed, other keys"
        );
        if dist != "sequential" {
            assert_ne!(
                first,
                dump("43", dist, 500),
                "{dist}: other seed, same keys"
            );
        }
    }
}
