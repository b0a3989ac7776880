//! [`TieredStore`]: pages in RAM as pool blocks, spilled to tmpfs and disk, pinned on use.

use core::cell::RefCell;
use core::marker::PhantomData;
use core::ptr::NonNull;

use bytemuck::Pod;

use super::backend::IoEngine;
use super::config::TieredBuilder;
use super::demote::Demoter;
use super::error::{PageId, SpillTier, TieredError};
use super::handle::{Pinned, PinnedMut, Tiered};
use super::io::Workers;
use super::pressure::{MemoryPressure, PressurePolicy};
use super::replace::Replacer;
use super::stats::{Counters, TieredMetrics, TieredStats};
use super::table::{Location, PressureWatch, Table};
use super::tier_file::TierFile;
use crate::sync::Ordering;
use crate::{LocalPool, Pool, Residency};
use std::sync::Arc;

/// A store of fixed-size pages bigger than the RAM it may use: pages live in RAM as blocks of
/// a [`Pool<R>`] (residency `R`, with its placement and backing) up to a byte budget, and the
/// coldest spill to a tmpfs tier, then a disk tier.
///
/// Pin a page to use it: [`pin`](Self::pin) and [`pin_mut`](Self::pin_mut) bring it into RAM
/// (a miss reads it on the caller's thread) and give a guard that derefs to its elements; a
/// pinned page is never evicted. Eviction follows the [`Replacement`](super::Replacement)
/// policy; a clean page (its tier copy is up to date) is dropped without a write, a dirty one
/// is written by a background I/O thread, checksummed (CRC-32C), and its block goes home when
/// the write is done. [`prefetch`](Self::prefetch) and the sequential
/// [`read_ahead`](TieredBuilder::read_ahead) start reads on the I/O threads, so pins find
/// their pages in RAM. Every read is checked against the page's checksum: a corrupt page is an
/// `Err` naming it, never wrong data.
///
/// The store stays on the thread that built it (it holds that thread's lease on the pool, and
/// is not `Send`, I3); its page [handles](Tiered) may travel.
///
/// ```compile_fail
/// let store = umrf::tiered::TieredStore::<umrf::residency::CpuLocal>::builder().build().unwrap();
/// std::thread::spawn(move || drop(store)); // error: `TieredStore` is not `Send`
/// ```
///
/// ```
/// use umrf::tiered::TieredStore;
/// use umrf::residency::CpuLocal;
///
/// // 4 pages of RAM; 16 pages of data: 12 live on tmpfs or disk at any time.
/// let store = TieredStore::<CpuLocal>::builder().page_size(4096).ram_budget(4 * 4096).build()?;
/// let mut pages = Vec::new();
/// for i in 0..16u32 {
///     let mut page = store.alloc::<u32>()?;
///     store.pin_mut(&mut page)?.fill(i);
///     pages.push(page);
/// }
/// for (i, page) in pages.iter().enumerate() {
///     assert!(store.pin(page)?.iter().all(|&x| x == i as u32));
/// }
/// let stats = store.stats();
/// assert!(stats.ram_pages <= 4);
/// assert!(stats.tmpfs.spills + stats.disk.spills >= 12);
/// # Ok::<(), umrf::tiered::TieredError>(())
/// ```
pub struct TieredStore<R: Residency> {
    pub(crate) table: RefCell<Table<R>>,
    lease: LocalPool<R>,
    pool: Pool<R>,
    counters: Arc<Counters>,
    page_size: usize,
    io_threads: usize,
    _not_send: PhantomData<*mut ()>,
}

impl<R: Residency> TieredStore<R> {
    /// A builder with the defaults of [`TieredBuilder`].
    ///
    /// ```
    /// let builder = umrf::tiered::TieredStore::<umrf::residency::CpuLocal>::builder();
    /// ```
    pub fn builder() -> TieredBuilder<R> {
        TieredBuilder::default()
    }

