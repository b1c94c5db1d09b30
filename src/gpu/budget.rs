//! The device memory that jobs in flight may hold together. A job reserves
//! its estimate ([`job_bytes`]) before it records anything and waits while
//! the reservations of the jobs already running leave too little, so many
//! concurrent jobs queue for device memory instead of failing with an
//! out-of-memory error. A job larger than the whole budget runs alone.

use std::sync::{Condvar, Mutex};
use std::time::Instant;

use super::pool::size_class;
use super::GpuError;
use crate::error::JobError;
use crate::job::Edit;
use crate::ops::{Frame, OpContext, Shape};

/// The default budget: 4 GiB, well inside a data-centre GPU's memory and a
/// large share of a workstation's; wgpu does not report device memory.
pub(crate) const DEFAULT_BUDGET_BYTES: u64 = 4 << 30;

/// Reservations against a budget.
#[derive(Debug)]
pub(crate) struct DeviceBudget {
    state: Mutex<Usage>,
    freed: Condvar,
}

#[derive(Debug)]
struct Usage {
    limit: u64,
    in_use: u64,
    /// The most ever reserved at once (for tests and diagnostics).
    peak: u64,
}

/// A reservation, released when dropped.
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    budget: &'a DeviceBudget,
    bytes: u64,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Ok(mut u) = self.budget.state.lock() {
            u.in_use -= self.bytes;
        }
        self.budget.freed.notify_all();
    }
}

impl DeviceBudget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            state: Mutex::new(Usage {
                limit,
                in_use: 0,
                peak: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// Reserve `bytes`, waiting while other jobs hold too much of the
    /// budget (a job larger than the budget waits until it is alone), and
    /// failing with `limit_exceeded` at the job's `deadline`.
    pub(crate) fn reserve(
        &self,
        bytes: u64,
        deadline: Option<Instant>,
    ) -> Result<Lease<'_>, GpuError> {
        let poisoned = || GpuError::Device("the GPU memory budget is poisoned".into());
        let mut u = self.state.lock().map_err(|_| poisoned())?;
        while u.in_use > 0 && u.in_use + bytes > u.limit {
            u = match deadline {
                None => self.freed.wait(u).map_err(|_| poisoned())?,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(GpuError::Job(JobError::limit_exceeded(
                            "job exceeded its deadline",
                        )));
                    }
                    self.freed.wait_timeout(u, left).map_err(|_| poisoned())?.0
                }
            };
        }
        u.in_use += bytes;
        u.peak = u.peak.max(u.in_use);
        Ok(Lease {
            budget: self,
            bytes,
        })
    }

    /// Set the limit (a test hook, and the worker's setting).
    pub(crate) fn set_limit(&self, limit: u64) {
        if let Ok(mut u) = self.state.lock() {
            u.limit = limit;
            u.peak = u.in_use;
        }
        self.freed.notify_all();
    }

    /// The most reserved at once since the limit was last set.
    pub(crate) fn peak(&self) -> u64 {
        self.state.lock().map_or(0, |u| u.peak)
    }
}

/// Device bytes a job may hold at once, by its plan: the source (and its
/// upload staging), each overlay, every image its chains produce (a
/// linear-light resize's `f32` intermediate counted at four times its
/// output), and each output's readback, each rounded up to the pool's size
/// class. An upper bound: intermediates are not freed during the job.
pub(crate) fn job_bytes(src: &Frame, edit: &Edit, inputs: &OpContext) -> u64 {
    let image = |s: Shape| size_class(s.dims.pixels() * 4);
    let source = Shape {
        dims: crate::ops::Dims::new(src.img.width(), src.img.height()),
        orientation: src.orientation,
    };
    let mut total = 2 * image(source);
    for img in inputs.overlays.values() {
        total += 2 * size_class(u64::from(img.width()) * u64::from(img.height()) * 4);
    }
    let chain = |mut shape: Shape, ops: &[crate::ops::Op], total: &mut u64| -> Shape {
        for op in ops {
            match op.plan(shape) {
                Ok(next) => {
                    let factor = match op {
                        crate::ops::Op::Resize(r) if r.linear => 5,
                        _ => 1,
                    };
                    *total += factor * image(next);
                    shape = next;
                }
                Err(_) => break,
            }
        }
        shape
    };
    let shared = chain(source, &edit.ops, &mut total);
    for out in &edit.outputs {
        let last = chain(shared, &out.ops, &mut total);
        total += image(last);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn reservations_wait_for_room_and_a_large_one_runs_alone() {
        let budget = Arc::new(DeviceBudget::new(100));
        let a = budget.reserve(60, None).unwrap();
        // 60 + 50 > 100: the second waits until the first is released.
        let b2 = budget.clone();
        let waiter = std::thread::spawn(move || {
            let _b = b2.reserve(50, None).unwrap();
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        drop(a);
        waiter.join().unwrap();
        assert_eq!(budget.peak(), 60);
        // Larger than the budget, alone: it runs.
        let big = budget.reserve(500, None).unwrap();
        // And at its deadline, a waiting job fails as on the CPU.
        let err = budget
            .reserve(1, Some(Instant::now() + Duration::from_millis(20)))
            .unwrap_err();
        assert!(matches!(err, GpuError::Job(ref e) if e.code.as_str() == "limit_exceeded"));
        drop(big);
        assert!(budget.reserve(1, None).is_ok());
    }
}
