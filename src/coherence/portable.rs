//! The fallback where umrf has no cache maintenance instructions: targets other than x86-64 and
//! aarch64, and Miri (which cannot run inline assembly or `cpuid`) on every target.
//!
//! Line maintenance becomes a sequentially consistent fence and [`Instruction::FenceOnly`] is
//! what [`LineMethod::detect`](super::LineMethod::detect) reports, so the fallback is visible.
//! That is correct for platforms whose DMA is coherent; on a non-coherent platform of another
//! architecture, software coherence needs that architecture's instructions here (for example
//! RISC-V `cbo.clean`/`cbo.flush`).

use super::lines::Instruction;
use crate::sync::{Ordering, fence};

/// Nothing but fences.
pub(super) fn best() -> (Instruction, Instruction) {
    (Instruction::FenceOnly, Instruction::FenceOnly)
}

/// Only [`Instruction::FenceOnly`] runs here.
pub(super) fn supports(instruction: Instruction) -> Result<(), &'static str> {
    match instruction {
        Instruction::FenceOnly => Ok(()),
        _ if cfg!(miri) => Err("Miri cannot run cache maintenance instructions"),
        _ => Err("umrf has no cache maintenance for this target"),
    }
}

/// A common line size; the loops do not step here.
pub(super) fn line_size() -> usize {
    64
}

/// The line size: nothing is written back here by umrf, so no block is refused.
pub(super) fn writeback_granule() -> usize {
    64
}

/// A full fence in place of line maintenance.
///
/// # Safety
/// None beyond the signature's; `unsafe` to match the architectures that have instructions.
pub(super) unsafe fn maintain(_instruction: Instruction, _bytes: &[u8], _line: usize) {
    fence(Ordering::SeqCst);
}

/// A full fence.
pub(super) fn barrier_for_device() {
    fence(Ordering::SeqCst);
}

/// A full fence.
pub(super) fn barrier_for_cpu() {
    fence(Ordering::SeqCst);
}
