//! Recording a job's op chain as compute dispatches on device buffers.
//!
//! The source is uploaded once. Each op reads one device buffer and writes a
//! new one, and the shared result stays on the GPU for every output's
//! trailing ops. Each output is downloaded once. Everything is recorded into
//! one command encoder and submitted once, so nothing is read back between ops.

use bytemuck::{Pod, Zeroable};
use image::RgbaImage;
use wgpu::util::DeviceExt;

use super::context::GpuContext;
use super::pool::BufferPool;
use super::{GpuError, GpuStats};
use crate::ops::overlay::{Blend, Overlay};
use crate::ops::resize::{conv_pass, nearest_tables, Filter, Resize};
use crate::ops::rotate::Rotate;
use crate::ops::{flip::Axis, Dims, Op, Operation, PointOp};

/// The parameter block of every kernel.
/// Keep in sync with `struct Params` in `shaders/common.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, Pod, Zeroable)]
pub struct Params {
    /// Source width, source height, destination width, destination height.
    pub dims: [u32; 4],
    /// Integer parameters.
    pub i0: [i32; 4],
    /// More integer parameters.
    pub i1: [i32; 4],
    /// Float parameters.
    pub f0: [f32; 4],
    /// More float parameters (spare).
    pub f1: [f32; 4],
    /// Spare.
    pub f2: [f32; 4],
    /// Spare.
    pub f3: [f32; 4],
}

/// An image in a device buffer.
#[derive(Debug, Clone)]
pub struct GpuImage {
    buf: wgpu::Buffer,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// EXIF orientation not yet applied.
    pub orientation: u8,
}

impl GpuImage {
    fn bytes(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height) * 4
    }

    fn dims(&self) -> Dims {
        Dims::new(self.width, self.height)
    }
}

const IMAGE_USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);
const STAGING_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);
const UPLOAD_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::MAP_WRITE.union(wgpu::BufferUsages::COPY_SRC);

/// Map a buffer range and wait for it.
pub(crate) fn map_wait(
    ctx: &GpuContext,
    slice: wgpu::BufferSlice<'_>,
    mode: wgpu::MapMode,
) -> Result<(), GpuError> {
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(mode, move |r| {
        let _ = tx.send(r);
    });
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Device(e.to_string()))?;
    rx.recv()
        .map_err(|_| GpuError::Device("a buffer mapping was dropped".into()))?
        .map_err(|e| GpuError::Device(format!("mapping a buffer failed: {e}")))
}

fn packed(c: crate::ops::color::Color) -> i32 {
    u32::from_le_bytes(c.0) as i32
}

/// Source coordinates as an integer affine map of output coordinates for an
/// EXIF orientation: `(a, b, c, d, e, f)` with `sx = a x + b y + c`,
/// `sy = d x + e y + f`, for a `w`x`h` source.
fn orientation_map(orientation: u8, w: u32, h: u32) -> [i32; 6] {
    let (w1, h1) = (w as i32 - 1, h as i32 - 1);
    match orientation {
        2 => [-1, 0, w1, 0, 1, 0],
        3 => [-1, 0, w1, 0, -1, h1],
        4 => [1, 0, 0, 0, -1, h1],
        5 => [0, 1, 0, 1, 0, 0],
        6 => [0, 1, 0, -1, 0, h1],
        7 => [0, -1, w1, -1, 0, h1],
        8 => [0, -1, w1, 1, 0, 0],
        _ => [1, 0, 0, 0, 1, 0],
    }
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
pub struct Recorder<'a> {
    ctx: &'a GpuContext,
    pool: &'a mut BufferPool,
    encoder: wgpu::CommandEncoder,
    timer: Option<PassTimer>,
    taken: Vec<wgpu::Buffer>,
    downloads: Vec<(wgpu::Buffer, u32, u32)>,
    /// Work counters.
    pub stats: GpuStats,
    inject_fault: bool,
}

