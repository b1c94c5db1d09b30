//! Recording a job's op chain as compute dispatches on device buffers.
//!
//! The source is uploaded once. Each op records its own dispatches (its
//! `Operation::record_gpu`) through [`Recorder::kernel`]: one device buffer
//! in, a new one out, with the op's typed uniform. The shared result stays
//! on the GPU for every output's trailing ops. Each output is downloaded
//! once. Everything is recorded into one command encoder and submitted once,
//! so nothing is read back between ops.

use image::RgbaImage;
use wgpu::util::DeviceExt;

use std::sync::Arc;
use std::time::Instant;

use super::context::GpuContext;
use super::shaders::point_stage;
use super::uniform::{Sizes, Uniform};
use super::{GpuError, GpuStats};
use crate::ops::{Dims, PointOp, Shape};

/// How a device image stores its pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum PixelLayout {
    /// RGBA8 packed in one word, red in the low byte: every op's input and
    /// output, and what uploads and downloads carry.
    #[default]
    Rgba8,
    /// RGBA as four `f32` words: the premultiplied linear-light
    /// intermediate of a linear resize, never read back.
    RgbaF32,
}

impl PixelLayout {
    /// Bytes per pixel.
    fn bytes(self) -> u64 {
        match self {
            Self::Rgba8 => 4,
            Self::RgbaF32 => 16,
        }
    }
}

/// An image in a device buffer.
#[derive(Debug, Clone)]
pub(crate) struct GpuImage {
    buf: wgpu::Buffer,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// EXIF orientation not yet applied.
    pub orientation: u8,
    /// How the pixels are stored.
    layout: PixelLayout,
}

impl GpuImage {
    fn bytes(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * self.layout.bytes()
    }

    /// An RGBA8 image, the only layout that can be read back.
    fn readable(&self) -> Result<(), GpuError> {
        match self.layout {
            PixelLayout::Rgba8 => Ok(()),
            other => Err(GpuError::Plan(format!(
                "an intermediate image ({other:?}) cannot be read back"
            ))),
        }
    }

    /// Its size.
    pub fn dims(&self) -> Dims {
        Dims::new(self.width, self.height)
    }

    /// Its size and pending orientation, as the planner sees them.
    pub fn shape(&self) -> Shape {
        Shape {
            dims: self.dims(),
            orientation: self.orientation,
        }
    }
}

/// A kernel's auxiliary input (binding 3).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Aux<'a> {
    /// None (a tiny placeholder is bound).
    None,
    /// Words uploaded for this dispatch: tables, weights, stage records.
    Words(&'a [u32]),
    /// A second image already on the device.
    Image(&'a GpuImage),
}

/// What an op's GPU recording gets: the recorder, its input image and the
/// job's other device images.
pub(crate) struct GpuStep<'r, 'a> {
    /// The job's recorder.
    pub(crate) rec: &'r mut Recorder<'a>,
    /// The op's input.
    pub src: &'r GpuImage,
    /// Overlays and other inputs.
    pub inputs: &'r GpuInputs,
}

/// Bytes in a device buffer of the job's (a mask's weights).
#[derive(Debug, Clone)]
pub(crate) struct GpuBytes {
    buf: wgpu::Buffer,
    len: u64,
}

/// What a job's ops read besides their input.
#[derive(Debug, Default)]
pub(crate) struct GpuInputs {
    /// Overlay images by their `source` string.
    pub overlays: Vec<(String, GpuImage)>,
    /// Decoded masks, prepared on the host for each masked op
    /// ([`crate::ops::mask`]).
    pub masks: crate::ops::mask::MaskImages,
}

impl GpuInputs {
    /// The uploaded overlay named `source`.
    pub fn overlay(&self, source: &str) -> Result<&GpuImage, GpuError> {
        self.overlays
            .iter()
            .find(|(name, _)| name == source)
            .map(|(_, img)| img)
            .ok_or_else(|| GpuError::Plan("overlay image was not uploaded".into()))
    }
}

/// Words of one stage record in `shaders/point.wgsl`: the stage number,
/// up to 14 values, and where the stage's table starts in `aux`.
const STAGE_WORDS: usize = 16;

crate::gpu_uniform! {
    /// `shaders/point.wgsl`: how many stage records `aux` holds.
    pub struct PointParams {
        /// Number of stages.
        pub stages: u32,
    }
}

/// Kernels without parameters of their own.
impl Uniform for () {
    fn layout() -> super::uniform::UniformLayout {
        super::uniform::UniformLayout {
            name: "",
            members: Vec::new(),
            size: 0,
        }
    }
}

const IMAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);
const STAGING_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);
const UPLOAD_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_WRITE.union(wgpu::BufferUsages::COPY_SRC);

