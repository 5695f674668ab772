//! The benchmark: scenarios run against every target in turn, after a warm-up, with repetitions.
//!
//! Every run gets a freshly started server pinned to one CPU and a load generator (this binary's
//! `load`, in its own process) pinned to the other, so neither steals the other's core. Hubbub is
//! reported as a ratio to the baseline measured in the same repetition: noise between runs cancels.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::report::Report;
use crate::servers::{Server, Target};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenarios to run, in this order.
    #[arg(required = true, value_enum)]
    scenarios: Vec<Scenario>,
    /// Measured repetitions of each scenario, after one warm-up run that is recorded but not counted.
    #[arg(long, default_value_t = 3)]
    repetitions: usize,
    /// The servers to measure, one after the other in each repetition.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "baseline,hubbub"
    )]
    targets: Vec<Target>,
    /// The CPU (taskset list) the server runs on.
    #[arg(long, default_value = "0")]
    server_cpu: String,
    /// The CPU (taskset list) the load generator runs on.
    #[arg(long, default_value = "1")]
    load_cpu: String,
    /// Scale every scenario's sending or holding time by this factor (0.1 for a quick trial).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Every run is appended here as one JSON object per line.
    #[arg(long, default_value = "target/bench/runs.jsonl")]
    record: PathBuf,
    /// The Hubbub binary the `reference` target runs, such as a build of the previous commit.
    #[arg(long)]
    reference_binary: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    /// (a) 1,000 clients in 100 rooms of 10, one sender per room, 2,000 sends/s in all, 20 s.
    Moderate,
    /// (b) one room of 1,000 clients, one sender at 50 msgs/s, 20 s.
    BigRoom,
    /// (c) the moderate layout with the send rate raised until p99 > 250 ms or delivery < 99 %, or
    /// Hubbub's storage drops a message it could not write in time.
    MaxRate,
    /// (d) 10,000 joined idle connections in rooms of 10, held 30 s.
    Idle,
    /// (d) 19,000 joined idle connections in rooms of 10, as many as one process may open here, held 60 s.
    IdleMax,
    /// (e) 10,000 clients connecting into rooms of 10 with 200 attempts in flight.
    ConnectStorm,
    /// Every scenario above, in order.
    All,
    /// 40 clients in 4 rooms of 10 at 100 sends/s for 2 s: proof that the bench works, not a measurement.
    Smoke,
}

const EVERY_SCENARIO: [Scenario; 6] = [
    Scenario::Moderate,
    Scenario::BigRoom,
    Scenario::MaxRate,
    Scenario::Idle,
    Scenario::IdleMax,
    Scenario::ConnectStorm,
];

/// What one load run does.
#[derive(Debug, Clone, Serialize)]
struct Load {
    clients: usize,
    rooms: usize,
    rate: u32,
    seconds: f64,
    source_addresses: u8,
}

/// The bounds of scenario (c): a run passes while p99 stays within and delivery above these, and
/// (Hubbub) while its storage writes every message: keeping up by losing history is not keeping up.
const MAX_P99_MS: f64 = 250.0;
const MIN_DELIVERED_PERCENT: f64 = 99.0;
/// Scenario (c) starts here, and stops searching once it knows the limit to within 1/8 of it.
const MAX_RATE_START: u32 = 2_000;
const MAX_RATE_PRECISION: u32 = 8;
/// No rate above this is tried: the load generator's own core would be the limit by then.
const MAX_RATE_CEILING: u32 = 256_000;

impl Scenario {
    fn load(self, time_scale: f64) -> Load {
        let (clients, rooms, rate, seconds, source_addresses) = match self {
            Scenario::Moderate => (1_000, 100, 2_000, 20.0, 1),
            Scenario::BigRoom => (1_000, 1, 50, 20.0, 1),
            Scenario::MaxRate => (1_000, 100, MAX_RATE_START, 10.0, 1),
            Scenario::Idle => (10_000, 1_000, 0, 30.0, 16),
            Scenario::IdleMax => (19_000, 1_900, 0, 60.0, 16),
            Scenario::ConnectStorm => (10_000, 1_000, 0, 1.0, 16),
            Scenario::Smoke => (40, 4, 100, 2.0, 1),
            Scenario::All => unreachable!("expanded before running"),
        };
        Load {
            clients,
            rooms,
            rate,
            seconds: seconds * time_scale,
            source_addresses,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Scenario::Moderate => "moderate",
            Scenario::BigRoom => "big-room",
            Scenario::MaxRate => "max-rate",
            Scenario::Idle => "idle",
            Scenario::IdleMax => "idle-max",
            Scenario::ConnectStorm => "connect-storm",
            Scenario::All => "all",
            Scenario::Smoke => "smoke",
        }
    }

