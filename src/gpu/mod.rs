//! The wgpu backend: every op as a compute shader, the chain kept on the GPU.
//!
//! One device per worker, created at start-up with the adapter's own limits.
//! Every pipeline is built once ([`context`]). Buffers are reused across
//! jobs ([`pool`]). Jobs run on the device side by side: each records its
//! own command encoder, submits it, and waits for its own submission only,
//! so no lock is held across a submit or a wait (the pool is locked to take
//! or return a buffer, the device handle to clone it). Any failure of a job
//! (validation, out of memory, a lost device, an image larger than a
//! storage binding) is returned as a [`GpuError`] for that job alone, and
//! the caller redoes it on the CPU; error scopes are per thread, so per
//! job. A lost device is recreated before the next job.

pub mod budget;
pub mod context;
pub mod pool;
pub mod recorder;
pub mod shaders;
pub mod uniform;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use image::RgbaImage;

use crate::error::JobError;
use crate::job::Edit;
use crate::ops::{run_chain, ChainTarget, Frame, Op, OpContext, PointOp, Shape};
use context::GpuContext;
use recorder::{GpuImage, GpuInputs, Recorder};

/// GPU failures; each one sends the job back to the CPU path.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GpuError {
    /// No adapter, or the device could not be created.
    #[error("GPU initialisation failed: {0}")]
    Init(String),
    /// A shader failed to compile or validate.
    #[error("shader error: {0}")]
    Shader(String),
    /// Validation, out of memory, or a lost device during a job.
    #[error("GPU device error: {0}")]
    Device(String),
    /// An image larger than one storage binding allows.
    #[error("an image of {bytes} bytes exceeds the largest GPU storage binding ({max} bytes)")]
    TooLarge {
        /// Bytes needed.
        bytes: u64,
        /// The binding limit.
        max: u64,
    },
    /// An op could not be planned on the GPU.
    #[error("GPU planning failed: {0}")]
    Plan(String),
    /// The job itself failed while it was recorded (its deadline passed).
    #[error(transparent)]
    Job(#[from] JobError),
}

/// Work counted for one job on the GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuStats {
    /// Host-to-device image uploads (the source; overlays are counted apart).
    pub uploads: u32,
    /// Overlay images uploaded.
    pub overlay_uploads: u32,
    /// Device-to-host downloads (one per output).
    pub downloads: u32,
    /// Compute dispatches.
    pub dispatches: u32,
    /// The kernels' own time on the device, nanoseconds, from timestamp
    /// queries around each compute pass (upload, readback and host work
    /// excluded); `None` where the adapter has no timestamp queries.
    pub kernel_ns: Option<u64>,
    /// When the job's first kernel started and its last kernel ended, in
    /// nanoseconds of the device's timestamp clock (comparable between jobs
    /// on one device, not with host time): when one job's span lies within
    /// another's, its kernels ran between the other's first and last, both
    /// jobs in progress on the device at once. `None` like `kernel_ns`.
    pub kernel_span_ns: Option<(u64, u64)>,
}

/// A description of one adapter, for `imgworker devices`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterReport {
    /// Adapter name.
    pub name: String,
    /// Graphics API backend.
    pub backend: String,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: String,
    /// Driver name.
    pub driver: String,
    /// Driver version and details.
    pub driver_info: String,
    /// Largest storage buffer binding, bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer, bytes.
    pub max_buffer_size: u64,
    /// Largest compute workgroup count per dimension.
    pub max_compute_workgroups_per_dimension: u32,
    /// Whether it is a software rasteriser (lavapipe, llvmpipe).
    pub software: bool,
}

/// A Vulkan instance without debug layers.
pub fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::VULKAN,
        flags: wgpu::InstanceFlags::empty(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

/// Every adapter the instance finds, best first (discrete, integrated,
/// virtual, other, software).
pub fn adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    let mut list = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN));
    let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    };
    list.sort_by_key(rank);
    list
}

