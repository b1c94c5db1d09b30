//! A benchmark's results: the table printed at the end, the ratios against
//! the peers, and the JSON document written beside it.

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{BenchOptions, InputInfo, Mode};

/// One (job, tool, mode) cell.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellResult {
    /// Standard job name.
    pub job: String,
    /// What the job does.
    pub description: String,
    /// `imgworker`, `libvips` or `imagemagick`.
    pub tool: String,
    /// Whole process or in-process.
    pub mode: Mode,
    /// Every timed job's latency, milliseconds.
    pub samples_ms: Vec<f64>,
    /// Median latency, milliseconds.
    pub median_ms: f64,
    /// 95th percentile latency, milliseconds.
    pub(crate) p95_ms: f64,
    /// Jobs finished per second of wall time (with `concurrency` at once).
    pub jobs_per_s: f64,
    /// Source megapixels processed per second.
    pub megapixels_per_s: f64,
    /// Peak resident memory, MiB: of the child process for whole-process
    /// runs; of the whole benchmark process (which holds the engine, the
    /// source and, on the GPU, the driver) for in-process runs.
    pub peak_rss_mib: f64,
    /// Size of the output the last round wrote, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    /// SSIMULACRA2 score of that output against the same tool's lossless
    /// rendering of the same ops (100 is identical; above 70 is a good
    /// lossy encoding), for jobs with a [reference](super::jobs::StandardJob::reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssimulacra2: Option<f64>,
}

/// A peer's median against imgworker's, same job, same mode.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratio {
    /// Standard job name.
    pub job: String,
    /// The peer.
    pub peer: String,
    /// Whole process or in-process.
    pub mode: Mode,
    /// Peer median / imgworker median: above 1, imgworker is faster.
    pub speedup: f64,
    /// imgworker peak memory / peer peak memory.
    pub(crate) memory_ratio: f64,
}

/// The machine the numbers come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model, from /proc/cpuinfo.
    pub cpu: String,
    /// Cores available to this process.
    pub cores: usize,
    /// The GPU adapter imgworker used, when it used one.
    pub gpu: Option<String>,
    /// `uname -sr`.
    pub kernel: String,
}

impl Machine {
    fn read(gpu: Option<String>) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, v)| v.trim().to_string());
        let kernel = std::process::Command::new("uname")
            .arg("-sr")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        Self {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            gpu,
            kernel,
        }
    }
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// When it ran (UTC, RFC 3339).
    pub date: String,
    /// The command line that produced it.
    pub command: String,
    /// Where it ran.
    pub machine: Machine,
    /// The photo.
    pub input: InputInfo,
    /// imgworker's backend (`cpu` or `gpu`).
    pub backend: String,
    /// Jobs at once, per tool.
    pub concurrency: usize,
    /// Timed rounds.
    pub iterations: usize,
    /// Untimed rounds first.
    pub warmup: usize,
    /// Tool versions.
    pub tools: Vec<(String, String)>,
    /// Per job and tool.
    pub results: Vec<CellResult>,
    /// Per job, peer and mode.
    pub ratios: Vec<Ratio>,
    /// Whole run, seconds.
    pub(crate) elapsed_s: f64,
}