    /// The figures the summary table shows for this scenario.
    fn figures(self) -> &'static [Figure] {
        match self {
            Scenario::Moderate | Scenario::BigRoom | Scenario::Smoke => &[
                CPU_PER_MILLION,
                STORAGE_CPU,
                P50,
                P99,
                DELIVERED_PER_SECOND,
                DELIVERED_PERCENT,
                PEAK_RSS,
                CROSS_P50,
                CROSS_P99,
                INSTANCE_1_CPU,
                INSTANCE_2_CPU,
                REDIS_CPU,
            ],
            Scenario::MaxRate => &[
                DELIVERED_PER_SECOND,
                P99,
                DELIVERED_PERCENT,
                CPU_PER_MILLION,
                STORAGE_CPU,
                CROSS_P99,
            ],
            Scenario::Idle | Scenario::IdleMax => &[
                BYTES_PER_CONNECTION,
                CONNECTED,
                DISCONNECTS,
                PEAK_RSS,
                CONNECTS_PER_SECOND,
            ],
            Scenario::ConnectStorm => &[CONNECTS_PER_SECOND, CONNECTED, PEAK_RSS],
            Scenario::All => &[],
        }
    }
}

/// One figure read off a report.
struct Figure {
    name: &'static str,
    read: fn(&Report) -> Option<f64>,
}

const CPU_PER_MILLION: Figure = Figure {
    name: "server CPU-s per 10⁶ deliveries",
    read: |r| r.server_cpu_seconds_per_million,
};
const STORAGE_CPU: Figure = Figure {
    name: "storage threads' CPU-µs per message",
    read: |r| r.storage_cpu_micros_per_message,
};
const P50: Figure = Figure {
    name: "p50 latency, ms",
    read: |r| r.latency_p50_ms,
};
const P99: Figure = Figure {
    name: "p99 latency, ms",
    read: |r| r.latency_p99_ms,
};
const DELIVERED_PER_SECOND: Figure = Figure {
    name: "delivered/s",
    read: |r| Some(r.delivered_per_second),
};
const DELIVERED_PERCENT: Figure = Figure {
    name: "delivered, %",
    read: |r| Some(r.delivered_percent),
};
const PEAK_RSS: Figure = Figure {
    name: "server peak RSS, MiB",
    read: |r| r.server_peak_rss_mib,
};
const BYTES_PER_CONNECTION: Figure = Figure {
    name: "server KiB per connection",
    read: |r| r.server_bytes_per_connection.map(|bytes| bytes / 1024.0),
};
const CONNECTED: Figure = Figure {
    name: "clients connected",
    read: |r| Some(r.clients_connected as f64),
};
const DISCONNECTS: Figure = Figure {
    name: "disconnects",
    read: |r| Some(r.disconnects as f64),
};
const CROSS_P50: Figure = Figure {
    name: "p50 latency to the other instance, ms",
    read: |r| r.latency_cross_p50_ms,
};
const CROSS_P99: Figure = Figure {
    name: "p99 latency to the other instance, ms",
    read: |r| r.latency_cross_p99_ms,
};
const INSTANCE_1_CPU: Figure = Figure {
    name: "instance 1 CPU-s per 10⁶ deliveries",
    read: |r| r.process_cpu(0),
};
const INSTANCE_2_CPU: Figure = Figure {
    name: "instance 2 CPU-s per 10⁶ deliveries",
    read: |r| r.process_cpu(1),
};
const REDIS_CPU: Figure = Figure {
    name: "Redis CPU-s per 10⁶ deliveries",
    read: |r| r.process_cpu(2),
};
const CONNECTS_PER_SECOND: Figure = Figure {
    name: "connects/s",
    read: |r| Some(r.connects_per_second),
};

