//! The untyped family of class pools shared by [`SizedPool`](super::SizedPool) and the
//! global allocator: one single-slot [`Pool`](crate::Pool) per (class, row), built eagerly or
//! on first use, rows claimed by threads, and large requests as pools of one block.

use core::ptr::NonNull;

use crate::backing;
use crate::error::Error;
use crate::pool::{Identity, RawLease, RawPool, Settings, Slot, build_raw};
use crate::residency::Strategy;
use crate::sync::{AtomicBool, AtomicPtr, AtomicU64, Ordering, bump};
use crate::topology::Topology;

use super::classes::{CLASS_COUNT, MIN_CLASS_BYTES, class_bytes};
use super::pagemap::{self, Entry};

/// What an allocation does when its class has no free block in the thread's row.
///
/// The policy is counted per class: [`ClassStats::exhausted`](super::ClassStats::exhausted)
/// for each allocation that found its class empty, [`borrowed`](super::ClassStats::borrowed)
/// for each one a larger class served, and [`to_large`](super::ClassStats::to_large) for each
/// one the large path served.
///
/// ```
/// use umrf::sized::{ClassExhaustion, SizedPool};
/// use umrf::residency::CpuLocal;
/// let pool = SizedPool::<CpuLocal>::builder()
///     .largest_class(256)
///     .bytes_per_class(256) // 16 blocks of 16 bytes, ..., 1 block of 256 bytes
///     .blocks_per_class(1, 16)
///     .rows(1)
///     .exhaustion(ClassExhaustion::Fail)
///     .build()?;
/// let lease = pool.attach()?;
/// let held = lease.alloc::<u8>(256)?;
/// assert!(lease.alloc::<u8>(256).is_err());
/// assert_eq!(pool.stats().class(256).unwrap().exhausted, 1);
/// # drop(held);
/// # Ok::<(), umrf::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClassExhaustion {
    /// Return [`Error::Exhausted`].
    Fail,
    /// Take a block of one of the next `classes` larger classes (in the thread's row), else
    /// fail.
    Borrow {
        /// How many larger classes to try.
        classes: usize,
    },
    /// As `Borrow`, then a dedicated region of the request's size (the large path).
    BorrowThenLarge {
        /// How many larger classes to try before the large path.
        classes: usize,
    },
}

/// The validated shape of a family of class pools.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Number of classes: `0..classes`.
    pub(crate) classes: usize,
    /// Number of rows (one per leasing thread).
    pub(crate) rows: usize,
    /// Bytes of each class pool's blocks (before `min_blocks`/`max_blocks`).
    pub(crate) bytes_per_class: usize,
    pub(crate) min_blocks: usize,
    pub(crate) max_blocks: usize,
    pub(crate) exhaustion: ClassExhaustion,
    /// Map every region in the page map (for lookups of raw pointers from any thread).
    pub(crate) map_pages: bool,
    /// The CPU of each row (cycled), empty when unknown.
    pub(crate) cpus: Vec<u32>,
    /// Name, prefault, topology, backing options of every class pool.
    pub(crate) settings: Settings,
    pub(crate) strategy: Strategy,
    pub(crate) residency: &'static str,
    pub(crate) label: String,
}

impl Config {
    /// Blocks of each class pool of `class`.
    pub(crate) fn blocks_of(&self, class: usize) -> usize {
        (self.bytes_per_class / class_bytes(class)).clamp(self.min_blocks, self.max_blocks)
    }

    /// Fills in what the builder left to the machine: the topology (detected once, for every
    /// class pool) and the CPU of each row.
    pub(crate) fn resolve_machine(&mut self) {
        if self.settings.topology.is_none() && !cfg!(any(miri, umrf_loom)) {
            self.settings.topology = Topology::detect().ok();
        }
        if self.cpus.is_empty() {
            self.cpus = match (&self.settings.cpus, &self.settings.topology) {
                (Some(list), _) => list.clone(),
                (None, Some(topo)) if !topo.online_cpus().is_empty() => {
                    topo.online_cpus().iter().collect()
                }
                _ => (0..backing::os::online_cpus() as u32).collect(),
            };
        }
    }
}