/// Map a buffer range and wait for it: at once when the buffer is idle,
/// else until `submission` (this job's own work that uses it) is done, or
/// the job's `deadline`.
pub(crate) fn map_wait(
    ctx: &GpuContext,
    slice: wgpu::BufferSlice<'_>,
    mode: wgpu::MapMode,
    submission: Option<wgpu::SubmissionIndex>,
    deadline: Option<Instant>,
) -> Result<(), GpuError> {
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(mode, move |r| {
        let _ = tx.send(r);
    });
    // An idle buffer maps at the next poll, without waiting for any job's
    // work on the device.
    ctx.device
        .poll(wgpu::PollType::Poll)
        .map_err(|e| GpuError::Device(e.to_string()))?;
    let mapped = match rx.try_recv() {
        Ok(r) => r,
        Err(_) => {
            wait_for(ctx, submission, deadline)?;
            rx.recv()
                .map_err(|_| GpuError::Device("a buffer mapping was dropped".into()))?
        }
    };
    mapped.map_err(|e| GpuError::Device(format!("mapping a buffer failed: {e}")))
}

/// Wait until `submission` is done (the latest submission when `None`),
/// failing the job with `limit_exceeded` at its `deadline`.
fn wait_for(
    ctx: &GpuContext,
    submission: Option<wgpu::SubmissionIndex>,
    deadline: Option<Instant>,
) -> Result<(), GpuError> {
    let timeout = match deadline {
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(deadline_exceeded());
            }
            Some(left)
        }
        None => None,
    };
    match ctx.device.poll(wgpu::PollType::Wait {
        submission_index: submission,
        timeout,
    }) {
        Ok(_) => Ok(()),
        Err(wgpu::PollError::Timeout) => Err(deadline_exceeded()),
        Err(e) => Err(GpuError::Device(e.to_string())),
    }
}

/// The CPU chain runner's deadline error, so both backends fail alike.
fn deadline_exceeded() -> GpuError {
    GpuError::Job(crate::error::JobError::limit_exceeded(
        "job exceeded its deadline",
    ))
}

/// Compute passes timed per job (two timestamps each); a longer chain
/// reports no kernel time rather than a part of it.
const TIMED_PASSES: u32 = 256;

/// Timestamp queries around each compute pass.
struct PassTimer {
    set: wgpu::QuerySet,
    /// Passes timed so far.
    passes: u32,
    /// More passes ran than the set holds.
    overflow: bool,
}

/// Records one job's dispatches.
pub(crate) struct Recorder<'a> {
    ctx: &'a Arc<GpuContext>,
    /// When the job must be done: checked while it waits on the device.
    deadline: Option<Instant>,
    /// The last submission of this job's own work.
    submitted: Option<wgpu::SubmissionIndex>,
    /// The job's device memory reservation, released once its buffers are
    /// wiped and returned.
    lease: super::budget::Lease,
    encoder: wgpu::CommandEncoder,
    timer: Option<PassTimer>,
    taken: Vec<wgpu::Buffer>,
    downloads: Vec<(wgpu::Buffer, u32, u32)>,
    /// Work counters.
    pub stats: GpuStats,
    #[cfg(feature = "test-hooks")]
    inject_fault: bool,
    #[cfg(feature = "test-hooks")]
    hold: Option<Hold>,
}