/// One run as recorded: what ran, and what the load generator reported.
#[derive(Serialize)]
struct Record<'a> {
    date: String,
    scenario: Scenario,
    target: Target,
    /// 0 is the warm-up.
    repetition: usize,
    load: &'a Load,
    /// For scenario (c): whether the run kept within its bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    sustained: Option<bool>,
    report: &'a Report,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    if let Some(dir) = args.record.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let scenarios: Vec<Scenario> = if args.scenarios.contains(&Scenario::All) {
        EVERY_SCENARIO.to_vec()
    } else {
        args.scenarios.clone()
    };
    let bench = Bench { args: &args };
    for scenario in scenarios {
        bench.scenario(scenario)?;
    }
    Ok(())
}

struct Bench<'a> {
    args: &'a RunArgs,
}

impl Bench<'_> {
    /// Runs one scenario: a warm-up, then the repetitions, each target in turn; prints the summary.
    fn scenario(&self, scenario: Scenario) -> anyhow::Result<()> {
        let load = scenario.load(self.args.time_scale);
        eprintln!("== {} {load:?}", scenario.name());
        let mut measured: Vec<Vec<Report>> = vec![Vec::new(); self.args.targets.len()];
        for repetition in 0..=self.args.repetitions {
            for (target, reports) in self.args.targets.iter().zip(&mut measured) {
                let report = match scenario {
                    Scenario::MaxRate => self.max_rate(*target, &load, repetition)?,
                    _ => self.once(scenario, *target, &load, repetition)?.0,
                };
                if repetition > 0 {
                    reports.push(report);
                }
            }
        }
        self.summarize(scenario, &load, &measured);
        Ok(())
    }

    /// Scenario (c): the run at the highest rate this target sustains. The rate doubles while runs
    /// pass, then the gap between the last pass and the first failure is halved until it is small.
    fn max_rate(&self, target: Target, load: &Load, repetition: usize) -> anyhow::Result<Report> {
        let mut sustained: Option<(u32, Report)> = None;
        let mut failed: Option<u32> = None;
        let mut rate = load.rate;
        loop {
            let step = Load {
                rate,
                ..load.clone()
            };
            let (report, kept_up) = self.once(Scenario::MaxRate, target, &step, repetition)?;
            if kept_up {
                sustained = Some((rate, report));
            } else {
                failed = Some(rate);
            }
            let highest_pass = sustained.as_ref().map(|(rate, _)| *rate);
            rate = match (highest_pass, failed) {
                (Some(low), None) if low * 2 <= MAX_RATE_CEILING => low * 2,
                (Some(low), Some(high)) if high - low > high / MAX_RATE_PRECISION => {
                    (low + high) / 2
                }
                _ => break,
            };
        }
        sustained.map(|(_, report)| report).with_context(|| {
            format!(
                "{} sustained not even {} msgs/s in {} rooms",
                target.name(),
                load.rate,
                load.rooms
            )
        })
    }

    /// Starts a fresh server, puts one load on it from the other CPU, and records the run.
    fn once(
        &self,
        scenario: Scenario,
        target: Target,
        load: &Load,
        repetition: usize,
    ) -> anyhow::Result<(Report, bool)> {
        let server = Server::start(
            target,
            &self.args.server_cpu,
            self.args.reference_binary.as_deref(),
            &[],
        )?;
        let report = self.load(&server, target, load)?;
        drop(server);
        let sustained = report.delivered_percent >= MIN_DELIVERED_PERCENT
            && report.latency_p99_ms.is_some_and(|p99| p99 <= MAX_P99_MS)
            && report
                .server_storage
                .is_none_or(|storage| storage.dropped == 0);
        eprintln!(
            "  {:<14} rep {repetition}{}  rate {:>6}  {}",
            target.name(),
            if repetition == 0 { " (warm-up)" } else { "" },
            load.rate,
            report.summary_line()
        );
        let record = Record {
            date: chrono::Utc::now().to_rfc3339(),
            scenario,
            target,
            repetition,
            load,
            sustained: (scenario == Scenario::MaxRate).then_some(sustained),
            report: &report,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.args.record)
            .with_context(|| format!("cannot open {}", self.args.record.display()))?;
        writeln!(file, "{}", serde_json::to_string(&record)?)?;
        Ok((report, sustained))
    }

    /// Runs `hubbub-bench load` pinned to the load CPU and reads the report it prints last.
    fn load(&self, server: &Server, target: Target, load: &Load) -> anyhow::Result<Report> {
        let bench = std::env::current_exe().context("cannot find the bench's own executable")?;
        let mut command = Command::new("taskset");
        command
            .args(["-c", &self.args.load_cpu])
            .arg(bench)
            .arg("load")
            .args(["--url", &server.urls[0]]);
        for url in &server.urls[1..] {
            command.args(["--also-url", url]);
        }
        for pid in server.pids() {
            command.args(["--server-pid", &pid.to_string()]);
        }
        command
            .args(["--clients", &load.clients.to_string()])
            .args(["--rooms", &load.rooms.to_string()])
            .args(["--rate", &load.rate.to_string()])
            .args(["--duration", &format!("{}ms", (load.seconds * 1e3) as u64)])
            .args(["--source-addresses", &load.source_addresses.to_string()])
            .arg("--json");
        if !target.has_room_api() {
            command.arg("--no-room-api");
        }
        let output = command
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run the load generator")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!("the load generator failed ({}):\n{stdout}", output.status);
        }
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last)
            .with_context(|| format!("the load generator printed no report:\n{stdout}"))
    }

    /// Prints a Markdown table: each figure's median and range per target, and each Hubbub target's
    /// ratio to the baseline, taken repetition by repetition.
    fn summarize(&self, scenario: Scenario, load: &Load, measured: &[Vec<Report>]) {
        let targets = &self.args.targets;
        let baseline = targets.iter().position(|t| *t == Target::Baseline);
        let mut header = vec!["figure".to_owned()];
        header.extend(targets.iter().map(|t| t.name().to_owned()));
        let ratios: Vec<usize> = (0..targets.len())
            .filter(|i| Some(*i) != baseline && baseline.is_some())
            .collect();
        header.extend(
            ratios
                .iter()
                .map(|i| format!("{} ÷ baseline", targets[*i].name())),
        );
        println!(
            "\n### {} — {} clients, {} rooms, {} msgs/s, {} s; median (min–max) of {} runs\n",
            scenario.name(),
            load.clients,
            load.rooms,
            load.rate,
            load.seconds,
            self.args.repetitions
        );
        println!("| {} |", header.join(" | "));
        println!("|{}", " --- |".repeat(header.len()));
        for figure in scenario.figures() {
            let mut row = vec![figure.name.to_owned()];
            for reports in measured {
                let values: Vec<f64> = reports.iter().filter_map(figure.read).collect();
                row.push(spread(&values));
            }
            for &i in &ratios {
                let base = &measured[baseline.unwrap_or_default()];
                let values: Vec<f64> = measured[i]
                    .iter()
                    .zip(base)
                    .filter_map(|(ours, theirs)| {
                        Some((figure.read)(ours)? / (figure.read)(theirs)?)
                    })
                    .filter(|ratio| ratio.is_finite())
                    .collect();
                row.push(spread(&values));
            }
            println!("| {} |", row.join(" | "));
        }
    }
}

/// "median (min–max)", or a dash when nothing was measured.
fn spread(values: &[f64]) -> String {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (Some(min), Some(max)) = (sorted.first(), sorted.last()) else {
        return "—".to_owned();
    };
    let middle = sorted.len() / 2;
    let median = if sorted.len() % 2 == 0 {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    };
    if sorted.len() == 1 {
        round(median)
    } else {
        format!("{} ({}–{})", round(median), round(*min), round(*max))
    }
}

/// Three significant figures, enough for figures that vary by a few percent between runs.
fn round(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let digits = (2 - value.abs().log10().floor() as i32).max(0) as usize;
    format!("{value:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_shows_the_median_and_the_range() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), "2.00 (1.00–3.00)");
        assert_eq!(spread(&[10.0, 20.0]), "15.0 (10.0–20.0)");
        assert_eq!(spread(&[]), "—");
    }

    #[test]
    fn figures_are_rounded_to_three_significant_figures() {
        assert_eq!(round(12_345.6), "12346");
        assert_eq!(round(0.1234), "0.123");
        assert_eq!(round(1.5), "1.50");
    }
}
