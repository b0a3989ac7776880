//! Cache-line maintenance: which instructions, checked against the CPU, and the loops.

use core::fmt;

use super::arch;
use super::granule::{refusal, usable_granule, usable_line};

/// A cache maintenance instruction (or its absence), as [`LineMethod`] reports and takes it.
///
/// ```
/// use umrf::coherence::Instruction;
/// assert_eq!(Instruction::Clflushopt.to_string(), "clflushopt");
/// assert_eq!(Instruction::DcCivac.to_string(), "dc civac");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Instruction {
    /// x86-64 `clflush`: write back and invalidate one line; ordered, slow. Every x86-64 CPU
    /// has it.
    Clflush,
    /// x86-64 `clflushopt`: write back and invalidate one line, weakly ordered (needs
    /// `sfence`), so many lines are flushed in parallel.
    Clflushopt,
    /// x86-64 `clwb`: write back one line and keep it cached, weakly ordered (needs `sfence`).
    /// It cannot invalidate.
    Clwb,
    /// aarch64 `dc cvac`: clean one line to the point of coherency. It cannot invalidate.
    DcCvac,
    /// aarch64 `dc civac`: clean and invalidate one line to the point of coherency.
    DcCivac,
    /// No line maintenance, only a full fence: on targets umrf has no instructions for, and
    /// under Miri, which cannot run them.
    FenceOnly,
}

impl Instruction {
    /// Whether the instruction can invalidate as well as clean.
    fn invalidates(self) -> bool {
        !matches!(self, Instruction::Clwb | Instruction::DcCvac)
    }
}

impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Instruction::Clflush => "clflush",
            Instruction::Clflushopt => "clflushopt",
            Instruction::Clwb => "clwb",
            Instruction::DcCvac => "dc cvac",
            Instruction::DcCivac => "dc civac",
            Instruction::FenceOnly => "fence only",
        })
    }
}

/// An instruction this CPU (or this build) cannot run, returned by [`LineMethod::using`].
///
/// ```
/// use umrf::coherence::{Instruction, LineMethod};
/// # #[cfg(all(target_arch = "x86_64", not(miri)))] {
/// let err = LineMethod::using(Instruction::DcCvac).unwrap_err();
/// assert_eq!(err.instruction(), Instruction::DcCvac);
/// assert!(err.to_string().contains("dc cvac"));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedInstruction {
    instruction: Instruction,
    reason: &'static str,
}

impl UnsupportedInstruction {
    /// The instruction that was asked for.
    pub fn instruction(&self) -> Instruction {
        self.instruction
    }
}

impl fmt::Display for UnsupportedInstruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cache maintenance with `{}` is not available: {}; use `LineMethod::detect()` for the best this CPU has",
            self.instruction, self.reason
        )
    }
}

impl std::error::Error for UnsupportedInstruction {}

/// The instructions software coherence uses on this CPU, checked to exist: one to *clean*
/// lines (write dirty data back to memory) and one to *clean and invalidate* them (write back,
/// then drop them from the caches), with the line size they step by.
///
/// Values exist only for instructions the CPU runs: [`detect`](Self::detect) picks the best,
/// [`using`](Self::using) checks a chosen one. The operations take `&[u8]`: cleaning and
/// invalidating never change what memory holds, so they are safe on any readable bytes.
///
/// ```
/// use umrf::coherence::{Instruction, LineMethod};
/// let method = LineMethod::detect();
/// let data = vec![1u8; 10_000];
/// method.clean(&data); // every line of `data` is now in memory
/// method.clean_invalidate(&data); // and out of the caches
/// assert!(method.line_size().is_power_of_two());
/// # #[cfg(all(target_arch = "x86_64", not(miri)))]
/// assert_eq!(LineMethod::using(Instruction::Clflush)?.clean_instruction(), Instruction::Clflush);
/// # Ok::<(), umrf::coherence::UnsupportedInstruction>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineMethod {
    clean: Instruction,
    invalidate: Instruction,
    line: usize,
    granule: usize,
}

impl LineMethod {
    /// The best instructions this CPU has: on x86-64 `clwb` to clean (else `clflushopt`, else
    /// `clflush`) and `clflushopt` to invalidate (else `clflush`); on aarch64 `dc cvac` and
    /// `dc civac`; elsewhere, and under Miri, [`Instruction::FenceOnly`].
    ///
    /// ```
    /// use umrf::coherence::{Instruction, LineMethod};
    /// let best = LineMethod::detect();
    /// # #[cfg(all(target_arch = "aarch64", not(miri)))]
    /// assert_eq!(best.invalidate_instruction(), Instruction::DcCivac);
    /// # let _ = best;
    /// ```
    pub fn detect() -> LineMethod {
        let (clean, invalidate) = arch::best();
        LineMethod::with_cache(clean, invalidate)
    }

    /// The instructions with this CPU's line size and write-back granule, each checked to be
    /// a power of two in every build (else replaced by a safe value, reported by
    /// [`line_size`](Self::line_size) and [`writeback_granule`](Self::writeback_granule)).
    fn with_cache(clean: Instruction, invalidate: Instruction) -> LineMethod {
        let line = usable_line(arch::line_size());
        LineMethod {
            clean,
            invalidate,
            line,
            granule: usable_granule(arch::writeback_granule(), line),
        }
    }