    pub(crate) fn from_builder(b: TieredBuilder<R>) -> Result<TieredStore<R>, TieredError> {
        let blocks = (b.ram_budget / b.page_size as u64) as usize;
        let pool = Pool::<R>::builder()
            .name(b.name.clone())
            .block_size(b.page_size)
            .blocks_per_slot(blocks)
            .slots(1)
            .build()?;
        let lease = pool.attach_slot(0)?;
        let counters = Counters::new(b.name, b.page_size, (blocks * b.page_size) as u64);
        let started = Workers::start(b.io, b.io_threads, blocks, &counters)?;
        let workers = started.workers;
        let engine = workers.as_ref().map_or(IoEngine::Inline, Workers::engine);
        counters.io_engine.store(engine.code(), Ordering::Relaxed);
        if let Some(fallback) = started.fallback {
            counters
                .io_fallback
                .store(fallback.errno as u64, Ordering::Relaxed);
        }
        let io_threads = if engine == IoEngine::Threads {
            b.io_threads
        } else {
            0
        };
        let [(tmpfs_dir, tmpfs_budget), (disk_dir, disk_budget)] = b.tiers;
        let demoter = if b.demote && workers.is_some() && tmpfs_budget > 0 && disk_budget > 0 {
            Demoter::start(b.page_size, tmpfs_budget / b.page_size as u64, &counters)
        } else {
            Demoter::off()
        };
        let table = Table {
            pages: Vec::new(),
            free_ids: Vec::new(),
            deferred: Vec::new(),
            replacer: Replacer::new(b.replacement),
            tiers: [
                TierFile::new(SpillTier::Tmpfs, tmpfs_dir, tmpfs_budget, b.page_size),
                TierFile::new(SpillTier::Disk, disk_dir, disk_budget, b.page_size),
            ],
            workers,
            demoter,
            ram_blocks: 0,
            writing: 0,
            ram_limit: blocks,
            max_blocks: blocks,
            page_size: b.page_size,
            read_ahead: b.read_ahead,
            ahead_next: 0,
            pressure: b.pressure.map(|(monitor, policy, interval)| PressureWatch {
                monitor,
                policy,
                interval,
                last: None,
            }),
            counters: counters.clone(),
        };
        Ok(TieredStore {
            table: RefCell::new(table),
            lease,
            pool,
            counters,
            page_size: b.page_size,
            io_threads,
            _not_send: PhantomData,
        })
    }

    /// A new page of `T`s, zeroed, in RAM (evicting another if RAM is at its limit).
    ///
    /// # Errors
    /// [`TieredError::InvalidConfig`] when `T` is zero-sized, does not divide the page size, or
    /// needs more alignment than a block has; [`TieredError::RamFull`] when every page in RAM is
    /// pinned; [`TieredError::SpillFailed`] when a page had to be spilled and no tier took it.
    pub fn alloc<T: Pod>(&self) -> Result<Tiered<T, R>, TieredError> {
        let size = size_of::<T>();
        if size == 0
            || !self.page_size.is_multiple_of(size)
            || align_of::<T>() > self.pool.block_align()
        {
            return Err(TieredError::InvalidConfig {
                reason: format!(
                    "a page of {} bytes cannot hold `{}` (size {size}, alignment {}): pick a \
                     page size that is a multiple of the element size, alignment at most {}",
                    self.page_size,
                    core::any::type_name::<T>(),
                    align_of::<T>(),
                    self.pool.block_align()
                ),
            });
        }
        let page = self.table.borrow_mut().create(&self.lease)?;
        Ok(Tiered {
            store: self.pool.id(),
            page,
            _marker: PhantomData,
        })
    }

    fn page_of<T: Pod>(&self, handle: &Tiered<T, R>) -> Result<u32, TieredError> {
        if handle.store != self.pool.id() {
            return Err(TieredError::ForeignHandle {
                page: handle.id(),
                store: handle.store,
            });
        }
        Ok(handle.page)
    }

    /// Brings the page into RAM, pins it, and starts the read-ahead; returns the block's start.
    fn pin_page(&self, page: u32, write: bool) -> Result<NonNull<u8>, TieredError> {
        let mut table = self.table.borrow_mut();
        table.fault_in(&self.lease, page)?;
        if write {
            table.forget_copy(page);
        }
        let entry = &mut table.pages[page as usize];
        entry.pins += 1;
        let buffer = entry
            .ram
            .as_mut()
            .expect("table invariant 1: a pinned page is in RAM");
        let start = if write {
            NonNull::from(buffer.as_bytes_mut()).cast::<u8>()
        } else {
            NonNull::from(buffer.as_bytes()).cast::<u8>()
        };
        table.read_ahead(&self.lease, page);
        drop(table);
        self.check_accounting();
        Ok(start)
    }

