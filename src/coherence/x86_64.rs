//! x86-64 cache maintenance: `clflush`, `clflushopt`, `clwb`, with `sfence`/`mfence`.
//!
//! Sources: Intel SDM vol. 2A (`CPUID` leaf 1 EDX bit 19 `CLFSH` and EBX bits 15:8, the
//! `CLFLUSH` line size in 8-byte units; leaf 7 sub-leaf 0 EBX bit 23 `CLFLUSHOPT`, bit 24
//! `CLWB`) and vol. 2A/2B on each instruction's ordering: `clflush` is ordered with writes and
//! other `clflush`es, `clflushopt` and `clwb` only by a fence. Linux does the same
//! (`clflush_cache_range`: `mb()` around `clflushopt`; `wmb()` = `sfence`, `rmb()` = `lfence`).

use core::arch::asm;
use core::arch::x86_64::{__cpuid, __cpuid_count, __get_cpuid_max};

use super::lines::{Instruction, line_starts};
use crate::sync::OnceLock;

/// What `cpuid` says, read once per process (`cpuid` traps to the hypervisor in a virtual
/// machine, so it is never on a mapping's path).
#[derive(Clone, Copy, Debug)]
struct Features {
    clflushopt: bool,
    clwb: bool,
    line: usize,
}

fn features() -> Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    *FEATURES.get_or_init(|| {
        let leaf1 = __cpuid(1);
        let units = ((leaf1.ebx >> 8) & 0xff) as usize;
        let (max_leaf, _) = __get_cpuid_max(0);
        let leaf7_ebx = if max_leaf >= 7 {
            __cpuid_count(7, 0).ebx
        } else {
            0
        };
        Features {
            clflushopt: leaf7_ebx & (1 << 23) != 0,
            clwb: leaf7_ebx & (1 << 24) != 0,
            // A CPU that reports no size (some hypervisors) gets the x86-64 line size, 64.
            line: if units == 0 { 64 } else { units * 8 },
        }
    })
}

/// The best (clean, clean-and-invalidate) pair on this CPU.
pub(super) fn best() -> (Instruction, Instruction) {
    let f = features();
    let invalidate = if f.clflushopt {
        Instruction::Clflushopt
    } else {
        Instruction::Clflush
    };
    let clean = if f.clwb {
        Instruction::Clwb
    } else {
        invalidate
    };
    (clean, invalidate)
}

/// Whether this CPU runs `instruction`, or why not.
pub(super) fn supports(instruction: Instruction) -> Result<(), &'static str> {
    let f = features();
    match instruction {
        // CLFLUSH came with SSE2, which every x86-64 CPU has.
        Instruction::Clflush | Instruction::FenceOnly => Ok(()),
        Instruction::Clflushopt if f.clflushopt => Ok(()),
        Instruction::Clflushopt => Err("this CPU does not report CLFLUSHOPT (cpuid leaf 7)"),
        Instruction::Clwb if f.clwb => Ok(()),
        Instruction::Clwb => Err("this CPU does not report CLWB (cpuid leaf 7)"),
        Instruction::DcCvac | Instruction::DcCivac => Err("it is an aarch64 instruction"),
    }
}

/// The cache line size `clflush` works on, in bytes, as `cpuid` reports it.
pub(super) fn line_size() -> usize {
    features().line
}

/// The most bytes one write-back writes: a line (x86-64 caches write back whole lines).
pub(super) fn writeback_granule() -> usize {
    features().line
}

/// Runs `instruction` on every line `bytes` touch, then the fence that completes it.
///
/// # Safety
/// 1. `supports(instruction)` is `Ok` on this CPU.
/// 2. `line` is a power of two no larger than the CPU's line size.
pub(super) unsafe fn maintain(instruction: Instruction, bytes: &[u8], line: usize) {
    debug_assert!(supports(instruction).is_ok());
    let lines = line_starts(bytes, line);
    match instruction {
        Instruction::Clflush => {
            for p in lines {
                // SAFETY: `p` lies in a line that `bytes` touch, so it is mapped; `clflush`
                // writes back and invalidates without changing memory. Every x86-64 CPU has it.
                unsafe { asm!("clflush [{0}]", in(reg) p, options(nostack, preserves_flags)) };
            }
            mfence();
        }
        Instruction::Clflushopt => {
            for p in lines {
                // SAFETY: as for clflush; promise 1: the CPU has CLFLUSHOPT.
                unsafe { asm!("clflushopt [{0}]", in(reg) p, options(nostack, preserves_flags)) };
            }
            sfence();
        }
        Instruction::Clwb => {
            for p in lines {
                // SAFETY: as for clflush (clwb only writes back); promise 1: the CPU has CLWB.
                unsafe { asm!("clwb [{0}]", in(reg) p, options(nostack, preserves_flags)) };
            }
            sfence();
        }
        Instruction::FenceOnly | Instruction::DcCvac | Instruction::DcCivac => mfence(),
    }
}

/// Before a coherent device may read what the CPU wrote: every earlier store, non-temporal
/// ones included, is globally visible before any later store (the doorbell).
pub(super) fn barrier_for_device() {
    sfence();
}

/// After a coherent device wrote: later loads are not performed before earlier ones (the
/// completion flag).
pub(super) fn barrier_for_cpu() {
    // SAFETY: lfence has no operands and no preconditions; SSE2 is part of x86-64.
    unsafe { asm!("lfence", options(nostack, preserves_flags)) };
}

fn sfence() {
    // SAFETY: sfence has no operands and no preconditions; SSE is part of x86-64.
    unsafe { asm!("sfence", options(nostack, preserves_flags)) };
}

fn mfence() {
    // SAFETY: mfence has no operands and no preconditions; SSE2 is part of x86-64.
    unsafe { asm!("mfence", options(nostack, preserves_flags)) };
}