/// Describe an adapter.
pub fn report(a: &wgpu::Adapter) -> AdapterReport {
    let info = a.get_info();
    let limits = a.limits();
    AdapterReport {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver.clone(),
        driver_info: info.driver_info.clone(),
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_buffer_size: limits.max_buffer_size,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        software: info.device_type == wgpu::DeviceType::Cpu,
    }
}

/// The GPU backend, shared by every job of a worker.
pub struct GpuBackend {
    instance: wgpu::Instance,
    adapter_name: String,
    /// The device: cloned by each job, replaced after a loss.
    ctx: RwLock<Arc<GpuContext>>,
    /// The device memory jobs in flight may reserve together.
    budget: Arc<budget::DeviceBudget>,
    #[cfg(feature = "test-hooks")]
    faults: std::sync::atomic::AtomicU32,
    #[cfg(feature = "test-hooks")]
    hold: std::sync::Mutex<Option<recorder::Hold>>,
    fallbacks: AtomicU64,
    recreated: AtomicU64,
}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuBackend")
            .field("adapter", &self.adapter_name)
            .finish_non_exhaustive()
    }
}

impl GpuBackend {
    /// Create the device on `adapter`, building every pipeline.
    pub fn new(instance: wgpu::Instance, adapter: &wgpu::Adapter) -> Result<Self, GpuError> {
        let ctx = GpuContext::new(adapter)?;
        tracing::info!(adapter = %ctx.info.name, device_type = ?ctx.info.device_type, "GPU backend ready");
        Ok(Self {
            instance,
            adapter_name: ctx.info.name.clone(),
            ctx: RwLock::new(Arc::new(ctx)),
            budget: budget::DeviceBudget::new(budget::DEFAULT_BUDGET_BYTES),
            #[cfg(feature = "test-hooks")]
            faults: std::sync::atomic::AtomicU32::new(0),
            #[cfg(feature = "test-hooks")]
            hold: std::sync::Mutex::new(None),
            fallbacks: AtomicU64::new(0),
            recreated: AtomicU64::new(0),
        })
    }

    /// The adapter's name.
    pub fn adapter_name(&self) -> &str {
        &self.adapter_name
    }

    /// Whether the device has timestamp queries, so that each render
    /// reports its kernels' own time ([`GpuStats::kernel_ns`]).
    pub fn has_timestamps(&self) -> bool {
        self.current().is_ok_and(|c| c.timestamps)
    }

    /// Largest image (bytes) one storage binding holds on this device;
    /// larger images are processed on the CPU.
    pub fn max_binding(&self) -> u64 {
        self.current().map_or(0, |c| c.max_binding())
    }

    /// The device as it is now (lost or not).
    fn current(&self) -> Result<Arc<GpuContext>, GpuError> {
        self.ctx
            .read()
            .map(|c| c.clone())
            .map_err(|_| GpuError::Device("GPU state poisoned".into()))
    }

    /// The device for a job: recreated first when it was lost, once,
    /// whichever job sees the loss first.
    fn context(&self) -> Result<Arc<GpuContext>, GpuError> {
        let seen = self.current()?;
        if !seen.is_lost() {
            return Ok(seen);
        }
        let mut ctx = self
            .ctx
            .write()
            .map_err(|_| GpuError::Device("GPU state poisoned".into()))?;
        if Arc::ptr_eq(&ctx, &seen) {
            *ctx = Arc::new(self.recreate()?);
        }
        Ok(ctx.clone())
    }

    /// Test hook: make the next `n` jobs hit a real device validation error.
    #[cfg(feature = "test-hooks")]
    pub fn inject_faults(&self, n: u32) {
        self.faults.store(n, Ordering::SeqCst);
    }

