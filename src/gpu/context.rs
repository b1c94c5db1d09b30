//! The device, its queue and every compute pipeline, built once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::pool::BufferPool;
use super::shaders::{entry_points, modules};
use super::GpuError;

/// A device with all pipelines compiled, shared by every job.
#[derive(Debug)]
pub(crate) struct GpuContext {
    /// What the adapter says of itself.
    pub info: wgpu::AdapterInfo,
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// The limits the device was created with (the adapter's own).
    pub limits: wgpu::Limits,
    /// The bind group layout shared by every kernel.
    pub layout: wgpu::BindGroupLayout,
    /// A tiny buffer bound where a kernel has no auxiliary data.
    pub(crate) dummy: wgpu::Buffer,
    /// A tiny uniform bound where a kernel has no parameters of its own.
    pub(crate) dummy_uniform: wgpu::Buffer,
    pipelines: HashMap<String, wgpu::ComputePipeline>,
    lost: Arc<AtomicBool>,
    /// Whether the device was created with timestamp queries.
    pub timestamps: bool,
    /// This device's idle buffers, shared by the jobs in flight (locked
    /// only to take or return a buffer).
    pool: Mutex<BufferPool>,
}

fn uniform(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl GpuContext {
    /// Create the device with the adapter's own limits (wgpu's defaults cap
    /// buffers at 256 MiB) and build every pipeline.
    pub fn new(adapter: &wgpu::Adapter) -> Result<Self, GpuError> {
        let limits = adapter.limits();
        // Timestamp queries, where the adapter has them, time the kernels
        // alone (GpuStats::kernel_ns) for the benchmarks.
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let desc = wgpu::DeviceDescriptor {
            label: Some("imgworker"),
            required_features: if timestamps {
                wgpu::Features::TIMESTAMP_QUERY
            } else {
                wgpu::Features::empty()
            },
            required_limits: limits.clone(),
            memory_hints: wgpu::MemoryHints::Performance,
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| GpuError::Init(e.to_string()))?;
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, msg| {
            tracing::warn!(?reason, message = %msg, "GPU device lost");
            flag.store(true, Ordering::SeqCst);
        });
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("imgworker kernels"),
            entries: &[
                storage(0, true),
                storage(1, false),
                uniform(2),
                storage(3, true),
                uniform(4),
                storage(5, true),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("imgworker kernels"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let mut pipelines = HashMap::new();
        for (name, src) in modules() {
            let entries = entry_points(&src);
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
            for entry in entries {
                let p = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&entry),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(&entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                pipelines.insert(entry, p);
            }
        }
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("imgworker dummy"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let dummy_uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("imgworker dummy uniform"),
            size: 16,
            usage: wgpu::BufferUsages::UNIFORM,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Shader(e.to_string()));
        }
        Ok(Self {
            info: adapter.get_info(),
            device,
            queue,
            limits,
            layout,
            dummy,
            dummy_uniform,
            pipelines,
            lost,
            timestamps,
            pool: Mutex::default(),
        })
    }

    /// The buffer pool, locked.
    pub(crate) fn pool(&self) -> Result<MutexGuard<'_, BufferPool>, GpuError> {
        self.pool
            .lock()
            .map_err(|_| GpuError::Device("the GPU buffer pool is poisoned".into()))
    }

    /// The pipeline of an entry point.
    pub fn pipeline(&self, entry: &str) -> Result<&wgpu::ComputePipeline, GpuError> {
        self.pipelines
            .get(entry)
            .ok_or_else(|| GpuError::Shader(format!("no compute entry point {entry}")))
    }

    /// Whether the device reported itself lost.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Flag the device as lost, as its loss callback does (test hook).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Largest storage binding, hence the largest image a kernel can see.
    pub fn max_binding(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }
}
