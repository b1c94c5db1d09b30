//! The peers `imgworker bench --compare` runs the same jobs with: command
//! line tools as whole processes (the way a user runs them from a shell),
//! Python libraries in-process (the way a service uses them), and the timing
//! of a child process: wall time, and peak resident memory sampled from
//! `/proc`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::jobs::{self, StandardJob};
use super::BenchError;
use crate::app::memory::vm_hwm_kib;

/// A peer image tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Peer {
    /// The libvips command line (`vips`).
    Vips,
    /// ImageMagick's `convert` (version 6) or `magick` (version 7).
    ImageMagick,
}

impl Peer {
    /// Every peer, in report order.
    pub const ALL: [Peer; 2] = [Peer::Vips, Peer::ImageMagick];

    /// Name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Vips => "libvips",
            Peer::ImageMagick => "imagemagick",
        }
    }

    /// How to install it on Debian.
    pub(crate) fn install_hint(self) -> &'static str {
        match self {
            Peer::Vips => "apt-get install libvips-tools",
            Peer::ImageMagick => "apt-get install imagemagick",
        }
    }

    /// The peer's program and version, or `None` when it is not installed.
    pub(crate) fn detect(self) -> Option<(PathBuf, String)> {
        let candidates: &[&str] = match self {
            Peer::Vips => &["vips"],
            Peer::ImageMagick => &["magick", "convert-im6.q16", "convert"],
        };
        for prog in candidates {
            let Ok(out) = Command::new(prog)
                .arg(if matches!(self, Peer::Vips) {
                    "--version"
                } else {
                    "-version"
                })
                .stdin(Stdio::null())
                .output()
            else {
                continue;
            };
            let text = String::from_utf8_lossy(&out.stdout);
            let first = text.lines().next().unwrap_or("").trim().to_string();
            let genuine = match self {
                Peer::Vips => first.starts_with("vips-"),
                Peer::ImageMagick => first.contains("ImageMagick"),
            };
            if out.status.success() && genuine {
                return Some((PathBuf::from(prog), first));
            }
        }
        None
    }

    /// The commands that do `job` on `input` (a `width` x `height` JPEG,
    /// with the job's other inputs beside it) and write `output`; run one
    /// after another. Intermediate files (libvips' own `.v` format, as a
    /// shell user chains `vips` commands) go in `scratch`. `None` where the
    /// tool has no equivalent of the job.
    pub fn commands(
        self,
        prog: &Path,
        job: StandardJob,
        input: &Path,
        output: &Path,
        scratch: &Path,
        (width, height): (u32, u32),
    ) -> Option<Vec<Vec<String>>> {
        let p = prog.display().to_string();
        let inp = input.display().to_string();
        let out = output.display().to_string();
        let beside = |name: &str| input.with_file_name(name).display().to_string();
        Some(match self {
            Peer::Vips => {
                let q = jobs::JPEG_QUALITY;
                let jpeg = format!("{out}[Q={q},strip]");
                let v = |n: &str| scratch.join(format!("{n}.v")).display().to_string();
                let cmd = |args: &[&str]| {
                    std::iter::once(p.clone())
                        .chain(args.iter().map(|s| s.to_string()))
                        .collect::<Vec<_>>()
                };
                match job {
                    StandardJob::Thumbnail(w) => {
                        vec![cmd(&["thumbnail", &inp, &jpeg, &w.to_string()])]
                    }
                    // heifsave at its defaults but for `Q` (effort 4, 4:2:0
                    // below Q 90).
                    StandardJob::AvifThumbnail(w) => {
                        let avif = format!("{out}[Q={},strip]", jobs::AVIF_QUALITY);
                        vec![cmd(&["thumbnail", &inp, &avif, &w.to_string()])]
                    }
                    StandardJob::PngThumbnail(w) => {
                        let png = format!("{out}[compression=6,strip]");
                        vec![cmd(&["thumbnail", &inp, &png, &w.to_string()])]
                    }
                    StandardJob::ToWebpLossless => {
                        vec![cmd(&["copy", &inp, &format!("{out}[lossless,strip]")])]
                    }
                    StandardJob::ResizeHalf => {
                        vec![cmd(&["resize", &inp, &jpeg, "0.5", "--kernel", "lanczos3"])]
                    }
                    StandardJob::Blur => vec![cmd(&[
                        "gaussblur",
                        &inp,
                        &jpeg,
                        &jobs::BLUR_SIGMA.to_string(),
                    ])],
                    // A textbook unsharp mask on RGB: in + 1.0 * (in - blur(in)).
                    StandardJob::Unsharp => vec![
                        cmd(&["gaussblur", &inp, &v("blur"), "1"]),
                        cmd(&["subtract", &inp, &v("blur"), &v("detail")]),
                        cmd(&["add", &inp, &v("detail"), &v("sum")]),
                        cmd(&["cast", &v("sum"), &jpeg, "uchar"]),
                    ],
                    // Brightness and contrast in one linear step around
                    // mid-grey, saturation on LCh chroma.
                    StandardJob::Colour => {
                        let (c, b) = (jobs::CONTRAST, jobs::BRIGHTNESS * 255.0);
                        let off = b + 128.0 * (1.0 - c);
                        vec![
                            // `--` ends the options: the offset is negative.
                            cmd(&[
                                "linear",
                                "--uchar",
                                "--",
                                &inp,
                                &v("bc"),
                                &c.to_string(),
                                &format!("{off:.3}"),
                            ]),
                            cmd(&["colourspace", &v("bc"), &v("lch"), "lch"]),
                            cmd(&[
                                "linear",
                                &v("lch"),
                                &v("sat"),
                                &format!("1 {} 1", jobs::SATURATION),
                                "0 0 0",
                            ]),
                            cmd(&["colourspace", &v("sat"), &jpeg, "srgb"]),
                        ]
                    }
                    StandardJob::Chain => {
                        let (x, y, w, h) = jobs::chain_crop(width, height);
                        let scale = f64::from(jobs::chain_width(width, height)) / f64::from(h);
                        vec![
                            cmd(&[
                                "crop",
                                &inp,
                                &v("crop"),
                                &x.to_string(),
                                &y.to_string(),
                                &w.to_string(),
                                &h.to_string(),
                            ]),
                            cmd(&["rot", &v("crop"), &v("rot"), "d90"]),
                            cmd(&["resize", &v("rot"), &v("small"), &scale.to_string()]),
                            cmd(&["sharpen", &v("small"), &v("sharp"), "--sigma", "1"]),
                            cmd(&["colourspace", &v("sharp"), &jpeg, "b-w"]),
                        ]
                    }
                    StandardJob::ToWebp => vec![cmd(&[
                        "copy",
                        &inp,
                        &format!("{out}[Q={},strip]", jobs::WEBP_QUALITY),
                    ])],
                    StandardJob::ToPng => {
                        vec![cmd(&["copy", &inp, &format!("{out}[compression=6,strip]")])]
                    }
                    StandardJob::Recode => vec![cmd(&["copy", &inp, &jpeg])],
                    // Paste over, then blend the pasted image with the base
                    // through the mask: the mask's weights, as imgworker's.
                    StandardJob::CompositeMask => {
                        let (x, y, _, _) = jobs::patch_rect(width, height);
                        vec![
                            cmd(&[
                                "composite2",
                                &inp,
                                &beside("patch.png"),
                                &v("pasted"),
                                "over",
                                "--x",
                                &x.to_string(),
                                "--y",
                                &y.to_string(),
                            ]),
                            // composite2 adds an alpha band.
                            cmd(&["extract_band", &v("pasted"), &v("rgb"), "0", "--n", "3"]),
                            cmd(&[
                                "ifthenelse",
                                &beside("mask.png"),
                                &v("rgb"),
                                &inp,
                                &jpeg,
                                "--blend",
                            ]),
                        ]
                    }
                    // libvips has no 3D LUT operation.
                    StandardJob::Lut => return None,
                    StandardJob::LevelsCurves => {
                        vec![cmd(&["maplut", &inp, &jpeg, &beside("levels-curves.png")])]
                    }
                    StandardJob::SmartCrop(side) => vec![cmd(&[
                        "thumbnail",
                        &inp,
                        &jpeg,
                        &side.to_string(),
                        "--height",
                        &side.to_string(),
                        "--crop",
                        "attention",
                    ])],
                }
            }
            Peer::ImageMagick => {
                let mut args: Vec<String> = vec![p, inp];
                let mut push = |s: &[&str]| args.extend(s.iter().map(|s| s.to_string()));
                match job {
                    // AVIF through libheif, at its encoder's defaults.
                    StandardJob::Thumbnail(w)
                    | StandardJob::PngThumbnail(w)
                    | StandardJob::AvifThumbnail(w) => push(&["-thumbnail", &format!("{w}x")]),
                    StandardJob::ToWebpLossless => push(&["-define", "webp:lossless=true"]),
                    StandardJob::ResizeHalf => push(&["-filter", "Lanczos", "-resize", "50%"]),
                    // `-blur` is ImageMagick's separable Gaussian (its
                    // `-gaussian-blur` is a full 2D kernel, some 25 times
                    // slower at sigma 5): the one a user picks for speed.
                    StandardJob::Blur => push(&["-blur", &format!("0x{}", jobs::BLUR_SIGMA)]),
                    StandardJob::Unsharp => push(&["-unsharp", "0x1+1+0"]),
                    StandardJob::Colour => {
                        push(&["-brightness-contrast", "5x10", "-modulate", "100,120"])
                    }
                    StandardJob::Chain => {
                        let (x, y, w, h) = jobs::chain_crop(width, height);
                        push(&[
                            "-crop",
                            &format!("{w}x{h}+{x}+{y}"),
                            "+repage",
                            "-rotate",
                            "90",
                            "-resize",
                            &format!("{}x", jobs::chain_width(width, height)),
                            "-unsharp",
                            "0x1+0.6+0",
                            "-colorspace",
                            "Gray",
                        ])
                    }
                    StandardJob::ToWebp | StandardJob::ToPng | StandardJob::Recode => {}
                    // The base, the base with the patch pasted, the mask:
                    // a three-image composite blends through the mask.
                    StandardJob::CompositeMask => {
                        let (x, y, _, _) = jobs::patch_rect(width, height);
                        push(&[
                            "(",
                            "+clone",
                            &beside("patch.png"),
                            "-geometry",
                            &format!("+{x}+{y}"),
                            "-composite",
                            ")",
                            &beside("mask.png"),
                            "-geometry",
                            "+0+0",
                            "-composite",
                        ])
                    }
                    StandardJob::LevelsCurves => push(&[&beside("levels-curves.png"), "-clut"]),
                    // No 3D LUT without a Hald image, no attention crop.
                    StandardJob::Lut | StandardJob::SmartCrop(_) => return None,
                }
                push(&["-strip"]);
                match job.quality() {
                    Some(q) => push(&["-quality", &q.to_string()]),
                    // PNG: the tens digit is the zlib level, 5 adaptive filtering.
                    None => push(&["-quality", "65"]),
                }
                push(&[&out]);
                vec![args]
            }
        })
    }
}