    /// As [`detect`](Self::detect), with a write-back granule of `granule` bytes, to test the
    /// refusal of mappings on CPUs whose granule is larger than this one's.
    #[cfg(test)]
    pub(crate) fn detect_with_granule(granule: usize) -> LineMethod {
        LineMethod {
            granule,
            ..LineMethod::detect()
        }
    }

    /// Maintenance with `instruction` for cleaning, and for invalidating too when it can (else
    /// the best invalidating instruction: `clwb` pairs with `clflushopt` or `clflush`,
    /// `dc cvac` with `dc civac`).
    ///
    /// # Errors
    /// [`UnsupportedInstruction`] when the CPU (or, under Miri, the interpreter) cannot run it.
    ///
    /// ```
    /// use umrf::coherence::{Instruction, LineMethod};
    /// // Every target can do without line maintenance.
    /// let fences = LineMethod::using(Instruction::FenceOnly)?;
    /// assert_eq!(fences.invalidate_instruction(), Instruction::FenceOnly);
    /// # Ok::<(), umrf::coherence::UnsupportedInstruction>(())
    /// ```
    pub fn using(instruction: Instruction) -> Result<LineMethod, UnsupportedInstruction> {
        if let Err(reason) = arch::supports(instruction) {
            return Err(UnsupportedInstruction {
                instruction,
                reason,
            });
        }
        let invalidate = if instruction.invalidates() {
            instruction
        } else {
            arch::best().1
        };
        Ok(LineMethod::with_cache(instruction, invalidate))
    }

    /// The instruction that cleans.
    pub fn clean_instruction(&self) -> Instruction {
        self.clean
    }

    /// The instruction that cleans and invalidates.
    pub fn invalidate_instruction(&self) -> Instruction {
        self.invalidate
    }

    /// The cache line size the loops step by, in bytes (the smallest data cache line).
    pub fn line_size(&self) -> usize {
        self.line
    }

    /// The cache write-back granule, in bytes: the most memory one line's write-back may write
    /// (aarch64 `CTR_EL0.CWG`, 2 KiB where the CPU does not report it; the line size on
    /// x86-64). A buffer mapped with software coherence must have a block that starts on a
    /// granule and is a whole number of granules ([`MapError`](super::MapError) otherwise).
    ///
    /// ```
    /// use umrf::coherence::LineMethod;
    /// let method = LineMethod::detect();
    /// assert!(method.writeback_granule().is_power_of_two());
    /// assert!(method.writeback_granule() >= method.line_size());
    /// ```
    pub fn writeback_granule(&self) -> usize {
        self.granule
    }

    /// Why a block of `block_size` bytes at `start` may not be maintained by this method
    /// while a device writes it, if it may not.
    pub(crate) fn refusal(&self, start: usize, block_size: usize) -> Option<&'static str> {
        refusal(start, block_size, self.granule)
    }

    /// Writes every cache line that `bytes` touch back to memory (the point of coherency),
    /// then waits for that to complete.
    ///
    /// Lines that `bytes` share with neighbouring data are cleaned whole; cleaning never
    /// changes memory's contents, so that is harmless.
    pub fn clean(&self, bytes: &[u8]) {
        // SAFETY: `self.clean` was checked by `detect` or `using` to run on this CPU (the only
        // constructors), and `self.line` is this CPU's line size.
        unsafe { arch::maintain(self.clean, bytes, self.line) }
    }

    /// Writes every cache line that `bytes` touch back to memory and drops it from the
    /// caches, then waits for that to complete: the next read comes from memory.
    pub fn clean_invalidate(&self, bytes: &[u8]) {
        // SAFETY: as in `clean`, for `self.invalidate`.
        unsafe { arch::maintain(self.invalidate, bytes, self.line) }
    }
}

/// The start of every cache line of `line` bytes (a power of two) that `bytes` touch; none for
/// an empty slice, whose pointer may dangle.
#[cfg_attr(
    not(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(miri))),
    allow(dead_code)
)]
pub(super) fn line_starts(bytes: &[u8], line: usize) -> impl Iterator<Item = *const u8> {
    debug_assert!(line.is_power_of_two());
    let start = bytes.as_ptr();
    let end = start.wrapping_add(bytes.len());
    let first = (!bytes.is_empty()).then(|| start.wrapping_sub(start.addr() & (line - 1)));
    core::iter::successors(first, move |p| Some(p.wrapping_add(line))).take_while(move |&p| p < end)
}

#[cfg(test)]
mod tests {
    use super::line_starts;

    #[test]
    fn line_starts_cover_exactly_the_lines_touched() {
        let data = [0u8; 512];
        let base = data.as_ptr().wrapping_add(64 - data.as_ptr().addr() % 64);
        let from = base.addr() - data.as_ptr().addr();
        // One byte, one line; an unaligned range spanning three lines; an aligned line.
        let cases = [
            (from + 5, 1, 1),
            (from + 60, 70, 3),
            (from + 64, 64, 1),
            (from, 128, 2),
        ];
        for (start, len, lines) in cases {
            let starts: Vec<_> = line_starts(&data[start..start + len], 64).collect();
            assert_eq!(starts.len(), lines, "{start}+{len}");
            assert!(starts.iter().all(|p| p.addr() % 64 == 0));
            assert!(starts[0].addr() <= data.as_ptr().addr() + start);
        }
        // An empty slice touches no line, even with a dangling, unaligned pointer.
        assert_eq!(line_starts(&[], 64).count(), 0);
        assert_eq!(line_starts(&data[from + 3..from + 3], 64).count(), 0);
    }
}
