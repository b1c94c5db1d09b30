//! `imgworker bench`: the standard job set on real photographs, timed for
//! imgworker (in-process and as a whole process, like a shell user runs it)
//! and, with `--compare`, for libvips and ImageMagick (whole process) and
//! pyvips, Pillow and Pillow-SIMD (in-process) in the same run, alternating
//! tool by tool so that machine noise falls on all of them alike.
//!
//! - [`jobs`]: the standard jobs and their imgworker ops.
//! - [`peers`]: the peer tools' commands, and timing a child process.
//! - [`report`]: the summary table, the ratios and the JSON document.
//! - [`chart`]: the SVG chart of a report.
//!
//! Only with the `bench` cargo feature (on by default): a worker built with
//! `--no-default-features` leaves the runner and its dependencies out.
//!
//! (Over 600 lines: the run loop, its alternation and its memory
//! measurement are one procedure whose fairness is easier to check in one
//! place.)

#![cfg(feature = "bench")]

pub mod chart;
pub mod jobs;
pub mod kernels;
pub mod peers;
pub mod report;
pub mod stats;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::app::memory::{peak_rss_bytes, reset_peak_rss};
use crate::backend::{Backend, BackendChoice};
use crate::config::WorkerConfig;
use crate::pipeline::Engine;
use crate::result::Status;
use crate::storage::MemoryStorage;
use jobs::StandardJob;
use peers::{Library, Measured, Peer};
use report::{CellResult, Report};

/// A benchmark that could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The input photo is missing or unreadable.
    #[error("input photo: {0}")]
    Input(String),
    /// A tool failed or could not start.
    #[error("{0}")]
    Tool(String),
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
    /// Writing a report failed.
    #[error("writing {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

/// How a tool is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A new process per job, start-up included (`imgworker run`, `vips`,
    /// `convert`).
    Process,
    /// Jobs run one after another in one long-lived process (the worker's
    /// case): no start-up, device set up once outside the timing.
    InProcess,
}

impl Mode {
    /// Name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Process => "process",
            Mode::InProcess => "in-process",
        }
    }
}

/// What runs a job: imgworker or a peer, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tool {
    /// imgworker's engine inside this process.
    ImgworkerInProcess,
    /// `imgworker run` (this binary) as a child process.
    ImgworkerProcess(PathBuf),
    /// A peer's command line.
    Peer(Peer, PathBuf),
    /// A Python library, in-process (its Python).
    Library(Library, PathBuf),
}

impl Tool {
    /// Name in tables and JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Tool::ImgworkerInProcess | Tool::ImgworkerProcess(_) => "imgworker",
            Tool::Peer(p, _) => p.name(),
            Tool::Library(l, _) => l.name(),
        }
    }

    /// How it runs.
    pub fn mode(&self) -> Mode {
        match self {
            Tool::ImgworkerInProcess | Tool::Library(..) => Mode::InProcess,
            _ => Mode::Process,
        }
    }
}

/// Settings of one benchmark run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The photo every job reads (a JPEG).
    pub input: PathBuf,
    /// imgworker's backend.
    pub backend: BackendChoice,
    /// Jobs run at once, per tool.
    pub concurrency: usize,
    /// Timed rounds (each runs every job once per tool, `concurrency` at once).
    pub iterations: usize,
    /// Untimed rounds first (caches, page faults, GPU pipelines).
    pub warmup: usize,
    /// The jobs to run (all when empty).
    pub jobs: Vec<StandardJob>,
    /// Which modes to time imgworker in.
    pub modes: Vec<Mode>,
    /// Run the peers as well: libvips and ImageMagick (required), and the
    /// Python libraries found under `peers_dir` (in-process mode).
    pub compare: bool,
    /// Where `scripts/bench-peers.sh` put the Python libraries' virtualenvs.
    pub peers_dir: PathBuf,
    /// The `imgworker` binary for whole-process runs.
    pub binary: PathBuf,
    /// Show a progress bar (on a terminal) or progress lines.
    pub progress: bool,
    /// Keep each tool's last output of each job here
    /// (`{job}.{tool}-{mode}.{ext}`), to compare them by eye.
    pub outputs: Option<PathBuf>,
}