/// A Python image library timed in-process: a child Python runs the job
/// once untimed, then once timed, and reports that run's time
/// (`src/bench/peer.py`). Start-up and imports are outside the timing, as
/// they are for imgworker's in-process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Library {
    /// Pillow, PyPI's wheel.
    Pillow,
    /// Pillow-SIMD, built from source (same API, SIMD resampling and filters).
    PillowSimd,
    /// pyvips, libvips' Python binding (libvips on all cores).
    Pyvips,
}

/// The script the library peers run.
pub(crate) const PEER_SCRIPT: &str = include_str!("peer.py");

impl Library {
    /// Every library, in report order.
    pub const ALL: [Library; 3] = [Library::Pyvips, Library::Pillow, Library::PillowSimd];

    /// Name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Library::Pillow => "pillow",
            Library::PillowSimd => "pillow-simd",
            Library::Pyvips => "pyvips",
        }
    }

    /// The virtualenv under the peers folder that holds it
    /// (`scripts/bench-peers.sh` makes them).
    pub fn venv(self) -> &'static str {
        match self {
            Library::Pillow | Library::Pyvips => "pillow",
            Library::PillowSimd => "pillow-simd",
        }
    }

    /// Its Python and version, or `None` when it is not installed under
    /// `root`.
    pub(crate) fn detect(self, root: &Path) -> Option<(PathBuf, String)> {
        let python = root.join(self.venv()).join("bin/python");
        let probe = match self {
            Library::Pyvips => {
                "import pyvips; print('pyvips', pyvips.__version__, 'libvips', pyvips.version(0), pyvips.version(1), pyvips.version(2))"
            }
            _ => "import PIL; print('Pillow', PIL.__version__)",
        };
        let out = Command::new(&python)
            .args(["-c", probe])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let text = match self {
            Library::PillowSimd => text.replace("Pillow", "Pillow-SIMD"),
            _ => text,
        };
        (out.status.success() && !text.is_empty()).then_some((python, text))
    }

    /// The job as `peer.py` reads it, for a `width` x `height` source;
    /// `None` where the library has no equivalent.
    pub fn spec(self, job: StandardJob, (width, height): (u32, u32)) -> Option<serde_json::Value> {
        use serde_json::json;
        let pyvips = self == Library::Pyvips;
        let mut spec = match job {
            StandardJob::Thumbnail(w) | StandardJob::PngThumbnail(w) => {
                json!({"job": "thumbnail", "width": w})
            }
            // Pillow has no AVIF encoder without a plugin.
            StandardJob::AvifThumbnail(w) if pyvips => json!({"job": "thumbnail", "width": w}),
            StandardJob::AvifThumbnail(_) => return None,
            StandardJob::ToWebpLossless => json!({"job": "convert", "lossless": true}),
            StandardJob::ResizeHalf => json!({"job": "resize-half"}),
            StandardJob::Blur => json!({"job": "blur", "sigma": jobs::BLUR_SIGMA}),
            StandardJob::Unsharp => json!({"job": "unsharp"}),
            StandardJob::Colour => json!({"job": "colour", "brightness": jobs::BRIGHTNESS,
                "contrast": jobs::CONTRAST, "saturation": jobs::SATURATION}),
            StandardJob::Chain => {
                let (x, y, w, h) = jobs::chain_crop(width, height);
                json!({"job": "chain", "crop": [x, y, w, h],
                    "width": jobs::chain_width(width, height)})
            }
            StandardJob::ToWebp | StandardJob::ToPng | StandardJob::Recode => {
                json!({"job": "convert"})
            }
            StandardJob::CompositeMask => {
                let (x, y, _, _) = jobs::patch_rect(width, height);
                json!({"job": "composite-mask", "x": x, "y": y})
            }
            // Pillow's Color3DLUT; libvips has none.
            StandardJob::Lut if pyvips => return None,
            StandardJob::Lut => json!({"job": "lut"}),
            StandardJob::LevelsCurves => json!({"job": "maplut"}),
            // Pillow has no attention crop.
            StandardJob::SmartCrop(side) if pyvips => json!({"job": "smartcrop", "width": side}),
            StandardJob::SmartCrop(_) => return None,
        };
        spec["format"] = json!(job.format().ext());
        spec["quality"] = json!(job.quality());
        Some(spec)
    }

    /// The command that runs `job` once untimed (imports, first-use
    /// set-up, caches) and once timed.
    pub fn command(
        self,
        python: &Path,
        script: &Path,
        job: StandardJob,
        input: &Path,
        output: &Path,
        dims: (u32, u32),
    ) -> Option<Vec<String>> {
        let lib = match self {
            Library::Pyvips => "pyvips",
            _ => "pillow",
        };
        Some(vec![
            python.display().to_string(),
            script.display().to_string(),
            lib.into(),
            self.spec(job, dims)?.to_string(),
            input.display().to_string(),
            output.display().to_string(),
            "1".into(),
        ])
    }
}