    /// Test hook: the next job to start stops right after it reads an
    /// image back in the middle of its recording (`trim`, a smart crop),
    /// says so on the first channel, and goes on when the second one sends
    /// (or is dropped, or after 60 s); meanwhile other jobs use the device.
    /// A next job with no such readback drops the hold, and the first
    /// channel disconnects.
    #[cfg(feature = "test-hooks")]
    pub fn hold_next_mid_job_readback(
        &self,
    ) -> (std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>) {
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel();
        if let Ok(mut h) = self.hold.lock() {
            *h = Some(recorder::Hold {
                held: held_tx,
                go: go_rx,
            });
        }
        (held_rx, go_tx)
    }

    /// Test hook: behave as if the device had just been lost; the next job
    /// recreates it.
    #[cfg(feature = "test-hooks")]
    pub fn simulate_device_loss(&self) {
        if let Ok(c) = self.current() {
            c.mark_lost();
        }
    }

    /// Limit the device memory jobs in flight may reserve together
    /// (`gpu_memory_mib`), and start measuring the peak anew.
    pub fn set_memory_budget(&self, bytes: u64) {
        self.budget.set_limit(bytes);
    }

    /// Test hook: the most device memory reserved at once since the budget
    /// was last set.
    #[cfg(feature = "test-hooks")]
    pub fn memory_budget_peak(&self) -> u64 {
        self.budget.peak()
    }

    /// Test hook: the device memory a job reserves ([`budget::job_bytes`]).
    #[cfg(feature = "test-hooks")]
    pub fn job_bytes(&self, src: &Frame, edit: &Edit, inputs: &OpContext) -> u64 {
        budget::job_bytes(src, edit, inputs)
    }

    /// Jobs redone on the CPU after a GPU failure, since start-up.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::SeqCst)
    }

    /// Count one fallback (called by the backend dispatcher).
    pub(crate) fn note_fallback(&self) {
        self.fallbacks.fetch_add(1, Ordering::SeqCst);
    }

    /// Devices recreated after a loss, since start-up.
    pub fn recreated(&self) -> u64 {
        self.recreated.load(Ordering::SeqCst)
    }

    /// Bytes held idle in the buffer pool.
    pub fn pool_idle_bytes(&self) -> u64 {
        self.current()
            .and_then(|c| c.pool().map(|p| p.idle_bytes()))
            .unwrap_or(0)
    }

    /// Non-zero bytes left in the pool's idle buffers: 0 when every job's
    /// pixels were wiped from device memory. Reads every idle buffer back,
    /// so this is for tests and diagnostics, not the job path.
    #[cfg(feature = "test-hooks")]
    pub fn pooled_nonzero_bytes(&self) -> Result<u64, GpuError> {
        let ctx = self.current()?;
        let pool = ctx.pool()?;
        let mut nonzero = 0u64;
        for buf in pool.idle_readable() {
            let probe = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("imgworker pool probe"),
                size: buf.size(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
            let source = if buf.usage().contains(wgpu::BufferUsages::COPY_SRC) {
                enc.copy_buffer_to_buffer(buf, 0, &probe, 0, buf.size());
                &probe
            } else {
                buf
            };
            ctx.queue.submit([enc.finish()]);
            let index = ctx.queue.submit([]);
            recorder::map_wait(
                &ctx,
                source.slice(..),
                wgpu::MapMode::Read,
                Some(index),
                None,
            )?;
            let data = source
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError::Device(e.to_string()))?;
            nonzero += data.iter().filter(|&&b| b != 0).count() as u64;
            drop(data);
            source.unmap();
        }
        Ok(nonzero)
    }

    /// A new device on the same adapter, with an empty pool.
    fn recreate(&self) -> Result<GpuContext, GpuError> {
        let adapter = adapters(&self.instance)
            .into_iter()
            .find(|a| a.get_info().name == self.adapter_name)
            .ok_or_else(|| GpuError::Init(format!("adapter {} is gone", self.adapter_name)))?;
        let ctx = GpuContext::new(&adapter)?;
        self.recreated.fetch_add(1, Ordering::SeqCst);
        tracing::warn!(adapter = %self.adapter_name, "GPU device recreated after a loss");
        Ok(ctx)
    }

    /// Run the shared ops once and each output's trailing ops, all on the
    /// GPU: one upload of the source, one download per output.
    pub fn render(
        &self,
        src: &Frame,
        edit: &Edit,
        inputs: &OpContext,
    ) -> Result<(Vec<RgbaImage>, GpuStats), GpuError> {
        let ctx = self.context()?;
        // Room on the device first: jobs queue for memory, not fail for it.
        let lease = self
            .budget
            .reserve(budget::job_bytes(src, edit, inputs), inputs.deadline)?;
        // Error scopes are per thread: these catch this job's errors only.
        let validation = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let mut rec = Recorder::new(&ctx, inputs.deadline, lease);
        #[cfg(feature = "test-hooks")]
        if self
            .faults
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            rec.inject_fault();
        }
        #[cfg(feature = "test-hooks")]
        if let Some(h) = self.hold.lock().ok().and_then(|mut h| h.take()) {
            rec.hold(h);
        }
        let recorded = (|| {
            let mut gpu_inputs = GpuInputs {
                masks: inputs.masks.clone(),
                ..Default::default()
            };
            for (name, img) in &inputs.overlays {
                gpu_inputs
                    .overlays
                    .push((name.clone(), rec.upload(img, 1)?));
                rec.stats.overlay_uploads += 1;
                rec.stats.uploads -= 1;
            }
            let source = rec.upload(&src.img, src.orientation)?;
            let mut target = Gpu {
                rec: &mut rec,
                inputs: &gpu_inputs,
            };
            let shared = target.chain(source, &edit.ops, inputs)?;
            for out in &edit.outputs {
                let img = target.chain(shared.clone(), &out.ops, inputs)?;
                target.rec.download(&img)?;
            }
            Ok::<(), GpuError>(())
        })();
        let finished = match recorded {
            Ok(()) => rec.finish(),
            Err(e) => {
                drop(rec);
                Err(e)
            }
        };
        let oom = pollster::block_on(oom.pop());
        let validation = pollster::block_on(validation.pop());
        if let Some(e) = oom.or(validation) {
            return Err(GpuError::Device(e.to_string()));
        }
        if ctx.is_lost() {
            return Err(GpuError::Device(
                "the device was lost during the job".into(),
            ));
        }
        let (images, stats, buffers) = finished?;
        ctx.pool()?.give_back(buffers);
        Ok((images, stats))
    }
}

