//! The device memory that jobs in flight may hold together. A job reserves
//! its estimate ([`job_bytes`]) before it records anything and waits while
//! the reservations of the jobs already running leave too little, so many
//! concurrent jobs queue for device memory instead of failing with an
//! out-of-memory error. Jobs are admitted in arrival order, so a large job
//! is not starved by a stream of small ones; a job larger than the whole
//! budget runs alone.

use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use super::pool::size_class;
use super::GpuError;
use crate::error::JobError;
use crate::job::Edit;
use crate::ops::{Dims, Frame, Op, OpContext, Shape};

/// The default budget: 4 GiB, well inside a data-centre GPU's memory and a
/// large share of a workstation's; wgpu does not report device memory.
pub(crate) const DEFAULT_BUDGET_BYTES: u64 = 4 << 30;

/// Reservations against a budget, shared by the jobs of one worker (it
/// outlives a device lost and recreated).
#[derive(Debug)]
pub(crate) struct DeviceBudget {
    state: Mutex<Usage>,
    changed: Condvar,
}

#[derive(Debug)]
struct Usage {
    limit: u64,
    in_use: u64,
    /// The most ever reserved at once (for tests and diagnostics).
    peak: u64,
    /// The next arrival's ticket, and the ticket admitted next.
    next_ticket: u64,
    serving: u64,
    /// Tickets whose jobs gave up waiting (their deadline passed).
    abandoned: BTreeSet<u64>,
}

impl Usage {
    /// Move `serving` past tickets whose jobs gave up.
    fn skip_abandoned(&mut self) {
        while self.abandoned.remove(&self.serving) {
            self.serving += 1;
        }
    }
}

/// A reservation, released when dropped (after the job's buffers are
/// wiped and returned, so that memory the device still uses stays counted).
#[derive(Debug)]
pub(crate) struct Lease {
    budget: Arc<DeviceBudget>,
    bytes: u64,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut u) = self.budget.state.lock() {
            u.in_use -= self.bytes;
        }
        self.budget.changed.notify_all();
    }
}

impl DeviceBudget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(Usage {
                limit,
                in_use: 0,
                peak: 0,
                next_ticket: 0,
                serving: 0,
                abandoned: BTreeSet::new(),
            }),
            changed: Condvar::new(),
        })
    }

    /// Reserve `bytes` in arrival order, waiting while earlier jobs queue
    /// or while the jobs running hold too much of the budget (a job larger
    /// than the budget waits until it is alone), and failing with
    /// `limit_exceeded` at the job's `deadline`.
    pub(crate) fn reserve(
        self: &Arc<Self>,
        bytes: u64,
        deadline: Option<Instant>,
    ) -> Result<Lease, GpuError> {
        let poisoned = || GpuError::Device("the GPU memory budget is poisoned".into());
        let mut u = self.state.lock().map_err(|_| poisoned())?;
        let ticket = u.next_ticket;
        u.next_ticket += 1;
        while u.serving != ticket || (u.in_use > 0 && u.in_use + bytes > u.limit) {
            u = match deadline {
                None => self.changed.wait(u).map_err(|_| poisoned())?,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        u.abandoned.insert(ticket);
                        u.skip_abandoned();
                        drop(u);
                        self.changed.notify_all();
                        return Err(GpuError::Job(JobError::limit_exceeded(
                            "job exceeded its deadline",
                        )));
                    }
                    self.changed
                        .wait_timeout(u, left)
                        .map_err(|_| poisoned())?
                        .0
                }
            };
        }
        u.serving += 1;
        u.skip_abandoned();
        u.in_use += bytes;
        u.peak = u.peak.max(u.in_use);
        drop(u);
        self.changed.notify_all();
        Ok(Lease {
            budget: self.clone(),
            bytes,
        })
    }

    /// Set the limit; jobs waiting for room are woken to look again.
    pub(crate) fn set_limit(&self, limit: u64) {
        if let Ok(mut u) = self.state.lock() {
            u.limit = limit;
            u.peak = u.in_use;
        }
        self.changed.notify_all();
    }

    /// The most reserved at once since the limit was last set.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn peak(&self) -> u64 {
        self.state.lock().map_or(0, |u| u.peak)
    }
}