/// A test hook's pause after a mid-job readback
/// ([`super::GpuBackend::hold_next_mid_job_readback`]).
#[cfg(feature = "test-hooks")]
pub(crate) struct Hold {
    /// Told when the job stops.
    pub(crate) held: std::sync::mpsc::Sender<()>,
    /// Waited on before it goes on.
    pub(crate) go: std::sync::mpsc::Receiver<()>,
}

impl<'a> Recorder<'a> {
    /// Start recording.
    pub fn new(
        ctx: &'a Arc<GpuContext>,
        deadline: Option<Instant>,
        lease: super::budget::Lease,
    ) -> Self {
        let encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("imgworker job"),
            });
        let timer = ctx.timestamps.then(|| PassTimer {
            set: ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("imgworker kernel time"),
                ty: wgpu::QueryType::Timestamp,
                count: 2 * TIMED_PASSES,
            }),
            passes: 0,
            overflow: false,
        });
        Self {
            ctx,
            deadline,
            submitted: None,
            lease,
            encoder,
            timer,
            taken: Vec::new(),
            downloads: Vec::new(),
            stats: GpuStats::default(),
            #[cfg(feature = "test-hooks")]
            inject_fault: false,
            #[cfg(feature = "test-hooks")]
            hold: None,
        }
    }

    /// Test hook: stop after the next mid-job readback until told to go.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn hold(&mut self, hold: Hold) {
        self.hold = Some(hold);
    }

    /// Test hook: make this job's first download a real device validation
    /// error, raised and caught the way a device fault is.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn inject_fault(&mut self) {
        self.inject_fault = true;
    }

    fn buffer(&mut self, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer, GpuError> {
        if bytes > self.ctx.max_binding() {
            return Err(GpuError::TooLarge {
                bytes,
                max: self.ctx.max_binding(),
            });
        }
        let buf = self.ctx.pool()?.take(&self.ctx.device, bytes.max(4), usage);
        self.taken.push(buf.clone());
        Ok(buf)
    }

    fn image(
        &mut self,
        d: Dims,
        orientation: u8,
        layout: PixelLayout,
    ) -> Result<GpuImage, GpuError> {
        let buf = self.buffer(d.pixels() * layout.bytes(), IMAGE_USAGE)?;
        Ok(GpuImage {
            buf,
            width: d.width,
            height: d.height,
            orientation,
            layout,
        })
    }

    /// Upload pixels (the job's source, or an overlay).
    pub fn upload(&mut self, img: &RgbaImage, orientation: u8) -> Result<GpuImage, GpuError> {
        let out = self.image(
            Dims::new(img.width(), img.height()),
            orientation,
            PixelLayout::Rgba8,
        )?;
        self.copy_in(img.as_raw(), &out.buf)?;
        self.stats.uploads += 1;
        Ok(out)
    }

    /// Upload bytes (a mask's weights), zero-padded to whole words.
    pub(crate) fn upload_bytes(&mut self, data: &[u8]) -> Result<GpuBytes, GpuError> {
        let len = (data.len() as u64).div_ceil(4) * 4;
        let buf = self.buffer(len, IMAGE_USAGE)?;
        if data.len() as u64 == len {
            self.copy_in(data, &buf)?;
        } else {
            let mut padded = data.to_vec();
            padded.resize(len as usize, 0);
            self.copy_in(&padded, &buf)?;
        }
        Ok(GpuBytes { buf, len })
    }

    /// Copy `data` into the start of `dst` through a staging buffer of our
    /// own (not `queue.write_buffer`, whose staging memory wgpu frees
    /// unwiped), so that it can be wiped with the job's other buffers.
    fn copy_in(&mut self, data: &[u8], dst: &wgpu::Buffer) -> Result<(), GpuError> {
        let bytes = data.len() as u64;
        let staging = self.buffer(bytes, UPLOAD_USAGE)?;
        map_wait(
            self.ctx,
            staging.slice(..bytes),
            wgpu::MapMode::Write,
            self.submitted.clone(),
            self.deadline,
        )?;
        staging
            .slice(..bytes)
            .get_mapped_range_mut()
            .map_err(|e| GpuError::Device(e.to_string()))?
            .copy_from_slice(data);
        staging.unmap();
        self.encoder
            .copy_buffer_to_buffer(&staging, 0, dst, 0, bytes);
        Ok(())
    }

    fn uniform(&self, label: &str, bytes: &[u8]) -> wgpu::Buffer {
        self.ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            })
    }

    /// Run the compute entry point `entry` from `src` into a new image of
    /// `dims`, with the kernel's own uniform `params` (binding 4) and its
    /// auxiliary data (binding 3).
    pub fn kernel<U: Uniform>(
        &mut self,
        entry: &str,
        src: &GpuImage,
        dims: Dims,
        aux: Aux<'_>,
        params: U,
    ) -> Result<GpuImage, GpuError> {
        self.kernel_with(entry, src, dims, aux, None, params)
    }

    /// [`Self::kernel`] into an image of another layout than RGBA8 (an
    /// op's intermediate).
    pub(crate) fn kernel_into<U: Uniform>(
        &mut self,
        entry: &str,
        src: &GpuImage,
        dims: Dims,
        layout: PixelLayout,
        aux: Aux<'_>,
        params: U,
    ) -> Result<GpuImage, GpuError> {
        let dst = self.image(dims, src.orientation, layout)?;
        self.dispatch(entry, src, dst, aux, None, params)
    }

    /// [`Self::kernel`] with a second auxiliary buffer bound at 5 (a
    /// mask's weights beside the image at 3).
    pub(crate) fn kernel_with<U: Uniform>(
        &mut self,
        entry: &str,
        src: &GpuImage,
        dims: Dims,
        aux: Aux<'_>,
        extra: Option<&GpuBytes>,
        params: U,
    ) -> Result<GpuImage, GpuError> {
        let dst = self.image(dims, src.orientation, PixelLayout::Rgba8)?;
        self.dispatch(entry, src, dst, aux, extra, params)
    }

    /// Record one dispatch of `entry` from `src` into `dst`.
    fn dispatch<U: Uniform>(
        &mut self,
        entry: &str,
        src: &GpuImage,
        dst: GpuImage,
        aux: Aux<'_>,
        extra: Option<&GpuBytes>,
        params: U,
    ) -> Result<GpuImage, GpuError> {
        let sizes = Sizes {
            src_width: src.width,
            src_height: src.height,
            dst_width: dst.width,
            dst_height: dst.height,
        };
        let sizes = self.uniform("imgworker sizes", bytemuck::bytes_of(&sizes));
        // A struct-less kernel still needs something bound at 4.
        let params_bytes = bytemuck::bytes_of(&params);
        let params = if params_bytes.is_empty() {
            None
        } else {
            Some(self.uniform(entry, params_bytes))
        };
        let words;
        let (aux_buf, aux_bytes) = match aux {
            Aux::None => (&self.ctx.dummy, 16),
            Aux::Words(data) => {
                let data = if data.is_empty() { &[0u32][..] } else { data };
                words = self
                    .ctx
                    .device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("imgworker aux"),
                        contents: bytemuck::cast_slice(data),
                        usage: wgpu::BufferUsages::STORAGE,
                    });
                let bytes = words.size();
                (&words, bytes)
            }
            Aux::Image(img) => (&img.buf, img.bytes()),
        };
        let bind = self
            .ctx
            .device
            .create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(entry),
                layout: &self.ctx.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: whole(&src.buf, src.bytes()),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: whole(&dst.buf, dst.bytes()),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: sizes.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: whole(aux_buf, aux_bytes),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: params
                            .as_ref()
                            .unwrap_or(&self.ctx.dummy_uniform)
                            .as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 5,
                        resource: match extra {
                            Some(b) => whole(&b.buf, b.len),
                            None => whole(&self.ctx.dummy, 16),
                        },
                    },
                ],
            });
        let timestamp_writes = match self.timer.as_mut() {
            Some(t) if t.passes < TIMED_PASSES => {
                t.passes += 1;
                Some(wgpu::ComputePassTimestampWrites {
                    query_set: &t.set,
                    beginning_of_pass_write_index: Some(2 * t.passes - 2),
                    end_of_pass_write_index: Some(2 * t.passes - 1),
                })
            }
            Some(t) => {
                t.overflow = true;
                None
            }
            None => None,
        };
        let mut pass = self
            .encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(entry),
                timestamp_writes,
            });
        pass.set_pipeline(self.ctx.pipeline(entry)?);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(dst.width.div_ceil(8), dst.height.div_ceil(8), 1);
        drop(pass);
        self.stats.dispatches += 1;
        Ok(dst)
    }

    /// Apply a run of per-pixel ops (by name) in one dispatch of
    /// `shaders/point.wgsl`: one 16-word stage record per op, its stage
    /// number then its values.
    pub(crate) fn point_run(
        &mut self,
        src: &GpuImage,
        ops: &[(&str, &dyn PointOp)],
    ) -> Result<GpuImage, GpuError> {
        // The stage records, then the stages' tables; a record's last word
        // is where its table starts.
        let mut words = Vec::with_capacity(ops.len() * STAGE_WORDS);
        let mut tables: Vec<u32> = Vec::new();
        for (name, point) in ops {
            let stage = point_stage(name)
                .ok_or_else(|| GpuError::Plan(format!("{name} is not a point op")))?;
            let mut record = [0u32; STAGE_WORDS];
            record[0] = stage;
            let values = point.stage_values();
            if values.len() > STAGE_WORDS - 2 {
                return Err(GpuError::Plan(format!("{name}: too many stage values")));
            }
            for (slot, v) in record[1..].iter_mut().zip(values) {
                *slot = v.to_bits();
            }
            let table = point.stage_table();
            if !table.is_empty() {
                record[STAGE_WORDS - 1] = (ops.len() * STAGE_WORDS + tables.len()) as u32;
                tables.extend(table.iter().map(|v| v.to_bits()));
            }
            words.extend_from_slice(&record);
        }
        words.extend(tables);
        let params = PointParams {
            stages: ops.len() as u32,
        };
        self.kernel("point", src, src.dims(), Aux::Words(&words), params)
    }

    /// Queue a copy of `img` into a mappable buffer, read after [`Self::finish`].
    pub(crate) fn download(&mut self, img: &GpuImage) -> Result<(), GpuError> {
        img.readable()?;
        let staging = self.buffer(img.bytes(), STAGING_USAGE)?;
        self.encoder
            .copy_buffer_to_buffer(&img.buf, 0, &staging, 0, img.bytes());
        #[cfg(feature = "test-hooks")]
        if self.inject_fault {
            // A copy past the end of the buffer: a real validation error.
            self.encoder
                .copy_buffer_to_buffer(&img.buf, 0, &staging, staging.size(), 4);
        }
        self.downloads.push((staging, img.width, img.height));
        self.stats.downloads += 1;
        Ok(())
    }

    /// Submit what is recorded so far and read `img` back at once, for an op
    /// whose output size depends on the pixels (`trim`): it decides on the
    /// host, from the same pixels the CPU backend would see, and recording
    /// goes on in a new encoder. The staging buffer is wiped with the rest.
    pub(crate) fn read_now(&mut self, img: &GpuImage) -> Result<RgbaImage, GpuError> {
        img.readable()?;
        let bytes = img.bytes();
        let staging = self.buffer(bytes, STAGING_USAGE)?;
        self.encoder
            .copy_buffer_to_buffer(&img.buf, 0, &staging, 0, bytes);
        let next = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("imgworker job"),
            });
        let done = std::mem::replace(&mut self.encoder, next);
        let index = self.ctx.queue.submit([done.finish()]);
        self.submitted = Some(index.clone());
        map_wait(
            self.ctx,
            staging.slice(..bytes.max(4)),
            wgpu::MapMode::Read,
            Some(index),
            self.deadline,
        )?;
        self.stats.downloads += 1;
        let pixels = read_mapped(&staging, img.width, img.height);
        #[cfg(feature = "test-hooks")]
        if let Some(h) = self.hold.take() {
            let _ = h.held.send(());
            let _ = h.go.recv_timeout(std::time::Duration::from_secs(60));
        }
        pixels
    }

    /// Submit everything, wait, read the downloads back in order, then wipe
    /// every pixel buffer the job used before it goes back to the pool.
    pub fn finish(self) -> Result<(Vec<RgbaImage>, GpuStats, Vec<wgpu::Buffer>), GpuError> {
        let Recorder {
            ctx,
            deadline,
            lease,
            mut encoder,
            timer,
            taken,
            downloads,
            mut stats,
            ..
        } = self;
        // Resolve the pass timestamps into a buffer read back with the
        // outputs (it holds times, not pixels).
        let times = timer.filter(|t| t.passes > 0 && !t.overflow).map(|t| {
            let bytes = u64::from(2 * t.passes) * u64::from(wgpu::QUERY_SIZE);
            let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("imgworker timestamps"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let read = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("imgworker timestamps read"),
                size: bytes,
                usage: STAGING_USAGE,
                mapped_at_creation: false,
            });
            encoder.resolve_query_set(&t.set, 0..2 * t.passes, &resolve, 0);
            encoder.copy_buffer_to_buffer(&resolve, 0, &read, 0, bytes);
            read
        });
        let index = ctx.queue.submit([encoder.finish()]);
        if let Some(read) = &times {
            read.slice(..).map_async(wgpu::MapMode::Read, |_| {});
        }
        let (tx, rx) = std::sync::mpsc::channel();
        for (i, (buf, w, h)) in downloads.iter().enumerate() {
            let tx = tx.clone();
            let bytes = u64::from(*w) * u64::from(*h) * 4;
            buf.slice(..bytes.max(4))
                .map_async(wgpu::MapMode::Read, move |r| {
                    let _ = tx.send((i, r));
                });
        }
        drop(tx);
        // This job's own submission, not the device's latest: other jobs'
        // work may still run while this one reads back.
        if let Err(e) = wait_for(ctx, Some(index.clone()), deadline) {
            let mapped = downloads.iter().map(|(b, _, _)| b.clone()).collect();
            reap(ctx.clone(), taken, mapped, index, lease);
            return Err(e);
        }
        for (_, r) in rx.iter() {
            r.map_err(|e| GpuError::Device(format!("reading back an output failed: {e}")))?;
        }
        let mut images = Vec::with_capacity(downloads.len());
        for (buf, w, h) in &downloads {
            images.push(read_mapped(buf, *w, *h)?);
        }
        // A timing that cannot be read leaves `kernel_ns` empty; the job
        // itself is unaffected.
        if let Some(view) = times
            .as_ref()
            .and_then(|r| r.slice(..).get_mapped_range().ok())
        {
            let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&view);
            // Ticks to nanoseconds in 32.32 fixed point: a device clock
            // may count from the epoch (about 2^61 ns), past what an f64
            // holds to the nanosecond.
            let period = f64::from(ctx.queue.get_timestamp_period());
            let scale = (period * 4_294_967_296.0).round() as u128;
            let ns = |t: u64| ((u128::from(t) * scale) >> 32) as u64;
            let total: u64 = ticks
                .chunks_exact(2)
                .map(|p| p[1].saturating_sub(p[0]))
                .sum();
            stats.kernel_ns = Some(ns(total));
            let first = ticks.iter().step_by(2).min();
            let last = ticks.iter().skip(1).step_by(2).max();
            stats.kernel_span_ns = first.zip(last).map(|(&a, &b)| (ns(a), ns(b)));
        }
        wipe(ctx, &taken)?;
        Ok((images, stats, taken))
    }
}