/// Run `f` on every item at once, one thread each, and collect the results
/// in order; a thread that panicked is an error.
pub(crate) fn each_on_a_thread<I: Sync, T: Send>(
    items: &[I],
    f: impl Fn(&I) -> Result<T, BenchError> + Sync,
) -> Vec<Result<T, BenchError>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .iter()
            .map(|item| {
                let f = &f;
                s.spawn(move || f(item))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(BenchError::Tool("a runner thread panicked".into())))
            })
            .collect()
    })
}

/// Run library peers' commands at once, one thread each: each one's timed
/// run as it reports it, and the batch's largest peak RSS. The batch's wall
/// time is the longest timed run (start-up and warm-up are not the job's).
pub(crate) fn run_in_process(
    cmds: &[Vec<String>],
) -> Result<(Vec<Duration>, Measured), BenchError> {
    let results = each_on_a_thread(cmds, |argv| run_process_capture(argv, &[]));
    let mut lat = Vec::with_capacity(results.len());
    let mut peak = 0;
    for r in results {
        let (m, stdout) = r?;
        let ms = stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["ms"].as_f64())
            .ok_or_else(|| {
                BenchError::Tool(format!("a library peer printed no timing: {stdout}"))
            })?;
        lat.push(Duration::from_secs_f64(ms / 1e3));
        peak = peak.max(m.peak_rss);
    }
    let wall = lat.iter().copied().max().unwrap_or_default();
    Ok((
        lat,
        Measured {
            wall,
            peak_rss: peak,
        },
    ))
}