/// An estimate of the device bytes a job holds at once, from its plan: the
/// source and its upload staging, each overlay and mask, every image its
/// chains produce (a resize also its premultiplied copy of the input and
/// its intermediate between passes, `f32` in linear light; a blur two
/// passes, a sharpen three; an op that reads pixels back to decide its
/// size, its staging copy), and each output's readback, each rounded up to
/// the pool's size class. Intermediates are not freed during a job, so this
/// is close to what the job holds at its end.
pub(crate) fn job_bytes(src: &Frame, edit: &Edit, inputs: &OpContext) -> u64 {
    let rgba = |d: Dims| size_class(d.pixels() * 4);
    let source = Shape {
        dims: Dims::new(src.img.width(), src.img.height()),
        orientation: src.orientation,
    };
    let mut total = 2 * rgba(source.dims);
    for img in inputs.overlays.values() {
        total += 2 * rgba(Dims::new(img.width(), img.height()));
    }
    for mask in inputs.masks.values() {
        total += 2 * size_class(u64::from(mask.width()) * u64::from(mask.height()));
    }
    let op_bytes = |op: &Op, input: Dims, output: Dims| -> u64 {
        match op {
            Op::Resize(r) => {
                let between = Dims::new(output.width, input.height);
                let pass = if r.linear {
                    size_class(between.pixels() * 16)
                } else {
                    rgba(input) + rgba(between)
                };
                pass + 2 * rgba(output)
            }
            Op::Blur(_) => 2 * rgba(output),
            Op::Sharpen(_) => 3 * rgba(output),
            Op::Trim(_) | Op::Crop(_) => 2 * rgba(output) + rgba(input),
            _ => rgba(output),
        }
    };
    let mut chain = |mut shape: Shape, ops: &[Op]| -> Shape {
        for op in ops {
            let Ok(next) = op.plan(shape) else { break };
            total += op_bytes(op, shape.dims, next.dims);
            shape = next;
        }
        shape
    };
    let shared = chain(source, &edit.ops);
    let mut outputs = Vec::with_capacity(edit.outputs.len());
    for out in &edit.outputs {
        outputs.push(chain(shared, &out.ops));
    }
    total + outputs.iter().map(|s| rgba(s.dims)).sum::<u64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reservations_wait_for_room_in_arrival_order() {
        let budget = DeviceBudget::new(100);
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
        // Larger than the budget, alone: it runs.
        let big = budget.reserve(500, None).unwrap();
        // At its deadline a waiting job fails as on the CPU, and gives up
        // its turn: the next arrival is not stuck behind it.
        let err = budget
            .reserve(1, Some(Instant::now() + Duration::from_millis(20)))
            .unwrap_err();
        assert!(matches!(err, GpuError::Job(ref e) if e.code.as_str() == "limit_exceeded"));
        drop(big);
        assert!(budget.reserve(1, None).is_ok());
    }

    #[test]
    fn a_large_job_is_not_starved_by_small_ones() {
        let budget = DeviceBudget::new(100);
        let small = budget.reserve(30, None).unwrap();
        // A large job arrives and waits for room ...
        let b = budget.clone();
        let large = std::thread::spawn(move || b.reserve(90, None).map(|_| ()).is_ok());
        std::thread::sleep(Duration::from_millis(50));
        // ... and a small one that would fit now must queue behind it.
        let b = budget.clone();
        let later = std::thread::spawn(move || b.reserve(10, None).map(|_| ()).is_ok());
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !later.is_finished(),
            "a later small job overtook the large one"
        );
        drop(small);
        assert!(large.join().unwrap());
        assert!(later.join().unwrap());
    }
}