/// Copy a `w` x `h` image out of a staging buffer mapped for reading, and
/// unmap it.
fn read_mapped(buf: &wgpu::Buffer, w: u32, h: u32) -> Result<RgbaImage, GpuError> {
    let bytes = u64::from(w) * u64::from(h) * 4;
    let data = buf
        .slice(..bytes.max(4))
        .get_mapped_range()
        .map_err(|e| GpuError::Device(e.to_string()))?[..bytes as usize]
        .to_vec();
    buf.unmap();
    RgbaImage::from_raw(w, h, data).ok_or_else(|| GpuError::Device("readback size".into()))
}

/// Binds the first `bytes` of `buf` (at least one word).
fn whole(buf: &wgpu::Buffer, bytes: u64) -> wgpu::BindingResource<'_> {
    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
        buffer: buf,
        offset: 0,
        size: std::num::NonZeroU64::new(bytes.max(4)),
    })
}

/// Zero every buffer that can hold pixels (all but the uniform and
/// parameter ones) and wait for it, so that no job's pixels outlive the job in device memory.
pub(crate) fn wipe(ctx: &GpuContext, buffers: &[wgpu::Buffer]) -> Result<(), GpuError> {
    let mut enc = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("imgworker wipe"),
        });
    let mut any = false;
    for b in buffers {
        if b.usage().contains(wgpu::BufferUsages::COPY_DST) {
            enc.clear_buffer(b, 0, None);
            any = true;
        } else if b.usage().contains(wgpu::BufferUsages::MAP_WRITE) {
            // Upload staging: zeroed through its mapping.
            map_wait(ctx, b.slice(..), wgpu::MapMode::Write, None, None)?;
            b.slice(..)
                .get_mapped_range_mut()
                .map_err(|e| GpuError::Device(e.to_string()))?
                .slice(..)
                .fill(0);
            b.unmap();
        }
    }
    if any {
        let index = ctx.queue.submit([enc.finish()]);
        wait_for(ctx, Some(index), None)?;
    }
    Ok(())
}