/// A class pool once built: the pool and what the hot paths read of it.
///
/// # Invariants
/// 0. `slot` is the only slot of `raw`, `base` the address of its block 0, `end` one past its
///    last block; they stay valid while `raw` lives.
pub(crate) struct Built {
    pub(crate) raw: RawPool,
    pub(crate) slot: NonNull<Slot>,
    pub(crate) base: NonNull<u8>,
    pub(crate) end: usize,
    pub(crate) block_size: usize,
}

/// The class pool of one (class, row), and the counters of the row's allocations from it.
///
/// # Invariants
/// 0. `built` is null until the pool is built, then a `Box<Built>` that lives as long as the
///    core (freed by `Core::drop`).
/// 1. The counters and `built` are written only by the thread holding the row's claim (or by
///    the builder of the core before it is shared).
pub(crate) struct ClassCell {
    built: AtomicPtr<Built>,
    /// The cell's class (a free classified through the page map reads it).
    pub(crate) class: u32,
    /// Allocations of this class that found it empty.
    pub(crate) exhausted: AtomicU64,
    /// Allocations of this class served by a larger class.
    pub(crate) borrowed: AtomicU64,
    /// Allocations of this class served by the large path.
    pub(crate) to_large: AtomicU64,
}

impl ClassCell {
    /// The built pool, if any.
    #[inline(always)]
    pub(crate) fn built(&self) -> Option<&Built> {
        let ptr = self.built.load(Ordering::Acquire);
        // SAFETY: invariant 0: non-null means a live `Built`, published with Release, that
        // lives as long as the core, which outlives every reference to its cells.
        unsafe { ptr.as_ref() }
    }
}

/// Counters of the large path, written by any thread. For a family without a page map, what
/// is live is read from the provenance registry (a large pool leaves it when its block comes
/// home, whoever frees it); with one, every free goes through [`Core::free_large`], which
/// counts it.
#[derive(Default)]
pub(crate) struct LargeCounters {
    pub(crate) allocations: AtomicU64,
    pub(crate) frees: AtomicU64,
    pub(crate) live_bytes: AtomicU64,
}

/// Every class pool of a family, and the rows' claims.
///
/// # Invariants
/// 0. `cells[class * rows + row]` is the cell of (class, row).
/// 1. `claims[row]` is true while one thread holds the row; only that thread builds, leases or
///    counts in the row's cells.
pub(crate) struct Core {
    pub(crate) config: Config,
    cells: Box<[ClassCell]>,
    claims: Box<[AtomicBool]>,
    pub(crate) large: LargeCounters,
    pub(crate) id: u64,
}

// SAFETY: shared state is atomic, or confined to a row's claimant (invariant 1); class pools
// are `Send + Sync` handles.
unsafe impl Send for Core {}
// SAFETY: as for Send.
unsafe impl Sync for Core {}

/// A block handed out by a class pool or the large path.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub(crate) ptr: NonNull<u8>,
    pub(crate) slot: NonNull<Slot>,
    pub(crate) index: u32,
    /// The generation of this thread's lease on `slot`, or `NOT_LOCAL` (large blocks).
    pub(crate) local_gen: u64,
    /// Bytes the block holds.
    pub(crate) usable: usize,
}

impl Core {
    /// A core with every cell empty.
    pub(crate) fn new(config: Config) -> Core {
        let rows = config.rows;
        let classes = config.classes;
        Core {
            cells: (0..classes * rows)
                .map(|i| ClassCell {
                    built: AtomicPtr::new(core::ptr::null_mut()),
                    class: (i / rows) as u32,
                    exhausted: AtomicU64::new(0),
                    borrowed: AtomicU64::new(0),
                    to_large: AtomicU64::new(0),
                })
                .collect(),
            config,
            claims: (0..rows).map(|_| AtomicBool::new(false)).collect(),
            large: LargeCounters::default(),
            id: crate::sync::next_pool_id(),
        }
    }

    /// The cell of (`class`, `row`).
    #[inline(always)]
    pub(crate) fn cell(&self, class: usize, row: usize) -> &ClassCell {
        &self.cells[class * self.config.rows + row]
    }

    /// Claims a free row, trying `preferred` first.
    pub(crate) fn claim_row(&self, preferred: usize) -> Option<usize> {
        let rows = self.config.rows;
        (0..rows).map(|i| (preferred + i) % rows).find(|&row| {
            self.claims[row]
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        })
    }