    /// Pins the page for reading: a guard that derefs to its elements, in RAM until it drops.
    ///
    /// A page in RAM is a hit; a page whose prefetch is in flight is waited for; otherwise the
    /// page is read from its tier on this thread (a miss), after making room.
    ///
    /// # Errors
    /// [`TieredError::Corrupt`] when the page read back fails its checksum (nothing is handed
    /// out), [`TieredError::ReadFailed`], [`TieredError::RamFull`],
    /// [`TieredError::SpillFailed`] (making room failed), [`TieredError::ForeignHandle`].
    ///
    /// ```
    /// let store = umrf::tiered::TieredStore::<umrf::residency::CpuLocal>::builder()
    ///     .page_size(256).ram_budget(256).build()?;
    /// let page = store.alloc::<f32>()?;
    /// let (a, b) = (store.pin(&page)?, store.pin(&page)?); // readers share a page
    /// assert_eq!(a.len() + b.len(), 128);
    /// # Ok::<(), umrf::tiered::TieredError>(())
    /// ```
    pub fn pin<'a, T: Pod>(
        &'a self,
        handle: &'a Tiered<T, R>,
    ) -> Result<Pinned<'a, T, R>, TieredError> {
        let page = self.page_of(handle)?;
        let start = self.pin_page(page, false)?;
        Ok(Pinned {
            store: self,
            page,
            ptr: start.cast::<T>(),
            len: self.page_size / size_of::<T>(),
            _handle: PhantomData,
        })
    }

    /// Pins the page for writing: as [`pin`](Self::pin), and the page is dirty from now on (its
    /// tier copy, if any, is given up; it is written again when evicted).
    ///
    /// # Errors
    /// As [`pin`](Self::pin).
    ///
    /// ```
    /// let store = umrf::tiered::TieredStore::<umrf::residency::CpuLocal>::builder()
    ///     .page_size(64).ram_budget(64).build()?;
    /// let mut page = store.alloc::<u8>()?;
    /// store.pin_mut(&mut page)?.copy_from_slice(&[1; 64]);
    /// assert_eq!(store.pin(&page)?[63], 1);
    /// # Ok::<(), umrf::tiered::TieredError>(())
    /// ```
    pub fn pin_mut<'a, T: Pod>(
        &'a self,
        handle: &'a mut Tiered<T, R>,
    ) -> Result<PinnedMut<'a, T, R>, TieredError> {
        let page = self.page_of(handle)?;
        let start = self.pin_page(page, true)?;
        Ok(PinnedMut {
            store: self,
            page,
            ptr: start.cast::<T>(),
            len: self.page_size / size_of::<T>(),
            _handle: PhantomData,
        })
    }

    /// Debug builds check table invariant 3 after each operation.
    fn check_accounting(&self) {
        self.table.borrow().check_blocks();
    }

    pub(crate) fn unpin(&self, page: u32) {
        self.table.borrow_mut().pages[page as usize].pins -= 1;
    }

    /// Starts background reads of those `pages` that are not in RAM, as far as RAM has room
    /// without waiting (clean pages may be dropped for it; prefetched pages not yet pinned are
    /// kept). Never blocks on I/O; without I/O threads it does nothing (counted as dropped).
    ///
    /// # Errors
    /// [`TieredError::ForeignHandle`] for a handle of another store (no read is started).
    ///
    /// ```
    /// let store = umrf::tiered::TieredStore::<umrf::residency::CpuLocal>::builder()
    ///     .page_size(4096).ram_budget(2 * 4096).build()?;
    /// let pages: Vec<_> = (0..4).map(|_| store.alloc::<u8>()).collect::<Result<_, _>>()?;
    /// store.prefetch(&pages[..2])?; // pages 0 and 1 were spilled by pages 2 and 3
    /// let _ = store.pin(&pages[0])?;
    /// # Ok::<(), umrf::tiered::TieredError>(())
    /// ```
    pub fn prefetch<'a, T: Pod + 'a>(
        &self,
        pages: impl IntoIterator<Item = &'a Tiered<T, R>>,
    ) -> Result<(), TieredError> {
        let ids = pages
            .into_iter()
            .map(|h| self.page_of(h))
            .collect::<Result<Vec<_>, _>>()?;
        self.table.borrow_mut().prefetch(&self.lease, ids);
        self.check_accounting();
        Ok(())
    }

    /// Gives the page back: its RAM block goes home, its tier slot is reused.
    ///
    /// # Errors
    /// [`TieredError::ForeignHandle`] for a handle of another store.
    pub fn free<T: Pod>(&self, handle: Tiered<T, R>) -> Result<(), TieredError> {
        let page = self.page_of(&handle)?;
        self.table.borrow_mut().release(&self.lease, page);
        Ok(())
    }

    /// Where the page is now.
    ///
    /// # Errors
    /// [`TieredError::ForeignHandle`] for a handle of another store.
    ///
    /// ```
    /// use umrf::tiered::{Location, TieredStore};
    /// let store = TieredStore::<umrf::residency::CpuLocal>::builder()
    ///     .page_size(64).ram_budget(64).io_threads(0).build()?;
    /// let (a, b) = (store.alloc::<u8>()?, store.alloc::<u8>()?);
    /// assert_eq!(store.location(&b)?, Location::Ram { dirty: true });
    /// assert!(matches!(store.location(&a)?, Location::Tier(_)));
    /// # Ok::<(), umrf::tiered::TieredError>(())
    /// ```
    pub fn location<T: Pod>(&self, handle: &Tiered<T, R>) -> Result<Location, TieredError> {
        let page = self.page_of(handle)?;
        let mut table = self.table.borrow_mut();
        table.reap(&self.lease);
        let entry = &table.pages[page as usize];
        Ok(match (&entry.ram, entry.io, entry.copy) {
            (Some(_), _, copy) => Location::Ram {
                dirty: copy.is_none(),
            },
            (None, Some((super::io::Direction::Write, tier)), _) => Location::Writing(tier),
            (None, Some((super::io::Direction::Read, tier)), _) => Location::Reading(tier),
            (None, None, Some(copy)) => Location::Tier(copy.tier),
            (None, None, None) => unreachable!("table invariant 2: a page out of RAM has a copy"),
        })
    }

    /// Waits for every background write and read in flight to finish.
    pub fn quiesce(&self) {
        self.table.borrow_mut().quiesce(&self.lease);
    }

    /// Sets the sequential read-ahead window (0 turns it off): after a pin of page `p`, pages
    /// `p+1 ..= p+pages` are kept requested, refilled in batches once half of them are used.
    ///
    /// ```
    /// let store = umrf::tiered::TieredStore::<umrf::residency::CpuLocal>::builder()
    ///     .page_size(4096).ram_budget(4 * 4096).build()?;
    /// let pages: Vec<_> = (0..16).map(|_| store.alloc::<u8>()).collect::<Result<_, _>>()?;
    /// store.quiesce();
    /// store.set_read_ahead(2);
    /// for page in &pages {
    ///     let _ = store.pin(page)?;
    /// }
    /// assert!(store.stats().prefetch_issued > 0);
    /// # Ok::<(), umrf::tiered::TieredError>(())
    /// ```
    pub fn set_read_ahead(&self, pages: usize) {
        self.table.borrow_mut().read_ahead = pages;
    }

    /// Sets the RAM limit (whole pages, between one page and the budget) and evicts down to it
    /// now; returns the limit in force, in bytes.
    ///
    /// # Errors
    /// [`TieredError::SpillFailed`] or [`TieredError::RamFull`] when RAM could not be brought
    /// down to the limit (the limit stays set; pages are never dropped unwritten).
    pub fn set_ram_limit(&self, bytes: u64) -> Result<u64, TieredError> {
        let mut table = self.table.borrow_mut();
        let blocks = table.set_limit(bytes);
        table.shrink(&self.lease)?;
        Ok((blocks * self.page_size) as u64)
    }

    /// Reads memory pressure now (the builder's monitor and policy, or the live system's files
    /// and [`PressurePolicy::default`]) and sets the RAM limit it calls for; returns the reading.
    ///
    /// # Errors
    /// [`TieredError::Pressure`] when a pressure file cannot be read or parsed; those of
    /// [`set_ram_limit`](Self::set_ram_limit).
    pub fn check_pressure(&self) -> Result<MemoryPressure, TieredError> {
        let (reading, policy) = {
            let table = self.table.borrow();
            match &table.pressure {
                Some(watch) => (watch.monitor.read()?, watch.policy),
                None => (
                    super::PressureMonitor::live().read()?,
                    PressurePolicy::default(),
                ),
            }
        };
        self.set_ram_limit(policy.ram_limit(self.counters.ram_budget, &reading))?;
        Ok(reading)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TieredStats {
        self.counters.snapshot()
    }

    /// The counters, readable from any thread (for a metrics registry).
    pub fn metrics(&self) -> TieredMetrics {
        TieredMetrics {
            counters: self.counters.clone(),
        }
    }

    /// The pool whose blocks hold the pages in RAM (for its statistics, block states and
    /// backing).
    pub fn pool(&self) -> &Pool<R> {
        &self.pool
    }

    /// Bytes per page.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Background I/O threads running (0 with the `io_uring` engine, or with I/O on the
    /// caller's thread, asked for or because threads could not be started).
    pub fn io_threads(&self) -> usize {
        self.io_threads
    }

    /// The background I/O engine running (also in [`TieredStats::io_engine`]).
    ///
    /// ```
    /// use umrf::tiered::{IoEngine, TieredStore};
    /// let store = TieredStore::<umrf::residency::CpuLocal>::builder().io_threads(0).build()?;
    /// assert_eq!(store.io_engine(), IoEngine::Inline);
    /// # Ok::<(), umrf::tiered::TieredError>(())
    /// ```
    pub fn io_engine(&self) -> IoEngine {
        self.stats().io_engine
    }

    /// The RAM limit in force now, in bytes.
    pub fn ram_limit(&self) -> u64 {
        self.counters.ram_limit.load(Ordering::Relaxed)
    }

    /// The page a handle names, for messages.
    pub fn page_id<T: Pod>(handle: &Tiered<T, R>) -> PageId {
        handle.id()
    }
}

impl<R: Residency> core::fmt::Debug for TieredStore<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TieredStore")
            .field("name", &self.counters.name)
            .field("page_size", &self.page_size)
            .field("stats", &self.stats())
            .finish()
    }
}