/// A job that gave up waiting (its deadline) while the device still runs
/// its work: once that work is done, wipe its buffers and return them to
/// the pool, on a thread of its own so that the job fails at once.
fn reap(
    ctx: Arc<GpuContext>,
    buffers: Vec<wgpu::Buffer>,
    mapped: Vec<wgpu::Buffer>,
    submission: wgpu::SubmissionIndex,
    lease: super::budget::Lease,
) {
    std::thread::spawn(move || {
        // The memory stays reserved until the device is done with it.
        let _lease = lease;
        // Error scopes are per thread: this one's errors stay here.
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let clean = wait_for(&ctx, Some(submission), None).and_then(|()| {
            // The outputs' readback buffers were mapped for reading:
            // unmapped first, or they cannot be cleared.
            for b in &mapped {
                b.unmap();
            }
            wipe(&ctx, &buffers)
        });
        let clean = match pollster::block_on(scope.pop()) {
            Some(e) => Err(GpuError::Device(e.to_string())),
            None => clean,
        };
        match (clean, ctx.pool()) {
            (Ok(()), Ok(mut pool)) => pool.give_back(buffers),
            // Dropped instead: wgpu zeroes a buffer's memory before its next use.
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "buffers of a job past its deadline were dropped, not pooled");
            }
        }
    });
}