/// Wall time and peak resident memory of some work.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Measured {
    /// Wall-clock time.
    pub wall: Duration,
    /// Peak resident set size, bytes.
    pub(crate) peak_rss: u64,
}

/// Run commands one after another (each must exit 0); their total wall time
/// and the largest peak RSS of any of them.
pub(crate) fn run_commands(
    cmds: &[Vec<String>],
    env: &[(&str, &str)],
) -> Result<Measured, BenchError> {
    let mut total = Measured::default();
    for argv in cmds {
        let m = run_process(argv, env)?;
        total.wall += m.wall;
        total.peak_rss = total.peak_rss.max(m.peak_rss);
    }
    Ok(total)
}

/// Run one process to completion: its wall time and peak RSS.
pub(crate) fn run_process(argv: &[String], env: &[(&str, &str)]) -> Result<Measured, BenchError> {
    run_process_capture(argv, env).map(|(m, _)| m)
}

/// Run one process to completion: its wall time, its peak RSS, and what it
/// printed on stdout.
pub(crate) fn run_process_capture(
    argv: &[String],
    env: &[(&str, &str)],
) -> Result<(Measured, String), BenchError> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| BenchError::Tool("empty command".into()))?;
    let started = Instant::now();
    let mut child = Command::new(prog)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BenchError::Tool(format!("cannot start {prog}: {e}")))?;
    // Read both pipes on threads so a chatty child cannot block on a full one.
    fn drain(pipe: Option<impl std::io::Read + Send + 'static>) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut s);
            }
            s
        })
    }
    let reader = drain(child.stderr.take());
    let out_reader = drain(child.stdout.take());
    let pid = child.id() as libc::pid_t;
    // The child's own high-water mark, sampled from /proc while it runs:
    // `wait4`'s ru_maxrss cannot be used, because exec records the forking
    // parent's peak (this process's) into it.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            let mut peak = 0u64;
            while !done.load(Ordering::Relaxed) {
                if let Some(kb) = std::fs::read_to_string(&path)
                    .ok()
                    .as_deref()
                    .and_then(vm_hwm_kib)
                {
                    peak = peak.max(kb * 1024);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        })
    };
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet reaped (std's Child is not
    // waited on, and dropping it does not reap).
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let peak_rss = sampler.join().unwrap_or(0);
    let err_text = reader.join().unwrap_or_default();
    let out_text = out_reader.join().unwrap_or_default();
    if rc != pid {
        return Err(BenchError::Tool(format!(
            "waiting for {prog} failed: {}",
            std::io::Error::last_os_error()
        )));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let tail: String = err_text
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(BenchError::Tool(format!(
            "{} failed (status {status}): {tail}",
            argv.join(" ")
        )));
    }
    Ok((Measured { wall, peak_rss }, out_text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_s_wall_time_and_peak_memory_are_measured() {
        // `sleep` is tiny: the peak is positive and far below 100 MiB
        // (this test process's own RSS, which wait4 would report, is not).
        let m = run_process(&["sleep".into(), "0.2".into()], &[]).unwrap();
        assert!(m.wall >= Duration::from_millis(190), "{m:?}");
        assert!(m.peak_rss > 0 && m.peak_rss < 100 << 20, "{m:?}");
        // A child that allocates and touches 200 MiB reports at least that.
        let big = run_process(
            &[
                "python3".into(),
                "-c".into(),
                "import time; b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.1)".into(),
            ],
            &[],
        )
        .unwrap();
        assert!(big.peak_rss >= 200 << 20, "{big:?}");
        let e = run_process(&["false".into()], &[]).unwrap_err();
        assert!(e.to_string().contains("failed"), "{e}");
    }
}
