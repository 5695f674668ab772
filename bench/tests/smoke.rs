//! The benchmark itself, run in miniature: it must start both servers, load them and report, so that
//! the documented commands keep working. Figures are not judged here; docs/BENCHMARKS.md holds them,
//! and load is the bench's business, not the test suite's: the smoke scenario has 40 clients.
//!
//! It runs the `hubbub` binary beside its own, which `cargo test --workspace` builds.

use std::process::Command;

/// Runs `hubbub-bench run smoke` on one CPU against the baseline and Hubbub, and returns the JSON
/// records it appended, one per run.
fn run_smoke() -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let record = dir.path().join("runs.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_hubbub-bench"))
        .args(["run", "smoke", "--repetitions", "1"])
        // One CPU for both, so the test runs on any machine; the pinning is the benchmark's business.
        .args(["--server-cpu", "0", "--load-cpu", "0"])
        .arg("--record")
        .arg(&record)
        .output()
        .expect("hubbub-bench runs");
    assert!(
        output.status.success(),
        "hubbub-bench failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        summary.contains("| figure | baseline | hubbub | hubbub ÷ baseline |"),
        "no summary table in:\n{summary}"
    );
    std::fs::read_to_string(&record)
        .expect("the bench wrote its records")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each record is JSON"))
        .collect()
}

/// Every message sent reaches every member of its room, on the baseline and on Hubbub alike, and
/// Hubbub stores every one.
#[test]
fn the_smoke_scenario_delivers_everything_on_both_servers() {
    let records = run_smoke();

    // A warm-up and one repetition, each against both servers.
    assert_eq!(records.len(), 4);
    for record in &records {
        let report = &record["report"];
        assert_eq!(report["clients_connected"], 40, "{record}");
        assert!(report["sent"].as_u64().unwrap_or_default() > 0, "{record}");
        assert_eq!(
            report["delivered"], report["expected_deliveries"],
            "{record}"
        );
        assert!(
            report["server_cpu_seconds_per_million"].as_f64().is_some(),
            "{record}"
        );
        // Hubbub says what its storage lost; at this rate, nothing. The baseline stores nothing.
        let dropped = &report["server_storage"]["dropped"];
        match record["target"].as_str() {
            Some("hubbub") => assert_eq!(dropped, 0, "{record}"),
            _ => assert!(report["server_storage"].is_null(), "{record}"),
        }
    }
    let targets: Vec<&str> = records
        .iter()
        .filter_map(|r| r["target"].as_str())
        .collect();
    assert_eq!(targets, ["baseline", "hubbub", "baseline", "hubbub"]);
}