/// The GPU recorder as a [`ChainTarget`].
struct Gpu<'r, 'a> {
    rec: &'r mut Recorder<'a>,
    inputs: &'r GpuInputs,
}

impl Gpu<'_, '_> {
    /// Record a chain. It is planned first: an op that does not fit its
    /// input (the pipeline checks this before decoding) must fail here, not
    /// read out of bounds.
    fn chain(&mut self, img: GpuImage, ops: &[Op], ctx: &OpContext) -> Result<GpuImage, GpuError> {
        let mut shape = img.shape();
        for op in ops {
            shape = op.plan(shape).map_err(|e| GpuError::Plan(e.to_string()))?;
        }
        run_chain(self, img, ops, ctx)
    }
}

impl ChainTarget for Gpu<'_, '_> {
    type Image = GpuImage;
    type Error = GpuError;
    const BACKEND: &'static str = "gpu";

    fn shape(img: &GpuImage) -> Shape {
        img.shape()
    }

    fn op(&mut self, op: &Op, img: GpuImage) -> Result<GpuImage, GpuError> {
        op.record_gpu(recorder::GpuStep {
            rec: self.rec,
            src: &img,
            inputs: self.inputs,
        })
    }

    fn point_run(&mut self, ops: &[Op], img: GpuImage) -> Result<GpuImage, GpuError> {
        let run: Vec<(&str, &dyn PointOp)> = ops
            .iter()
            .filter_map(|op| op.as_point().map(|p| (op.name(), p)))
            .collect();
        self.rec.point_run(&img, &run)
    }
}