impl<'a> Recorder<'a> {
    /// Start recording.
    pub fn new(ctx: &'a GpuContext, pool: &'a mut BufferPool, inject_fault: bool) -> Self {
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
            pool,
            encoder,
            timer,
            taken: Vec::new(),
            downloads: Vec::new(),
            stats: GpuStats::default(),
            inject_fault,
        }
    }

    fn buffer(&mut self, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer, GpuError> {
        if bytes > self.ctx.max_binding() {
            return Err(GpuError::TooLarge {
                bytes,
                max: self.ctx.max_binding(),
            });
        }
        let buf = self.pool.take(&self.ctx.device, bytes.max(4), usage);
        self.taken.push(buf.clone());
        Ok(buf)
    }

    fn image(&mut self, d: Dims, orientation: u8) -> Result<GpuImage, GpuError> {
        let buf = self.buffer(d.pixels() * 4, IMAGE_USAGE)?;
        Ok(GpuImage {
            buf,
            width: d.width,
            height: d.height,
            orientation,
        })
    }

    /// Upload pixels (the job's source, or an overlay).
    pub fn upload(&mut self, img: &RgbaImage, orientation: u8) -> Result<GpuImage, GpuError> {
        let out = self.image(Dims::new(img.width(), img.height()), orientation)?;
        // Through a staging buffer of our own (not `queue.write_buffer`,
        // whose staging memory wgpu frees unwiped), so that it can be wiped
        // with the job's other buffers.
        let bytes = out.bytes();
        let staging = self.buffer(bytes, UPLOAD_USAGE)?;
        map_wait(self.ctx, staging.slice(..bytes), wgpu::MapMode::Write)?;
        staging
            .slice(..bytes)
            .get_mapped_range_mut()
            .map_err(|e| GpuError::Device(e.to_string()))?
            .copy_from_slice(img.as_raw());
        staging.unmap();
        self.encoder
            .copy_buffer_to_buffer(&staging, 0, &out.buf, 0, bytes);
        self.stats.uploads += 1;
        Ok(out)
    }

    fn aux(&self, data: &[u32]) -> wgpu::Buffer {
        let data = if data.is_empty() { &[0u32][..] } else { data };
        self.ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("imgworker aux"),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE,
            })
    }

    fn dispatch(
        &mut self,
        entry: &str,
        src: &GpuImage,
        dst: &GpuImage,
        aux: Option<(&wgpu::Buffer, u64)>,
        mut params: Params,
    ) {
        params.dims = [src.width, src.height, dst.width, dst.height];
        let uniform = self
            .ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("imgworker params"),
                contents: bytemuck::bytes_of(&params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let (aux_buf, aux_bytes) = aux.unwrap_or((&self.ctx.dummy, 16));
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
                        resource: uniform.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: whole(aux_buf, aux_bytes),
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
        pass.set_pipeline(self.ctx.pipeline(entry));
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(dst.width.div_ceil(8), dst.height.div_ceil(8), 1);
        self.stats.dispatches += 1;
    }

    /// Run `entry` from `src` into a new image of `dims`.
    fn kernel(
        &mut self,
        entry: &str,
        src: &GpuImage,
        dims: Dims,
        aux: Option<(&wgpu::Buffer, u64)>,
        params: Params,
    ) -> Result<GpuImage, GpuError> {
        let dst = self.image(dims, src.orientation)?;
        self.dispatch(entry, src, &dst, aux, params);
        Ok(dst)
    }

    fn with_aux(
        &mut self,
        entry: &str,
        src: &GpuImage,
        dims: Dims,
        data: &[u32],
        params: Params,
    ) -> Result<GpuImage, GpuError> {
        let aux = self.aux(data);
        let bytes = aux.size();
        self.kernel(entry, src, dims, Some((&aux, bytes)), params)
    }

    fn remap(&mut self, src: &GpuImage, dims: Dims, m: [i32; 6]) -> Result<GpuImage, GpuError> {
        let params = Params {
            i0: [m[0], m[1], m[2], m[3]],
            i1: [m[4], m[5], 0, 0],
            ..Default::default()
        };
        self.kernel("remap", src, dims, None, params)
    }

    /// Apply a run of per-pixel ops in one dispatch.
    pub fn point_run(
        &mut self,
        src: &GpuImage,
        ops: &[&dyn PointOp],
    ) -> Result<GpuImage, GpuError> {
        let stages: Vec<u32> = ops.iter().flat_map(|o| o.stage()).collect();
        let params = Params {
            i0: [ops.len() as i32, 0, 0, 0],
            ..Default::default()
        };
        self.with_aux("point", src, src.dims(), &stages, params)
    }

    /// Apply one (non point) op.
    pub fn op(
        &mut self,
        op: &Op,
        src: &GpuImage,
        overlays: &[(String, GpuImage)],
    ) -> Result<GpuImage, GpuError> {
        let (w, h) = (src.width, src.height);
        match op {
            Op::AutoOrient(_) => {
                let o = src.orientation;
                if o <= 1 || o > 8 {
                    return Ok(GpuImage {
                        orientation: 1,
                        ..src.clone()
                    });
                }
                let dims = if o >= 5 {
                    Dims::new(h, w)
                } else {
                    Dims::new(w, h)
                };
                let mut out = self.remap(src, dims, orientation_map(o, w, h))?;
                out.orientation = 1;
                Ok(out)
            }
            Op::Flip(f) => {
                let axis = if f.axis == Axis::Horizontal { 0 } else { 1 };
                self.kernel(
                    "flip",
                    src,
                    src.dims(),
                    None,
                    Params {
                        i0: [axis, 0, 0, 0],
                        ..Default::default()
                    },
                )
            }
            Op::Crop(c) => {
                let p = &c.0;
                let params = Params {
                    i0: [p.x as i32, p.y as i32, 0, 0],
                    ..Default::default()
                };
                self.kernel("crop", src, Dims::new(p.width, p.height), None, params)
            }
            Op::Rotate(Rotate::Exact(deg)) => match deg {
                90 => self.remap(src, Dims::new(h, w), orientation_map(6, w, h)),
                180 => self.remap(src, src.dims(), orientation_map(3, w, h)),
                270 => self.remap(src, Dims::new(h, w), orientation_map(8, w, h)),
                _ => Ok(src.clone()),
            },
            Op::Rotate(
                r @ Rotate::Any {
                    radians,
                    background,
                },
            ) => {
                let dims = r
                    .plan(shape(src))
                    .map_err(|e| GpuError::Plan(e.to_string()))?
                    .dims;
                let (s, c) = (radians.sin() as f32, radians.cos() as f32);
                let params = Params {
                    i0: [packed(*background), 0, 0, 0],
                    f0: [s, c, 0.0, 0.0],
                    ..Default::default()
                };
                self.kernel("rotate", src, dims, None, params)
            }
            Op::Pad(p) => {
                let dims = p
                    .plan(shape(src))
                    .map_err(|e| GpuError::Plan(e.to_string()))?
                    .dims;
                let params = Params {
                    i0: [p.p.left as i32, p.p.top as i32, packed(p.color), 0],
                    ..Default::default()
                };
                self.kernel("pad", src, dims, None, params)
            }
            Op::Resize(r) => self.resize(r, src),
            Op::Blur(b) => self.blur(src, &b.kernel),
            Op::Sharpen(s) => {
                let blurred = self.blur(src, &s.kernel)?;
                let bytes = blurred.bytes();
                let params = Params {
                    f0: [s.amount, s.threshold, 0.0, 0.0],
                    ..Default::default()
                };
                self.kernel(
                    "sharpen",
                    src,
                    src.dims(),
                    Some((&blurred.buf.clone(), bytes)),
                    params,
                )
            }
            Op::Overlay(o) => {
                let top = overlays
                    .iter()
                    .find(|(name, _)| *name == o.source)
                    .map(|(_, img)| img.clone())
                    .ok_or_else(|| GpuError::Plan("overlay image was not uploaded".into()))?;
                self.overlay(o, src, &top)
            }
            Op::Adjust(_) | Op::Grayscale(_) | Op::Invert(_) | Op::Sepia(_) => {
                let point = op.as_point().expect("point op");
                self.point_run(src, &[point])
            }
        }
    }

    fn blur(&mut self, src: &GpuImage, kernel: &[f32]) -> Result<GpuImage, GpuError> {
        let weights: Vec<u32> = kernel.iter().map(|w| w.to_bits()).collect();
        let params = Params {
            i0: [(kernel.len() / 2) as i32, 0, 0, 0],
            ..Default::default()
        };
        let aux = self.aux(&weights);
        let bytes = aux.size();
        let tmp = self.kernel(
            "blur_horizontal",
            src,
            src.dims(),
            Some((&aux, bytes)),
            params,
        )?;
        self.kernel(
            "blur_vertical",
            &tmp,
            src.dims(),
            Some((&aux, bytes)),
            params,
        )
    }

    fn overlay(
        &mut self,
        o: &Overlay,
        base: &GpuImage,
        top: &GpuImage,
    ) -> Result<GpuImage, GpuError> {
        let (x, y) = o.position(base.width, base.height, top.width, top.height);
        let clamp = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        let blend = match o.blend {
            Blend::Normal => 0,
            Blend::Multiply => 1,
            Blend::Screen => 2,
        };
        let params = Params {
            i0: [clamp(x), clamp(y), top.width as i32, top.height as i32],
            i1: [blend, 0, 0, 0],
            f0: [o.opacity, 0.0, 0.0, 0.0],
            ..Default::default()
        };
        let bytes = top.bytes();
        self.kernel(
            "overlay",
            base,
            base.dims(),
            Some((&top.buf.clone(), bytes)),
            params,
        )
    }

    /// fast_image_resize's 8-bit algorithm, step for step.
    fn resize(&mut self, r: &Resize, src: &GpuImage) -> Result<GpuImage, GpuError> {
        let g = r.geometry(src.dims());
        let [left, top, bw, bh] = g.src_box;
        let scaled = if r.filter == Filter::Nearest {
            let tables = nearest_tables(src.dims(), g.src_box, g.scaled);
            self.with_aux("resize_nearest", src, g.scaled, &tables, Params::default())?
        } else if f64::from(g.scaled.width) == bw
            && f64::from(g.scaled.height) == bh
            && left == left.round()
            && top == top.round()
        {
            // Same size at whole-pixel offsets: fast_image_resize copies the crop.
            let params = Params {
                i0: [left as i32, top as i32, 0, 0],
                ..Default::default()
            };
            self.kernel("crop", src, g.scaled, None, params)?
        } else {
            let need_h = f64::from(g.scaled.width) != bw || left != left.round();
            let need_v = f64::from(g.scaled.height) != bh || top != top.round();
            let pre = self.kernel("premultiply", src, src.dims(), None, Params::default())?;
            let mut cur = pre;
            if need_v {
                let pass = conv_pass(src.height, top, top + bh, g.scaled.height, r.filter);
                let (width, col_offset) = if need_h {
                    (src.width, 0)
                } else {
                    (g.scaled.width, left as i32)
                };
                let params = Params {
                    i0: [pass.precision as i32, pass.window as i32, col_offset, 0],
                    ..Default::default()
                };
                cur = self.with_aux(
                    "resize_vertical",
                    &cur,
                    Dims::new(width, g.scaled.height),
                    &pass.records,
                    params,
                )?;
            }
            if need_h {
                let pass = conv_pass(src.width, left, left + bw, g.scaled.width, r.filter);
                let row_offset = if need_v { 0 } else { top as i32 };
                let params = Params {
                    i0: [pass.precision as i32, pass.window as i32, row_offset, 0],
                    ..Default::default()
                };
                cur = self.with_aux("resize_horizontal", &cur, g.scaled, &pass.records, params)?;
            }
            self.kernel("unpremultiply", &cur, g.scaled, None, Params::default())?
        };
        if g.canvas == g.scaled {
            return Ok(scaled);
        }
        let params = Params {
            i0: [
                g.offset.0 as i32,
                g.offset.1 as i32,
                packed(r.background),
                0,
            ],
            ..Default::default()
        };
        self.kernel("pad", &scaled, g.canvas, None, params)
    }

    /// Queue a copy of `img` into a mappable buffer, read after [`Self::finish`].
    pub fn download(&mut self, img: &GpuImage) -> Result<(), GpuError> {
        let staging = self.buffer(img.bytes(), STAGING_USAGE)?;
        self.encoder
            .copy_buffer_to_buffer(&img.buf, 0, &staging, 0, img.bytes());
        if self.inject_fault {
            // A copy past the end of the buffer: a real validation error,
            // raised and caught the way a device fault is.
            self.encoder
                .copy_buffer_to_buffer(&img.buf, 0, &staging, staging.size(), 4);
        }
        self.downloads.push((staging, img.width, img.height));
        self.stats.downloads += 1;
        Ok(())
    }

    /// Submit everything, wait, read the downloads back in order, then wipe
    /// every pixel buffer the job used before it goes back to the pool.
    pub fn finish(self) -> Result<(Vec<RgbaImage>, GpuStats, Vec<wgpu::Buffer>), GpuError> {
        let Recorder {
            ctx,
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
        ctx.queue.submit([encoder.finish()]);
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
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Device(e.to_string()))?;
        for (_, r) in rx.iter() {
            r.map_err(|e| GpuError::Device(format!("reading back an output failed: {e}")))?;
        }
        let mut images = Vec::with_capacity(downloads.len());
        for (buf, w, h) in &downloads {
            let bytes = (u64::from(*w) * u64::from(*h) * 4) as usize;
            let data = buf
                .slice(..bytes.max(4) as u64)
                .get_mapped_range()
                .map_err(|e| GpuError::Device(e.to_string()))?[..bytes]
                .to_vec();
            buf.unmap();
            images.push(
                RgbaImage::from_raw(*w, *h, data)
                    .ok_or_else(|| GpuError::Device("readback size".into()))?,
            );
        }
        // A timing that cannot be read leaves `kernel_ns` empty; the job
        // itself is unaffected.
        if let Some(view) = times
            .as_ref()
            .and_then(|r| r.slice(..).get_mapped_range().ok())
        {
            let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&view);
            let period = f64::from(ctx.queue.get_timestamp_period());
            let total: u64 = ticks
                .chunks_exact(2)
                .map(|p| p[1].saturating_sub(p[0]))
                .sum();
            stats.kernel_ns = Some((total as f64 * period).round() as u64);
        }
        wipe(ctx, &taken)?;
        Ok((images, stats, taken))
    }
}

fn shape(img: &GpuImage) -> crate::ops::Shape {
    crate::ops::Shape {
        dims: img.dims(),
        orientation: img.orientation,
    }
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
            map_wait(ctx, b.slice(..), wgpu::MapMode::Write)?;
            b.slice(..)
                .get_mapped_range_mut()
                .map_err(|e| GpuError::Device(e.to_string()))?
                .slice(..)
                .fill(0);
            b.unmap();
        }
    }
    if any {
        ctx.queue.submit([enc.finish()]);
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Device(e.to_string()))?;
    }
    Ok(())
}
