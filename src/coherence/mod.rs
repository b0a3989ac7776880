//! Device mappings: the Linux DMA API's streaming mappings, with coherence as typestate.
//!
//! A device (a NIC, a GPU copy engine, a DMA controller, an FPGA over CXL) reads and writes
//! memory behind the CPU caches' back unless the platform keeps them coherent. The Linux DMA
//! API makes a driver *map* a buffer before the device touches it and *unmap* it before the CPU
//! reads it again, and does the cache maintenance the direction needs in between. umrf puts
//! that protocol into types:
//!
//! - [`SharedBuffer::map_for_device::<D>()`](crate::SharedBuffer::map_for_device), with `D`
//!   one of [`ToDevice`], [`FromDevice`], [`Bidirectional`], consumes the buffer and returns a
//!   [`DeviceMapping<T, R, D>`], after the maintenance the device needs: the buffer's lines are
//!   *cleaned* (written back to memory), so the device reads what the CPU wrote.
//! - The mapping gives the device its address and length, and the CPU nothing: it has no
//!   `Deref`, and the buffer it came from was moved into it.
//! - [`DeviceMapping::unmap`] does what the CPU needs (for [`FromDevice`] and
//!   [`Bidirectional`]: *clean and invalidate*, so the CPU reads what the device wrote; for
//!   [`ToDevice`]: nothing) and returns the buffer.
//! - Ownership lives in the mapping, so `mem::forget` cannot hand memory that a device still
//!   writes back to the pool: a forgotten (or dropped) mapping leaks its block, which stays in
//!   the [`MappedForDevice`](crate::BlockState::MappedForDevice) state.
//! - Functions that need a direction say so in their signature; passing a mapping of the
//!   wrong direction does not compile.
//! - With software coherence, a buffer whose block could share a cache *write-back granule*
//!   with a neighbouring block is refused with a [`MapError`] that hands it back: writing back
//!   the neighbour's data could overwrite what the device wrote (see
//!   [`LineMethod::writeback_granule`]; aarch64 reports granules of up to 2 KiB).
//!
//! ```
//! use umrf::coherence::{DeviceMapping, FromDevice, ToDevice};
//! use umrf::{Pool, residency::CpuLocal};
//!
//! /// Stands in for a driver: a DMA engine copies `len` bytes from `src` to `dst`.
//! fn dma_copy(src: &DeviceMapping<u8, CpuLocal, ToDevice>, dst: &mut DeviceMapping<u8, CpuLocal, FromDevice>) {
//!     // SAFETY: both mappings own their blocks (the CPU cannot touch them); the lengths match.
//!     unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr(), src.len()) }
//! }
//!
//! let pool = Pool::<CpuLocal>::builder().block_size(4096).blocks_per_slot(4).slots(1).build()?;
//! let lease = pool.attach()?;
//! let src = lease.alloc_from_slice(&[7u8; 4096])?.map_for_device::<ToDevice>().unwrap();
//! let mut dst = lease.alloc_zeroed::<u8>(4096)?.map_for_device::<FromDevice>().unwrap();
//! dma_copy(&src, &mut dst);
//! let (src, dst) = (src.unmap(), dst.unmap()); // the CPU may look again
//! assert_eq!(&src[..], &dst[..]);
//! # Ok::<(), umrf::Error>(())
//! ```
//!
//! ## Coherence modes
//!
//! [`Coherence::Hardware`] trusts the platform to keep device accesses coherent with the CPU
//! caches (PCIe and CXL.io devices snoop on x86; `dma-coherent` devices on Arm) and issues the
//! ordering barriers only. [`Coherence::Software`] maintains every cache line of the buffer, as
//! a non-coherent platform needs, with the best instruction the CPU has
//! ([`LineMethod::detect`]); [`Coherence::SoftwareWith`] names the instructions, for
//! measurement. The default is `Hardware` on x86-64, whose DMA is coherent, and `Software`
//! elsewhere.
//!
//! | direction | map (for the device) | unmap (for the CPU) |
//! |---|---|---|
//! | [`ToDevice`] | clean | nothing |
//! | [`FromDevice`] | clean | clean and invalidate |
//! | [`Bidirectional`] | clean | clean and invalidate |
//!
//! This is what Linux does on arm64 (`arch/arm64/mm/dma-mapping.c`: `arch_sync_dma_for_device`
//! cleans to the point of coherency for every direction, `arch_sync_dma_for_cpu` invalidates
//! unless the direction is to the device). A [`FromDevice`] buffer is cleaned, not only
//! invalidated, at map: bytes the device does not overwrite keep the values the CPU wrote
//! last, which an invalidate would drop with a dirty line. The invalidate at unmap removes any
//! line the CPU fetched speculatively while the device was writing. From user space both
//! architectures can only *clean and invalidate*, never discard a dirty line without writing it
//! back, so no maintenance here ever changes what memory holds.
//!
//! | architecture | clean | clean and invalidate | completion | `Hardware` barriers |
//! |---|---|---|---|---|
//! | x86-64 | `clwb`, else `clflushopt`, else `clflush` | `clflushopt`, else `clflush` | `sfence` (`mfence` after `clflush`) | `sfence` to the device, `lfence` to the CPU |
//! | aarch64 | `dc cvac` | `dc civac` | `dsb sy` | `dsb st` to the device, `dsb ld` to the CPU |
//! | other targets, Miri | — | — | a sequentially consistent fence | the same fence |
//!
//! On x86-64, `clflushopt` and `clwb` are detected at run time with `cpuid` (leaf 7, EBX bits 23
//! and 24; Intel SDM vol. 2A), once per process. On aarch64 the line size comes from `CTR_EL0`
//! (`DminLine`), which Linux lets user space read, as it lets it run `dc cvac` and `dc civac`
//! (`SCTLR_EL1.UCT` and `UCI`). Miri cannot run inline assembly or `cpuid`: under Miri (and
//! on targets other than these two) line maintenance is replaced by a fence, and
//! [`LineMethod::detect`] reports [`Instruction::FenceOnly`] so the fallback is visible.
//!
//! `docs/COHERENCE.md` has the measured cost of software coherence on x86-64 by page count and
//! allocation size (`cargo bench --bench coherence`).