    /// Gives a claimed row back.
    pub(crate) fn release_row(&self, row: usize) {
        debug_assert!(self.claims[row].load(Ordering::Relaxed));
        self.claims[row].store(false, Ordering::Release);
    }

    /// Rows claimed now.
    pub(crate) fn claimed_rows(&self) -> usize {
        self.claims
            .iter()
            .filter(|c| c.load(Ordering::Relaxed))
            .count()
    }

    /// The settings of a pool of `blocks` blocks of `block_size` bytes for `row`.
    fn pool_settings(
        &self,
        block_size: usize,
        blocks: usize,
        row: usize,
        name: String,
    ) -> Settings {
        let mut settings = self.config.settings.clone();
        settings.name = Some(name);
        settings.block_size = block_size;
        settings.blocks_per_slot = blocks;
        settings.slots = Some(1);
        settings.granule = MIN_CLASS_BYTES;
        settings.log = None;
        // Rows allocate from the stack alone (`Slot::pop_top`): every free goes there.
        settings.hot_cell = false;
        settings.cpus = (!self.config.cpus.is_empty())
            .then(|| vec![self.config.cpus[row % self.config.cpus.len()]]);
        settings
    }

    fn identity(&self) -> Identity {
        Identity {
            strategy: self.config.strategy,
            residency: self.config.residency,
            label: self.config.label.clone(),
        }
    }

    /// The base name of the family's pools.
    fn base_name(&self) -> String {
        self.config
            .settings
            .name
            .clone()
            .unwrap_or_else(|| format!("sized-{}-{}", self.config.label, self.id))
    }

    /// The name of every large pool of this family (unique to it).
    pub(crate) fn large_name(&self) -> String {
        format!("{}/large-{}", self.base_name(), self.id)
    }

    /// Builds the pool of (`class`, `row`) if it is not built yet.
    ///
    /// # Errors
    /// The pool builder's errors ([`Error::Backing`], placement errors), and
    /// [`Error::Backing`] when the page map cannot take the region.
    ///
    /// # Safety
    /// The caller holds `row`'s claim, or is building a core not yet shared (invariant 1).
    pub(crate) unsafe fn build_cell(&self, class: usize, row: usize) -> Result<&Built, Error> {
        let cell = self.cell(class, row);
        if let Some(built) = cell.built() {
            return Ok(built);
        }
        let bytes = class_bytes(class);
        let name = format!("{}/{bytes}B/row{row}", self.base_name());
        let settings = self.pool_settings(bytes, self.config.blocks_of(class), row, name);
        let raw = build_raw(settings, self.identity(), None)?;
        let inner = raw.inner();
        let slot = &inner.slots[0];
        let base = slot.block_ptr(0);
        let end = base.as_ptr().addr() + inner.block_size * inner.blocks_per_slot as usize;
        if self.config.map_pages {
            let region = slot.region();
            pagemap::insert(
                region.base().as_ptr().addr(),
                region.info().bytes,
                Entry::Class(NonNull::from(cell)),
            )
            .map_err(|why| page_map_error(self.config.residency, region.info().bytes, why))?;
        }
        let built = Box::new(Built {
            slot: NonNull::from(slot),
            base,
            end,
            block_size: inner.block_size,
            raw,
        });
        cell.built.store(Box::into_raw(built), Ordering::Release);
        // SAFETY: just stored; it lives as long as the core (invariant 0).
        Ok(unsafe { &*cell.built.load(Ordering::Relaxed) })
    }

