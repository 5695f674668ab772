//! The soak, run in miniature so that the documented command keeps working: a fresh server, people
//! coming, chatting, resuming and going, rooms rotating, samples, a verdict and a plot. Its figures
//! are the real soak's business (docs/RELIABILITY.md); here it must deliver and store everything.
//!
//! It runs the `hubbub` binary beside its own, which `cargo test --workspace` builds.

use std::process::Command;

#[test]
fn a_short_soak_delivers_and_stores_everything_and_draws_its_plot() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (record, plot) = (dir.path().join("soak.json"), dir.path().join("soak.png"));
    let output = Command::new(env!("CARGO_BIN_EXE_hubbub-bench"))
        .args(["soak", "--duration", "60s", "--warm-up", "20s"])
        .args(["--people", "30", "--rooms", "3", "--rotate-every", "20s"])
        .args(["--sample-every", "2s"])
        .arg("--record")
        .arg(&record)
        .arg("--plot")
        .arg(&plot)
        .output()
        .expect("hubbub-bench runs");
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the soak failed:\n{summary}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).expect("the soak wrote its record"))
            .expect("the record is JSON");
    let delivery = &record["delivery"];
    assert!(delivery["acknowledged"].as_u64() > Some(0), "{delivery}");
    assert!(delivery["resumes"].as_u64() > Some(0), "{delivery}");
    assert_eq!(delivery["gaps"], 0, "{delivery}");
    assert_eq!(delivery["missing_from_storage"], 0, "{delivery}");
    assert!(
        record["rooms_created"].as_u64() > Some(3),
        "rooms rotated: {}",
        record["rooms_created"]
    );
    assert_eq!(record["at_rest"]["connections"], 0);
    assert!(
        record["samples"].as_array().map_or(0, Vec::len) >= 25,
        "a sample every 2 s for a minute"
    );
    let png = std::fs::read(&plot).expect("the soak drew its plot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(summary.contains("| verdict | pass |"), "{summary}");
}