mod granule;
mod lines;
mod mapping;

#[cfg_attr(all(target_arch = "x86_64", not(miri)), path = "x86_64.rs")]
#[cfg_attr(all(target_arch = "aarch64", not(miri)), path = "aarch64.rs")]
#[cfg_attr(
    not(all(any(target_arch = "x86_64", target_arch = "aarch64"), not(miri))),
    path = "portable.rs"
)]
mod arch;

pub use granule::MapError;
pub use lines::{Instruction, LineMethod, UnsupportedInstruction};
pub use mapping::DeviceMapping;

use core::fmt;

/// How a device mapping keeps the CPU caches and the device's view of memory in agreement.
///
/// ```
/// use umrf::coherence::{Coherence, Instruction, LineMethod};
/// # #[cfg(all(target_arch = "x86_64", not(miri)))]
/// assert_eq!(Coherence::default(), Coherence::Hardware);
/// let exact = Coherence::SoftwareWith(LineMethod::detect());
/// assert!(exact.line_method().is_some());
/// assert_eq!(Coherence::Hardware.line_method(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Coherence {
    /// The platform keeps device accesses coherent with the caches: ordering barriers only.
    /// The default on x86-64.
    Hardware,
    /// Clean or invalidate every cache line of the buffer with the best instruction this CPU
    /// has ([`LineMethod::detect`]), then a completion barrier. The default on other targets.
    Software,
    /// As `Software`, with the given instructions (to measure one against another, or to avoid
    /// one).
    SoftwareWith(LineMethod),
}

impl Coherence {
    /// The line maintenance this mode performs, or `None` for [`Coherence::Hardware`].
    pub fn line_method(self) -> Option<LineMethod> {
        match self {
            Coherence::Hardware => None,
            Coherence::Software => Some(LineMethod::detect()),
            Coherence::SoftwareWith(method) => Some(method),
        }
    }

    /// Makes `bytes` ready for a device to access them (the map side: the same for every
    /// direction, see the module docs).
    pub(crate) fn for_device(self, bytes: &[u8]) {
        match self.line_method() {
            None => arch::barrier_for_device(),
            Some(method) => method.clean(bytes),
        }
    }