    /// A dedicated pool of one block of at least `size` bytes, placed for `row`'s CPU, whose
    /// block this returns; the pool itself is orphaned at once, so it is freed (and its region
    /// returned to the operating system) when the block comes home.
    ///
    /// # Errors
    /// As [`build_cell`](Self::build_cell); [`Error::InvalidConfig`] for a size the address
    /// space cannot hold.
    pub(crate) fn alloc_large(&self, size: usize, row: usize) -> Result<Block, Error> {
        let page = backing::os::page_size();
        let block_size = size
            .checked_next_multiple_of(page)
            .filter(|&b| b <= isize::MAX as usize / 2)
            .ok_or_else(|| Error::InvalidConfig {
                reason: format!("a request of {size} bytes is too large for this machine"),
            })?;
        let name = self.large_name();
        let settings = self.pool_settings(block_size, 1, row, name);
        let raw = build_raw(settings, self.identity(), None)?;
        let lease = RawLease::take(&raw, 0)?;
        let slot_ptr = lease.slot_ptr();
        // SAFETY: RawLease invariant 1: the slot lives while the lease does.
        let slot = unsafe { slot_ptr.as_ref() };
        // SAFETY: this thread holds the lease just taken, and the lease never leaves it.
        let index = unsafe { slot.refill() }.ok_or_else(|| Error::InvalidConfig {
            reason: "a fresh one-block pool had no block".into(),
        })?;
        if self.config.map_pages {
            let region = slot.region();
            if let Err(why) = pagemap::insert(
                region.base().as_ptr().addr(),
                region.info().bytes,
                Entry::Large(slot_ptr),
            ) {
                let bytes = region.info().bytes;
                let block = crate::pool::BlockRef {
                    slot: slot_ptr,
                    index,
                    trip: crate::pool::UNKNOWN_TRIP,
                };
                drop(lease);
                drop(raw);
                // SAFETY: the block was just taken and is given up here, unused.
                unsafe { block.release_remote() };
                return Err(page_map_error(self.config.residency, bytes, why));
            }
        }
        let usable = raw.inner().block_size;
        let ptr = slot.block_ptr(index);
        // The pool is orphaned with its block out: the block keeps the slot alive (PoolInner
        // invariant 2) and its free releases everything.
        drop(lease);
        drop(raw);
        self.large.allocations.fetch_add(1, Ordering::Relaxed);
        self.large
            .live_bytes
            .fetch_add(usable as u64, Ordering::Relaxed);
        Ok(Block {
            ptr,
            slot: slot_ptr,
            index,
            local_gen: crate::pool::NOT_LOCAL,
            usable,
        })
    }

    /// Frees a large block made by [`alloc_large`](Self::alloc_large).
    ///
    /// # Safety
    /// `slot` is the slot of a large block of this core that the caller owns and gives up.
    pub(crate) unsafe fn free_large(&self, slot: NonNull<Slot>) {
        // SAFETY: caller's promise: the block is out, so its slot is live.
        let this = unsafe { slot.as_ref() };
        if self.config.map_pages {
            let region = this.region();
            pagemap::remove(region.base().as_ptr().addr(), region.info().bytes);
        }
        // SAFETY: the pool is live while its block is out.
        let usable = unsafe { this.pool().as_ref() }.block_size;
        self.large.frees.fetch_add(1, Ordering::Relaxed);
        self.large
            .live_bytes
            .fetch_sub(usable as u64, Ordering::Relaxed);
        let block = crate::pool::BlockRef {
            slot,
            index: 0,
            trip: crate::pool::UNKNOWN_TRIP,
        };
        // SAFETY: caller's promise; the push brings the orphaned pool's only block home, which
        // frees the pool and returns its region.
        unsafe { block.release_remote() }
    }
}

/// Bumps one of a cell's counters (written only by the row's claimant: invariant 1).
#[inline(always)]
pub(crate) fn count(counter: &AtomicU64) {
    bump(counter);
}

/// The error for a region the page map cannot take.
fn page_map_error(residency: &'static str, bytes: usize, why: &'static str) -> Error {
    Error::Backing {
        residency,
        bytes,
        operation: "page-map registration (for pointer lookups of the global allocator)",
        source: std::io::Error::other(why),
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        for cell in self.cells.iter() {
            let ptr = cell.built.swap(core::ptr::null_mut(), Ordering::Acquire);
            if ptr.is_null() {
                continue;
            }
            // SAFETY: invariant 0: a non-null `built` is a leaked `Box<Built>`, taken back once
            // (the swap above cleared it).
            let built = unsafe { Box::from_raw(ptr) };
            if self.config.map_pages {
                let region = built.raw.inner().slots[0].region();
                pagemap::remove(region.base().as_ptr().addr(), region.info().bytes);
            }
            drop(built); // the pool frees itself when its last block is home
        }
    }
}

/// The number of classes of a family whose largest class holds `largest` bytes.
pub(crate) fn classes_up_to(largest: usize) -> usize {
    (super::classes::class_of(largest.clamp(1, super::classes::MAX_CLASS_BYTES)) + 1)
        .min(CLASS_COUNT)
}