/// The source photo's facts.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InputInfo {
    /// Path as given.
    pub path: String,
    /// Pixels across.
    pub width: u32,
    /// Pixels down.
    pub height: u32,
    /// File size.
    pub bytes: u64,
}

impl InputInfo {
    /// Megapixels.
    pub(crate) fn megapixels(&self) -> f64 {
        f64::from(self.width) * f64::from(self.height) / 1e6
    }
}

fn probe_input(path: &Path) -> Result<(InputInfo, Vec<u8>), BenchError> {
    let bytes = std::fs::read(path).map_err(|e| {
        BenchError::Input(format!(
            "cannot read {}: {e} (scripts/fetch-photos.sh fetches the standard photos)",
            path.display()
        ))
    })?;
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| BenchError::Input(e.to_string()))?;
    if reader.format() != Some(image::ImageFormat::Jpeg) {
        return Err(BenchError::Input(format!(
            "{} is not a JPEG (the standard jobs start from a JPEG photo)",
            path.display()
        )));
    }
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| BenchError::Input(format!("{}: {e}", path.display())))?;
    Ok((
        InputInfo {
            path: path.display().to_string(),
            width,
            height,
            bytes: bytes.len() as u64,
        },
        bytes,
    ))
}

/// Everything the runs share.
struct Bench {
    opts: BenchOptions,
    input: InputInfo,
    engine: Engine,
    storage: Arc<MemoryStorage>,
    runtime: tokio::runtime::Runtime,
    /// Folder of the whole-process runs: the imgworker storage
    /// (`bench/photo/original.jpg`), peer outputs and intermediates.
    work: tempfile::TempDir,
    backend_name: &'static str,
}

const IMAGE: &str = "bench/photo";

impl Bench {
    fn source_in_work(&self) -> PathBuf {
        self.work.path().join(IMAGE).join("original.jpg")
    }

    /// The folder of a peer's `i`-th concurrent run: its output and
    /// intermediates.
    fn scratch(&self, tool: &Tool, i: usize) -> PathBuf {
        self.work.path().join(format!("{}-{i}", tool.name()))
    }

    /// A peer's `i`-th concurrent run's folder, made, and its output file
    /// for `job`.
    fn peer_files(
        &self,
        tool: &Tool,
        job: StandardJob,
        i: usize,
    ) -> Result<(PathBuf, PathBuf), BenchError> {
        let scratch = self.scratch(tool, i);
        std::fs::create_dir_all(&scratch).map_err(|e| BenchError::Write(scratch.clone(), e))?;
        let out = scratch.join(format!("out.{}", job.format().ext()));
        Ok((scratch, out))
    }

