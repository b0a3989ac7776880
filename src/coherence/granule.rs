//! The cache write-back granule, and the mappings it forbids.
//!
//! A cache writes a dirty line back whole, and on some CPUs in units larger than the smallest
//! line: the *cache write-back granule* (aarch64 `CTR_EL0.CWG`, up to 2 KiB; Arm ARM DDI 0487,
//! D23 "CTR_EL0": "the architectural maximum of 512 words (2KB) must be assumed" when it reads
//! 0). With software coherence the device writes memory behind the caches; if a block shares a
//! granule with its neighbour and the CPU dirties the neighbour meanwhile, that granule's
//! write-back can overwrite what the device wrote. Linux keeps streaming DMA buffers apart for
//! the same reason (`ARCH_DMA_MINALIGN`, checked against `cache_line_size()` at boot on arm64).
//! So a mapping with software coherence is refused unless its block starts on a granule and is
//! a whole number of granules.
//!
//! The decoding and the check are plain functions of the values read from the CPU, so they are
//! tested on every target.

use core::fmt;

use bytemuck::Pod;

use crate::buffer::SharedBuffer;
use crate::residency::Residency;

/// The smallest line any CPU umrf maintains has: `CTR_EL0.DminLine` counts 4-byte words.
pub(crate) const MIN_LINE: usize = 4;

/// The largest write-back granule the Arm architecture allows, assumed when `CWG` reads 0.
pub(crate) const MAX_GRANULE: usize = 2048;

/// The line size to step by for a `reported` one: it if it is a power of two of at least
/// [`MIN_LINE`] bytes, else [`MIN_LINE`] (a smaller step still reaches every line, as each
/// instruction maintains the whole line holding its address; a step that is not a power of
/// two would skip lines).
pub(crate) fn usable_line(reported: usize) -> usize {
    if reported.is_power_of_two() && reported >= MIN_LINE {
        reported
    } else {
        MIN_LINE
    }
}

/// The write-back granule to check blocks against for a `reported` one: it if it is a power of
/// two no smaller than `line`, else [`MAX_GRANULE`] (a larger granule only refuses more).
pub(crate) fn usable_granule(reported: usize, line: usize) -> usize {
    if reported.is_power_of_two() && reported >= line {
        reported
    } else {
        MAX_GRANULE.max(line)
    }
}

/// The (smallest data cache line, write-back granule) in bytes that an aarch64 `CTR_EL0`
/// value describes: `DminLine` is bits 19:16 and `CWG` bits 27:24, each log2 of a number of
/// 4-byte words; `CWG` = 0 means "not reported", so [`MAX_GRANULE`].
#[cfg_attr(not(all(target_arch = "aarch64", not(miri))), allow(dead_code))]
pub(crate) fn from_ctr_el0(ctr: u64) -> (usize, usize) {
    let line = usable_line(4 << ((ctr >> 16) & 0xf));
    let cwg = (ctr >> 24) & 0xf;
    let granule = if cwg == 0 { MAX_GRANULE } else { 4 << cwg };
    (line, usable_granule(granule, line))
}

/// Why a block of `block_size` bytes at address `start` may not be mapped with software
/// coherence on a CPU with a `granule`-byte write-back granule, if it may not.
pub(crate) fn refusal(start: usize, block_size: usize, granule: usize) -> Option<&'static str> {
    if block_size < granule {
        Some("smaller than")
    } else if !block_size.is_multiple_of(granule) {
        Some("not a whole number of")
    } else if !start.is_multiple_of(granule) {
        Some("not aligned to")
    } else {
        None
    }
}

/// A buffer that could not be mapped for a device, handed back with the reason.
///
/// [`SharedBuffer::map_for_device`] refuses a buffer whose block could share a cache
/// write-back granule with a neighbouring block while software coherence maintains it (see
/// [`LineMethod::writeback_granule`](super::LineMethod::writeback_granule)): a write-back of
/// the neighbour's data could overwrite what the device wrote. Build the pool with a
/// `block_size` that is a multiple of the granule, or map with
/// [`Coherence::Hardware`](super::Coherence::Hardware) for a device that snoops the caches.
///
/// ```
/// use umrf::coherence::{Coherence, ToDevice};
/// use umrf::{Pool, residency::CpuLocal};
/// let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(1).slots(1).build()?;
/// let buf = pool.attach()?.alloc_zeroed::<u8>(4096)?;
/// // A page-sized block is a whole number of granules on every CPU.
/// match buf.map_for_device_with::<ToDevice>(Coherence::Software) {
///     Ok(mapping) => drop(mapping.unmap()),
///     Err(refused) => panic!("{refused}"),
/// }
/// # Ok::<(), umrf::Error>(())
/// ```
pub struct MapError<T: Pod, R: Residency> {
    buffer: SharedBuffer<T, R>,
    granule: usize,
    why: &'static str,
}

impl<T: Pod, R: Residency> MapError<T, R> {
    pub(crate) fn new(buffer: SharedBuffer<T, R>, granule: usize, why: &'static str) -> Self {
        MapError {
            buffer,
            granule,
            why,
        }
    }

