//! Reuse of GPU buffers across jobs, keyed by size class and usage.
//!
//! A buffer taken from the pool may hold another job's pixels beyond the
//! region this job uses, so every kernel writes each pixel of its output and
//! reads only pixels written earlier in the same job; in addition every
//! pixel buffer is zeroed at the end of its job, before it comes back here
//! (see `recorder::wipe`), so idle buffers hold no one's pixels.

use std::collections::HashMap;

/// Smallest buffer handed out (bytes).
const MIN_CLASS: u64 = 64 * 1024;
/// Most bytes kept idle in the pool; beyond that, returned buffers are dropped.
const MAX_IDLE_BYTES: u64 = 1 << 30;

/// Idle buffers by (size class, usage).
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    idle: HashMap<(u64, u32), Vec<wgpu::Buffer>>,
    idle_bytes: u64,
}

/// The size class for `bytes`: the next power of two, at least 64 KiB.
pub(crate) fn size_class(bytes: u64) -> u64 {
    bytes.max(MIN_CLASS).next_power_of_two()
}

impl BufferPool {
    /// A buffer of at least `bytes` with `usage`, reused when one is idle.
    pub fn take(
        &mut self,
        device: &wgpu::Device,
        bytes: u64,
        usage: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        let class = size_class(bytes);
        if let Some(buf) = self.idle.get_mut(&(class, usage.bits())).and_then(Vec::pop) {
            self.idle_bytes -= class;
            return buf;
        }
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("imgworker"),
            size: class,
            usage,
            mapped_at_creation: false,
        })
    }

    /// Return buffers for later jobs (dropping them past the idle cap).
    pub(crate) fn give_back(&mut self, buffers: impl IntoIterator<Item = wgpu::Buffer>) {
        for buf in buffers {
            let class = buf.size();
            if self.idle_bytes + class > MAX_IDLE_BYTES {
                continue;
            }
            self.idle_bytes += class;
            self.idle
                .entry((class, buf.usage().bits()))
                .or_default()
                .push(buf);
        }
    }

    /// Idle buffers that can be read back (for checks that they are zero).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn idle_readable(&self) -> impl Iterator<Item = &wgpu::Buffer> {
        self.idle.values().flatten().filter(|b| {
            b.usage()
                .intersects(wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::MAP_READ)
        })
    }

    /// Bytes held idle.
    pub(crate) fn idle_bytes(&self) -> u64 {
        self.idle_bytes
    }
}