    /// Copy the output of the batch just run to the `--outputs` folder.
    fn keep_output(&self, tool: &Tool, job: StandardJob, dir: &Path) -> Result<(), BenchError> {
        let e = job.format().ext();
        let bytes = self.output(tool, job)?;
        let to = dir.join(format!(
            "{}.{}-{}.{e}",
            job.name(),
            tool.name(),
            tool.mode().name()
        ));
        std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&to, bytes))
            .map_err(|err| BenchError::Write(to, err))
    }

    /// The SSIMULACRA2 score of `output` (the bytes `tool` wrote for `job`)
    /// against `tool`'s own lossless rendering of `job`'s reference (run
    /// now, untimed).
    fn score(
        &self,
        tool: &Tool,
        reference: StandardJob,
        output: &[u8],
        round: usize,
    ) -> Result<f64, BenchError> {
        self.batch(tool, reference, round)?;
        let lossless = self.output(tool, reference)?;
        let lim = crate::config::Limits::default();
        let decode = |bytes: &[u8], what: &str| -> Result<image::RgbaImage, BenchError> {
            crate::codec::SourceImage::open(bytes, &lim)
                .and_then(|s| s.decode())
                .map(|d| d.img)
                .map_err(|e| BenchError::Tool(format!("{} {what}: {e}", tool.name())))
        };
        let (a, b) = (decode(&lossless, "reference")?, decode(output, "output")?);
        if a.dimensions() != b.dimensions() {
            return Err(BenchError::Tool(format!(
                "{}: its reference is {:?}, its output {:?}",
                tool.name(),
                a.dimensions(),
                b.dimensions()
            )));
        }
        let rgb = |img: &image::RgbaImage| {
            let data = img
                .pixels()
                .map(|p| [0, 1, 2].map(|c| f32::from(p[c]) / 255.0))
                .collect();
            ssimulacra2::Rgb::new(
                data,
                img.width() as usize,
                img.height() as usize,
                ssimulacra2::TransferCharacteristic::SRGB,
                ssimulacra2::ColorPrimaries::BT709,
            )
            .map_err(|e| BenchError::Tool(format!("SSIMULACRA2 input: {e}")))
        };
        ssimulacra2::compute_frame_ssimulacra2(rgb(&a)?, rgb(&b)?)
            .map_err(|e| BenchError::Tool(format!("SSIMULACRA2: {e}")))
    }

    /// The output of the batch just run with `tool` (its first job's).
    fn output(&self, tool: &Tool, job: StandardJob) -> Result<Vec<u8>, BenchError> {
        let e = job.format().ext();
        Ok(match tool {
            Tool::ImgworkerInProcess => self
                .storage
                .object(&format!("{IMAGE}/out.{e}"))
                .ok_or_else(|| BenchError::Tool("imgworker wrote no output".into()))?,
            Tool::ImgworkerProcess(_) => {
                let p = self.work.path().join(IMAGE).join(format!("out0.{e}"));
                std::fs::read(&p).map_err(|err| BenchError::Write(p, err))?
            }
            Tool::Peer(..) | Tool::Library(..) => {
                let p = self.scratch(tool, 0).join(format!("out.{e}"));
                std::fs::read(&p).map_err(|err| BenchError::Write(p, err))?
            }
        })
    }

    /// Run one batch of `concurrency` jobs with `tool`: each job's latency
    /// and the batch's wall time and peak memory.
    fn batch(
        &self,
        tool: &Tool,
        job: StandardJob,
        round: usize,
    ) -> Result<(Vec<Duration>, Measured), BenchError> {
        let n = self.opts.concurrency;
        let (w, h) = (self.input.width, self.input.height);
        match tool {
            Tool::ImgworkerInProcess => {
                let bodies = |tag: &str| -> Vec<Vec<u8>> {
                    (0..n)
                        .map(|i| {
                            let id = format!("bench-{round}-{tag}{i}");
                            serde_json::to_vec(&job.message(&id, IMAGE, w, h))
                                .expect("a job message serialises")
                        })
                        .collect()
                };
                // The same job once untimed first, as the Python peers do
                // (src/bench/peer.py): each timed run follows a run of its
                // own job, not whatever the other tools ran in between.
                self.runtime.block_on(async {
                    // A worker hands its outputs to storage and forgets
                    // them: drop the last job's, so that this process's
                    // peak memory is the job's and not the objects' too.
                    use crate::storage::Storage;
                    let outputs = format!("{IMAGE}/out");
                    for key in self
                        .storage
                        .keys()
                        .into_iter()
                        .filter(|k| k.starts_with(&outputs))
                    {
                        let _ = self.storage.delete(&key).await;
                    }
                    for body in bodies("w") {
                        self.engine.run(&body, 1).await;
                    }
                });
                let bodies = bodies("");
                reset_peak_rss();
                let started = Instant::now();
                let outcomes = self.runtime.block_on(async {
                    let tasks: Vec<_> = bodies
                        .into_iter()
                        .map(|body| {
                            let engine = self.engine.clone();
                            tokio::spawn(async move {
                                let t = Instant::now();
                                let out = engine.run(&body, 1).await;
                                (t.elapsed(), out)
                            })
                        })
                        .collect();
                    let mut done = Vec::with_capacity(tasks.len());
                    for t in tasks {
                        done.push(t.await);
                    }
                    done
                });
                let wall = started.elapsed();
                let mut lat = Vec::with_capacity(n);
                for o in outcomes {
                    let (t, out) = o.map_err(|e| BenchError::Tool(format!("job task: {e}")))?;
                    if out.result.status != Status::Succeeded {
                        let why = out.result.error.map(|e| e.message).unwrap_or_default();
                        return Err(BenchError::Tool(format!(
                            "imgworker failed {}: {why}",
                            job.name()
                        )));
                    }
                    lat.push(t);
                }
                Ok((
                    lat,
                    Measured {
                        wall,
                        peak_rss: peak_rss_bytes().unwrap_or(0),
                    },
                ))
            }
            Tool::ImgworkerProcess(bin) => {
                let mut cmds = Vec::with_capacity(n);
                for i in 0..n {
                    let file = self
                        .work
                        .path()
                        .join(format!("job-{}-{i}.json", job.name()));
                    let mut msg = job.message(&format!("bench-{round}-{i}"), IMAGE, w, h);
                    // Concurrent runs write versions of their own.
                    msg["outputs"][0]["version"] = format!("out{i}").into();
                    std::fs::write(&file, serde_json::to_vec(&msg).expect("serialises"))
                        .map_err(|e| BenchError::Write(file.clone(), e))?;
                    cmds.push(vec![
                        bin.display().to_string(),
                        "run".into(),
                        file.display().to_string(),
                        "--storage".into(),
                        self.work.path().display().to_string(),
                        "--backend".into(),
                        self.backend_name.into(),
                    ]);
                }
                parallel(
                    cmds.into_iter().map(|c| vec![c]).collect(),
                    &[("IMGWORKER_LOG", "warn")],
                )
            }
            // libvips would use every core for one job; so would
            // ImageMagick's OpenMP: the default, as a user runs them.
            Tool::Peer(peer, prog) => {
                let src = self.source_in_work();
                let lists = (0..n)
                    .map(|i| {
                        let (scratch, out) = self.peer_files(tool, job, i)?;
                        peer.commands(prog, job, &src, &out, &scratch, (w, h))
                            .ok_or_else(|| unsupported(tool, job))
                    })
                    .collect::<Result<Vec<_>, BenchError>>()?;
                parallel(lists, &[])
            }
            Tool::Library(lib, python) => {
                let src = self.source_in_work();
                let script = self.work.path().join("peer.py");
                let cmds = (0..n)
                    .map(|i| {
                        let (_, out) = self.peer_files(tool, job, i)?;
                        lib.command(python, &script, job, &src, &out, (w, h))
                            .ok_or_else(|| unsupported(tool, job))
                    })
                    .collect::<Result<Vec<_>, BenchError>>()?;
                peers::run_in_process(&cmds)
            }
        }
    }
}

