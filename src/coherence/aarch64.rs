//! aarch64 cache maintenance: `dc cvac`, `dc civac`, with `dsb`.
//!
//! Sources: Arm Architecture Reference Manual for A-profile (DDI 0487), D7 "The AArch64 System
//! Level Memory Model" (cache maintenance to the point of coherency, `CTR_EL0.DminLine` =
//! log2 of the smallest data cache line in 4-byte words) and C6 (`DC CVAC`, `DC CIVAC`,
//! `DSB`). Linux sets `SCTLR_EL1.UCT` and `SCTLR_EL1.UCI`, so user space may read `CTR_EL0` and
//! run `DC CVAC`/`DC CIVAC` (`DC IVAC`, invalidate without clean, stays privileged). Linux's
//! own streaming DMA does the same: `dcache_clean_poc` for the device, `dcache_inval_poc` for
//! the CPU, each ended by `dsb sy`; `wmb()` = `dsb st`, `rmb()` = `dsb ld`.

use core::arch::asm;

use super::granule::from_ctr_el0;
use super::lines::{Instruction, line_starts};
use crate::sync::OnceLock;

/// The best (clean, clean-and-invalidate) pair: every Linux aarch64 CPU lets user space run
/// both.
pub(super) fn best() -> (Instruction, Instruction) {
    (Instruction::DcCvac, Instruction::DcCivac)
}

/// Whether this CPU runs `instruction`, or why not.
pub(super) fn supports(instruction: Instruction) -> Result<(), &'static str> {
    match instruction {
        Instruction::DcCvac | Instruction::DcCivac | Instruction::FenceOnly => Ok(()),
        Instruction::Clflush | Instruction::Clflushopt | Instruction::Clwb => {
            Err("it is an x86-64 instruction")
        }
    }
}

/// The (smallest data cache line, write-back granule) in bytes, from `CTR_EL0.DminLine` (bits
/// 19:16) and `CTR_EL0.CWG` (bits 27:24). Read once per process: on CPUs with cache-type
/// errata Linux traps the read and emulates it.
fn cache_geometry() -> (usize, usize) {
    static GEOMETRY: OnceLock<(usize, usize)> = OnceLock::new();
    *GEOMETRY.get_or_init(|| {
        let ctr: u64;
        // SAFETY: reading CTR_EL0 has no side effects; Linux lets EL0 read it
        // (SCTLR_EL1.UCT), or traps and emulates the read.
        unsafe { asm!("mrs {0}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
        from_ctr_el0(ctr)
    })
}

/// The smallest data cache line, in bytes (`CTR_EL0.DminLine`).
pub(super) fn line_size() -> usize {
    cache_geometry().0
}

/// The cache write-back granule, in bytes (`CTR_EL0.CWG`; 2 KiB when it reads 0).
pub(super) fn writeback_granule() -> usize {
    cache_geometry().1
}

/// Runs `instruction` on every line `bytes` touch, then `dsb sy`.
///
/// # Safety
/// 1. `supports(instruction)` is `Ok`.
/// 2. `line` is a power of two no larger than the smallest data cache line.
pub(super) unsafe fn maintain(instruction: Instruction, bytes: &[u8], line: usize) {
    debug_assert!(supports(instruction).is_ok());
    let lines = line_starts(bytes, line);
    match instruction {
        Instruction::DcCvac => {
            for p in lines {
                // SAFETY: `p` lies in a line that `bytes` touch, so it is mapped; a clean
                // writes back without changing memory. EL0 may run it (SCTLR_EL1.UCI).
                unsafe { asm!("dc cvac, {0}", in(reg) p, options(nostack, preserves_flags)) };
            }
        }
        Instruction::DcCivac => {
            for p in lines {
                // SAFETY: as for dc cvac; a clean and invalidate keeps memory's contents.
                unsafe { asm!("dc civac, {0}", in(reg) p, options(nostack, preserves_flags)) };
            }
        }
        Instruction::FenceOnly
        | Instruction::Clflush
        | Instruction::Clflushopt
        | Instruction::Clwb => {}
    }
    dsb_sy();
}

/// Before a device may read what the CPU wrote: every earlier store completes first.
pub(super) fn barrier_for_device() {
    // SAFETY: a barrier has no operands and no preconditions.
    unsafe { asm!("dsb st", options(nostack, preserves_flags)) };
}

/// After a device wrote: every earlier load completes before later accesses.
pub(super) fn barrier_for_cpu() {
    // SAFETY: a barrier has no operands and no preconditions.
    unsafe { asm!("dsb ld", options(nostack, preserves_flags)) };
}

fn dsb_sy() {
    // SAFETY: a barrier has no operands and no preconditions.
    unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
}