    /// The buffer, unmapped and untouched.
    pub fn into_inner(self) -> SharedBuffer<T, R> {
        self.buffer
    }

    /// The write-back granule the block was checked against, in bytes.
    pub fn granule(&self) -> usize {
        self.granule
    }
}

impl<T: Pod, R: Residency> fmt::Display for MapError<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot map a {}-byte block of pool `{}` for a device with software coherence: it is {} the {}-byte cache write-back granule of this CPU, so writing back a neighbouring block could overwrite what the device wrote; build the pool with a block_size that is a multiple of {}, or map with `Coherence::Hardware` if the device snoops the CPU caches",
            self.buffer.block_size(),
            self.buffer.pool_name(),
            self.why,
            self.granule,
            self.granule
        )
    }
}

impl<T: Pod, R: Residency> fmt::Debug for MapError<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapError")
            .field("block_size", &self.buffer.block_size())
            .field("granule", &self.granule)
            .field("why", &self.why)
            .finish_non_exhaustive()
    }
}

impl<T: Pod, R: Residency> std::error::Error for MapError<T, R> {}

#[cfg(test)]
mod tests {
    use super::{MAX_GRANULE, from_ctr_el0, refusal, usable_granule, usable_line};
    use crate::coherence::{Coherence, FromDevice, LineMethod};
    use crate::residency::CpuLocal;
    use crate::{BlockState, Pool};

    /// Software coherence on a CPU whose write-back granule is `granule` bytes.
    fn software(granule: usize) -> Coherence {
        Coherence::SoftwareWith(LineMethod::detect_with_granule(granule))
    }

    #[test]
    fn a_block_smaller_than_the_granule_is_refused_and_handed_back() {
        let pool = Pool::<CpuLocal>::builder()
            .name("small")
            .block_size(64)
            .blocks_per_slot(2)
            .slots(1)
            .build()
            .unwrap();
        let lease = pool.attach().unwrap();
        let buf = lease.alloc_from_slice(&[9u8; 64]).unwrap();
        let err = buf
            .map_for_device_with::<FromDevice>(software(128))
            .unwrap_err();
        assert_eq!(err.granule(), 128);
        let message = err.to_string();
        for part in [
            "64-byte block of pool `small`",
            "smaller than the 128-byte cache write-back granule",
            "a block_size that is a multiple of 128",
        ] {
            assert!(message.contains(part), "{message}");
        }
        assert!(format!("{err:?}").contains("granule: 128"));
        // Nothing was recorded or maintained: the buffer comes back as it was.
        assert_eq!(pool.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
        let buf = err.into_inner();
        assert_eq!(buf[63], 9);
        // Hardware coherence maintains no lines, so it maps the same block.
        let mapping = buf
            .map_for_device_with::<FromDevice>(Coherence::Hardware)
            .unwrap();
        drop(mapping.unmap());
        // The remedy works: blocks that are whole granules map with software coherence.
        let whole = Pool::<CpuLocal>::builder()
            .block_size(128)
            .blocks_per_slot(2)
            .slots(1)
            .build()
            .unwrap();
        let lease = whole.attach().unwrap();
        for _ in 0..2 {
            let buf = lease.alloc_zeroed::<u8>(1).unwrap();
            let mapping = buf
                .map_for_device_with::<FromDevice>(software(128))
                .unwrap();
            drop(mapping.unmap());
        }
    }

    #[test]
    fn ctr_el0_gives_the_line_and_the_write_back_granule() {
        // Cortex-A72 (CTR_EL0 = 0x8444c004): 64-byte lines, 64-byte granule.
        assert_eq!(from_ctr_el0(0x8444_c004), (64, 64));
        // A granule of 2^5 words, 128 bytes, over 64-byte lines.
        assert_eq!(from_ctr_el0(0x8544_c004), (64, 128));
        // CWG = 0: not reported, so the architectural maximum.
        assert_eq!(from_ctr_el0(0x8044_c004), (64, MAX_GRANULE));
        // The largest DminLine the field holds still gives a power of two.
        let (line, granule) = from_ctr_el0(0x000f_0000);
        assert!(line.is_power_of_two() && granule >= line);
    }

    #[test]
    fn reported_sizes_that_are_not_powers_of_two_are_replaced_by_safe_ones() {
        assert_eq!(usable_line(64), 64);
        for bad in [0, 1, 2, 3, 48, 96] {
            assert_eq!(usable_line(bad), 4, "line {bad}");
        }
        assert_eq!(usable_granule(128, 64), 128);
        assert_eq!(
            usable_granule(32, 64),
            MAX_GRANULE,
            "a granule below the line"
        );
        assert_eq!(usable_granule(192, 64), MAX_GRANULE);
    }

    #[test]
    fn blocks_that_could_share_a_granule_are_refused() {
        assert_eq!(refusal(0, 64, 128), Some("smaller than"));
        assert_eq!(refusal(0, 192, 128), Some("not a whole number of"));
        assert_eq!(refusal(64, 128, 128), Some("not aligned to"));
        assert_eq!(refusal(4096, 256, 128), None);
        assert_eq!(refusal(0, 64, 64), None);
        assert_eq!(refusal(0, 1024, MAX_GRANULE), Some("smaller than"));
    }
}