fn unsupported(tool: &Tool, job: StandardJob) -> BenchError {
    BenchError::Tool(format!(
        "{} has no equivalent of {}",
        tool.name(),
        job.name()
    ))
}

impl Tool {
    /// Whether the tool has an equivalent of `job` (imgworker runs every
    /// job; a peer may have none: libvips has no 3D LUT).
    fn supports(&self, job: StandardJob) -> bool {
        let p = Path::new("x");
        match self {
            Tool::ImgworkerInProcess | Tool::ImgworkerProcess(_) => true,
            Tool::Peer(peer, prog) => peer.commands(prog, job, p, p, p, (64, 48)).is_some(),
            Tool::Library(lib, _) => lib.spec(job, (64, 48)).is_some(),
        }
    }
}

/// Run command lists at once, one thread each: each list's wall time, and
/// the batch's wall time and largest peak RSS.
fn parallel(
    lists: Vec<Vec<Vec<String>>>,
    env: &[(&str, &str)],
) -> Result<(Vec<Duration>, Measured), BenchError> {
    let started = Instant::now();
    let results = peers::each_on_a_thread(&lists, |cmds| peers::run_commands(cmds, env));
    let wall = started.elapsed();
    let mut lat = Vec::with_capacity(results.len());
    let mut peak = 0;
    for r in results {
        let m = r?;
        lat.push(m.wall);
        peak = peak.max(m.peak_rss);
    }
    Ok((
        lat,
        Measured {
            wall,
            peak_rss: peak,
        },
    ))
}