impl Report {
    /// Assemble a report, computing the ratios.
    pub fn new(
        opts: &BenchOptions,
        input: InputInfo,
        backend: &str,
        gpu: Option<String>,
        tools: Vec<(String, String)>,
        results: Vec<CellResult>,
        elapsed: Duration,
    ) -> Self {
        let ratios = ratios(&results);
        Self {
            date: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            machine: Machine::read(gpu),
            input,
            backend: backend.to_string(),
            concurrency: opts.concurrency,
            iterations: opts.iterations,
            warmup: opts.warmup,
            tools,
            results,
            ratios,
            elapsed_s: elapsed.as_secs_f64(),
        }
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} ({}x{}, {:.1} MP), backend {}, concurrency {}, {} timed round(s)\n",
            self.input.path,
            self.input.width,
            self.input.height,
            self.input.megapixels(),
            self.backend,
            self.concurrency,
            self.iterations
        );
        let _ = writeln!(
            s,
            "{:<21} {:<12} {:<10} {:>10} {:>10} {:>8} {:>8} {:>9} {:>9} {:>6}",
            "job",
            "tool",
            "mode",
            "median ms",
            "p95 ms",
            "jobs/s",
            "MP/s",
            "peak MiB",
            "out KiB",
            "ssim2"
        );
        for r in &self.results {
            let kib = r
                .output_bytes
                .map_or("-".to_string(), |b| format!("{:.1}", b as f64 / 1024.0));
            let score = r.ssimulacra2.map_or("-".to_string(), |q| format!("{q:.2}"));
            let _ = writeln!(
                s,
                "{:<21} {:<12} {:<10} {:>10.1} {:>10.1} {:>8.2} {:>8.1} {:>9.1} {kib:>9} {score:>6}",
                r.job,
                r.tool,
                r.mode.name(),
                r.median_ms,
                r.p95_ms,
                r.jobs_per_s,
                r.megapixels_per_s,
                r.peak_rss_mib
            );
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(
                s,
                "\nratios (peer median / imgworker median: above 1 = imgworker faster; memory: imgworker / peer)"
            );
            let _ = writeln!(
                s,
                "{:<21} {:<12} {:<10} {:>8} {:>8}",
                "job", "peer", "mode", "speed", "memory"
            );
            for r in &self.ratios {
                let _ = writeln!(
                    s,
                    "{:<21} {:<12} {:<10} {:>7.2}x {:>7.2}x",
                    r.job,
                    r.peer,
                    r.mode.name(),
                    r.speedup,
                    r.memory_ratio
                );
            }
        }
        s
    }
}

/// Each peer's result against imgworker's for the same job and mode.
pub fn ratios(results: &[CellResult]) -> Vec<Ratio> {
    let mut out = Vec::new();
    for ours in results.iter().filter(|r| r.tool == "imgworker") {
        for peer in results
            .iter()
            .filter(|r| r.tool != "imgworker" && r.job == ours.job && r.mode == ours.mode)
        {
            out.push(Ratio {
                job: ours.job.clone(),
                peer: peer.tool.clone(),
                mode: ours.mode,
                speedup: if ours.median_ms > 0.0 {
                    peer.median_ms / ours.median_ms
                } else {
                    0.0
                },
                memory_ratio: if peer.peak_rss_mib > 0.0 {
                    ours.peak_rss_mib / peer.peak_rss_mib
                } else {
                    0.0
                },
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(tool: &str, mode: Mode, median: f64, mem: f64) -> CellResult {
        CellResult {
            job: "blur-5".into(),
            description: String::new(),
            tool: tool.into(),
            mode,
            samples_ms: vec![median],
            median_ms: median,
            p95_ms: median,
            jobs_per_s: 1000.0 / median,
            megapixels_per_s: 0.0,
            peak_rss_mib: mem,
            output_bytes: None,
            ssimulacra2: None,
        }
    }

    #[test]
    fn ratios_pair_each_peer_with_imgworker_in_the_same_mode() {
        let r = ratios(&[
            cell("imgworker", Mode::InProcess, 50.0, 80.0),
            cell("imgworker", Mode::Process, 200.0, 100.0),
            cell("libvips", Mode::Process, 300.0, 50.0),
            cell("imagemagick", Mode::Process, 100.0, 400.0),
        ]);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0].peer, "libvips");
        assert!((r[0].speedup - 1.5).abs() < 1e-12);
        assert!((r[0].memory_ratio - 2.0).abs() < 1e-12);
        assert!((r[1].speedup - 0.5).abs() < 1e-12);
        assert!((r[1].memory_ratio - 0.25).abs() < 1e-12);
    }
}