    /// Makes `bytes` ready for the CPU after the device accessed them in `direction` (the
    /// unmap side).
    pub(crate) fn for_cpu(self, direction: DmaDirection, bytes: &[u8]) {
        if direction == DmaDirection::ToDevice {
            return;
        }
        match self.line_method() {
            None => arch::barrier_for_cpu(),
            Some(method) => method.clean_invalidate(bytes),
        }
    }
}

impl Default for Coherence {
    /// `Hardware` on x86-64 (DMA is cache coherent there), `Software` elsewhere.
    fn default() -> Self {
        if cfg!(target_arch = "x86_64") {
            Coherence::Hardware
        } else {
            Coherence::Software
        }
    }
}

/// Which way data moves between memory and a device, at run time (the value of a
/// [`Direction`] marker).
///
/// ```
/// use umrf::coherence::{Direction, DmaDirection, FromDevice};
/// assert_eq!(FromDevice::KIND, DmaDirection::FromDevice);
/// assert_eq!(DmaDirection::FromDevice.to_string(), "from device");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DmaDirection {
    /// The device reads the buffer (Linux `DMA_TO_DEVICE`).
    ToDevice,
    /// The device writes the buffer (Linux `DMA_FROM_DEVICE`).
    FromDevice,
    /// The device reads and writes the buffer (Linux `DMA_BIDIRECTIONAL`).
    Bidirectional,
}

impl fmt::Display for DmaDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DmaDirection::ToDevice => "to device",
            DmaDirection::FromDevice => "from device",
            DmaDirection::Bidirectional => "bidirectional",
        })
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A direction marker for [`DeviceMapping`]: [`ToDevice`], [`FromDevice`] or
/// [`Bidirectional`]. Sealed: the maintenance each direction gets is umrf's to decide.
///
/// ```
/// use umrf::coherence::{Bidirectional, Direction, DmaDirection};
/// fn direction_of<D: Direction>() -> DmaDirection { D::KIND }
/// assert_eq!(direction_of::<Bidirectional>(), DmaDirection::Bidirectional);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a DMA direction",
    label = "not a direction marker",
    note = "map with `ToDevice`, `FromDevice` or `Bidirectional` from `umrf::coherence`"
)]
pub trait Direction: sealed::Sealed + Send + Sync + 'static {
    /// The direction as a value.
    const KIND: DmaDirection;
}

macro_rules! direction {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name;

        impl sealed::Sealed for $name {}

        impl Direction for $name {
            const KIND: DmaDirection = DmaDirection::$name;
        }
    };
}

direction!(
    /// The device only reads the buffer: it is cleaned at map; unmap needs nothing.
    ///
    /// ```
    /// use umrf::coherence::ToDevice;
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let mapping = pool.attach()?.alloc_from_slice(&[1u8, 2])?.map_for_device::<ToDevice>().unwrap();
    /// assert_eq!(mapping.len(), 2);
    /// # drop(mapping.unmap());
    /// # Ok::<(), umrf::Error>(())
    /// ```
    ToDevice
);

direction!(
    /// The device only writes the buffer: it is cleaned at map and cleaned and invalidated at
    /// unmap, so the CPU then reads what the device wrote.
    ///
    /// ```
    /// use umrf::coherence::FromDevice;
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let mut mapping = pool.attach()?.alloc_zeroed::<u32>(4)?.map_for_device::<FromDevice>().unwrap();
    /// // SAFETY: the mapping owns the block; this write stands for the device's.
    /// unsafe { mapping.as_mut_ptr().write(9) };
    /// assert_eq!(mapping.unmap()[0], 9);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    FromDevice
);

direction!(
    /// The device reads and writes the buffer: cleaned at map, cleaned and invalidated at
    /// unmap.
    ///
    /// ```
    /// use umrf::coherence::{Bidirectional, Coherence};
    /// use umrf::{Pool, residency::CpuLocal};
    /// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?;
    /// let buf = pool.attach()?.alloc_from_slice(&[3u8])?;
    /// let mapping = buf.map_for_device_with::<Bidirectional>(Coherence::Software).unwrap();
    /// assert_eq!(mapping.unmap()[0], 3);
    /// # Ok::<(), umrf::Error>(())
    /// ```
    Bidirectional
);