/// Accumulates one (job, tool) cell's samples.
#[derive(Default)]
struct Cell {
    latencies_ms: Vec<f64>,
    batch_wall: Duration,
    jobs: usize,
    peak_rss: u64,
    output_bytes: Option<u64>,
    ssimulacra2: Option<f64>,
}

/// Run the benchmark; progress goes to stderr.
pub fn run(opts: BenchOptions) -> Result<Report, BenchError> {
    if opts.concurrency == 0 || opts.iterations == 0 {
        return Err(BenchError::Config(
            "--concurrency and --iterations must be at least 1".into(),
        ));
    }
    let (input, bytes) = probe_input(&opts.input)?;
    let backend = Backend::select(opts.backend)
        .map_err(|e| BenchError::Config(crate::error::with_cause(&e)))?;
    let backend_name = backend.name();
    let gpu_name = match &backend {
        Backend::Gpu(g) => Some(g.adapter_name().to_string()),
        Backend::Cpu => None,
    };
    let storage = Arc::new(MemoryStorage::new());
    storage.insert(&format!("{IMAGE}/original.jpg"), bytes.clone());
    let jobs = if opts.jobs.is_empty() {
        jobs::ALL.to_vec()
    } else {
        opts.jobs.clone()
    };
    // The jobs' other inputs (a patch and its mask, a LUT), beside the
    // source for imgworker and the peers alike.
    let mut extra: Vec<(&str, Vec<u8>)> = Vec::new();
    for job in &jobs {
        extra.extend(job.inputs(input.width, input.height));
    }
    for (name, data) in &extra {
        storage.insert(&format!("{IMAGE}/{name}"), data.clone());
    }
    let engine = Engine::new(WorkerConfig::new(), storage.clone(), backend);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| BenchError::Config(format!("async runtime: {e}")))?;
    let work = tempfile::Builder::new()
        .prefix("imgworker-bench-")
        .tempdir_in(if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        })
        .map_err(|e| BenchError::Config(format!("work folder: {e}")))?;
    let bench = Bench {
        opts: opts.clone(),
        input,
        engine,
        storage,
        runtime,
        work,
        backend_name,
    };
    let src = bench.source_in_work();
    std::fs::create_dir_all(src.parent().expect("has a parent"))
        .and_then(|_| std::fs::write(&src, &bytes))
        .map_err(|e| BenchError::Write(src.clone(), e))?;
    for (name, data) in &extra {
        let path = src.with_file_name(name);
        std::fs::write(&path, data).map_err(|e| BenchError::Write(path, e))?;
    }

    let mut tools = Vec::new();
    if opts.modes.contains(&Mode::InProcess) {
        tools.push(Tool::ImgworkerInProcess);
    }
    if opts.modes.contains(&Mode::Process) {
        tools.push(Tool::ImgworkerProcess(opts.binary.clone()));
    }
    let mut versions = vec![(
        "imgworker".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    )];
    if opts.compare {
        for p in Peer::ALL {
            match p.detect() {
                Some((prog, version)) => {
                    versions.push((p.name().to_string(), version));
                    tools.push(Tool::Peer(p, prog));
                }
                None => {
                    return Err(BenchError::Tool(format!(
                        "--compare needs {} ({})",
                        p.name(),
                        p.install_hint()
                    )))
                }
            }
        }
        if opts.modes.contains(&Mode::InProcess) {
            let script = bench.work.path().join("peer.py");
            std::fs::write(&script, peers::PEER_SCRIPT)
                .map_err(|e| BenchError::Write(script.clone(), e))?;
            for lib in Library::ALL {
                match lib.detect(&opts.peers_dir) {
                    Some((python, version)) => {
                        versions.push((lib.name().to_string(), version));
                        tools.push(Tool::Library(lib, python));
                    }
                    None => eprintln!(
                        "note: {} is not installed under {}; scripts/bench-peers.sh installs it \
                         (Pillow-SIMD only where it builds)",
                        lib.name(),
                        opts.peers_dir.display()
                    ),
                }
            }
        }
    }
    let rounds = opts.warmup + opts.iterations;
    let pairs = jobs
        .iter()
        .map(|j| tools.iter().filter(|t| t.supports(*j)).count())
        .sum::<usize>();
    let total = (rounds * pairs) as u64;
    let bar = if opts.progress && std::io::stderr().is_terminal() {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let lines = opts.progress && bar.is_hidden();

    let mut cells: Vec<Vec<Cell>> = jobs
        .iter()
        .map(|_| tools.iter().map(|_| Cell::default()).collect())
        .collect();
    let started = Instant::now();
    for round in 0..rounds {
        let timed = round >= opts.warmup;
        for (ji, job) in jobs.iter().enumerate() {
            // Rotate the tools' order every round: no tool always runs
            // first (cold) or right after the heaviest one.
            for k in 0..tools.len() {
                let ti = (k + round) % tools.len();
                let tool = &tools[ti];
                if !tool.supports(*job) {
                    continue;
                }
                bar.set_message(format!(
                    "{} / {} ({})",
                    job.name(),
                    tool.name(),
                    tool.mode().name()
                ));
                let (lat, m) = bench.batch(tool, *job, round)?;
                bar.inc(1);
                if round + 1 == rounds {
                    if let Some(dir) = &opts.outputs {
                        bench.keep_output(tool, *job, dir)?;
                    }
                    // The output's size, and its quality where the job has
                    // a lossless reference (after the timing: the
                    // reference run overwrites nothing the timing reads).
                    let out = bench.output(tool, *job)?;
                    let c = &mut cells[ji][ti];
                    c.output_bytes = Some(out.len() as u64);
                    if let Some(reference) = job.reference() {
                        c.ssimulacra2 = Some(bench.score(tool, reference, &out, round)?);
                    }
                }
                if timed {
                    let c = &mut cells[ji][ti];
                    c.latencies_ms
                        .extend(lat.iter().map(|d| d.as_secs_f64() * 1e3));
                    c.batch_wall += m.wall;
                    c.jobs += lat.len();
                    c.peak_rss = c.peak_rss.max(m.peak_rss);
                }
            }
            if lines {
                eprintln!(
                    "round {}/{rounds}{} {:<14} done ({:.0} s)",
                    round + 1,
                    if timed { "" } else { " (warm-up)" },
                    job.name(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    bar.finish_and_clear();

    let mp = bench.input.megapixels();
    let mut results = Vec::new();
    for (ji, job) in jobs.iter().enumerate() {
        for (ti, tool) in tools.iter().enumerate() {
            if !tool.supports(*job) {
                continue;
            }
            let c = &cells[ji][ti];
            let secs = c.batch_wall.as_secs_f64();
            let jobs_per_s = if secs > 0.0 {
                c.jobs as f64 / secs
            } else {
                0.0
            };
            results.push(CellResult {
                job: job.name(),
                description: job.describe(),
                tool: tool.name().to_string(),
                mode: tool.mode(),
                samples_ms: c.latencies_ms.clone(),
                median_ms: stats::median(&c.latencies_ms).unwrap_or(0.0),
                p95_ms: stats::percentile(&c.latencies_ms, 95.0).unwrap_or(0.0),
                jobs_per_s,
                megapixels_per_s: jobs_per_s * mp,
                peak_rss_mib: c.peak_rss as f64 / (1 << 20) as f64,
                output_bytes: c.output_bytes,
                ssimulacra2: c.ssimulacra2,
            });
        }
    }
    Ok(Report::new(
        &opts,
        bench.input.clone(),
        backend_name,
        gpu_name,
        versions,
        results,
        started.elapsed(),
    ))
}
