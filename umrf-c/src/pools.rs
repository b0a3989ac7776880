//! The pools behind the C API (and, as a separate instance, behind the preload library's
//! `malloc`): for each size class a `Pool<CpuLocal>` with one slot per core
//! (falling back, when a core's slot is exhausted, to a shared pool of the same class), and for
//! each core the blocks it has handed out, held as capabilities until freed or reset.
//!
//! A C caller is not a Rust thread with a lease: any thread may allocate on any core. So each
//! allocation leases the core's slot for the duration of the call (`attach_slot`, one CAS, and
//! a release store), takes a block and turns it into a [`Capability`] (the owner of a block in
//! flight, `Send`), which the core keeps in its table under the block's address. `umrf_free`
//! takes the capability out and drops it, which sends the block home (a remote free, one
//! lock-free push); `umrf_reset_pool` drops every capability of the core at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use serde_json::{Value, json};
use umrf::residency::CpuLocal;
use umrf::{BlockState, Capability, Error, Exhaustion, Pool, provenance};

use crate::error::{UmrfError, fail};

/// The smallest block of the C pools.
const MIN_BLOCK: usize = crate::UMRF_BLOCK_ALIGN;
/// The largest block of the C pools: larger requests are refused (`UmrfErrTooLarge`).
const MAX_BLOCK: usize = crate::UMRF_MAX_ALLOC;
/// Number of classes: 64, 128, ..., 64 KiB.
const CLASSES: usize = (MAX_BLOCK / MIN_BLOCK).trailing_zeros() as usize + 1;

/// How the pools are sized; see `umrf_config` in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Cores (slots per class pool); core ids are `0..cores`.
    pub cores: usize,
    /// Bytes of each class on each core.
    pub bytes_per_class: usize,
    /// Bytes of each class in the shared fallback pool, per core.
    pub fallback_bytes_per_class: usize,
}

impl Config {
    /// The defaults: one core per online CPU, 256 KiB per class and core, as much again as
    /// fallback.
    pub fn default_for_machine() -> Config {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Config {
            cores,
            bytes_per_class: 256 * 1024,
            fallback_bytes_per_class: 256 * 1024,
        }
    }
}

/// What a core has handed out and not had back: each block's capability, by address.
#[derive(Default)]
pub struct Core {
    live: HashMap<usize, Capability<u8, CpuLocal>>,
}

/// Counts of bad input, by kind (reported by `umrf_stats_json`), for the whole process: bad
/// calls made before the pools exist count too.
pub struct BadInput {
    pub(crate) foreign_frees: AtomicU64,
    pub(crate) interior_frees: AtomicU64,
    pub(crate) double_frees: AtomicU64,
    pub(crate) core_out_of_range: AtomicU64,
    pub(crate) zero_size: AtomicU64,
    pub(crate) too_large: AtomicU64,
    pub(crate) exhausted: AtomicU64,
    pub(crate) null_arguments: AtomicU64,
}

/// The process's bad-input counts.
pub static BAD: BadInput = BadInput {
    foreign_frees: AtomicU64::new(0),
    interior_frees: AtomicU64::new(0),
    double_frees: AtomicU64::new(0),
    core_out_of_range: AtomicU64::new(0),
    zero_size: AtomicU64::new(0),
    too_large: AtomicU64::new(0),
    exhausted: AtomicU64::new(0),
    null_arguments: AtomicU64::new(0),
};

impl BadInput {
    /// Counts one event of `counter`.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts as JSON.
    pub fn json(&self) -> Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "foreign_frees": get(&self.foreign_frees),
            "interior_frees": get(&self.interior_frees),
            "double_frees": get(&self.double_frees),
            "core_out_of_range": get(&self.core_out_of_range),
            "zero_size": get(&self.zero_size),
            "too_large": get(&self.too_large),
            "exhausted": get(&self.exhausted),
            "null_arguments": get(&self.null_arguments),
        })
    }
}

/// One slot's region, for finding which block an address is in without the process-wide
/// registry (its lock is one cache line that every thread's lookup writes).
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
    primary: bool,
    slot: usize,
    block_size: usize,
}

/// Where an address lies in these pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// In a per-core pool (else a fallback pool).
    pub primary: bool,
    /// The slot of the region: the core, for a per-core pool.
    pub slot: usize,
    /// The block's index in the slot.
    pub block: usize,
    /// Bytes per block.
    pub block_size: usize,
    /// The address's offset from the block's start.
    pub offset: usize,
}

/// The process's C pools.
pub struct Pools {
    config: Config,
    classes: Vec<Pool<CpuLocal>>,
    fallbacks: Vec<Pool<CpuLocal>>,
    cores: Vec<Mutex<Core>>,
    /// Every slot region of these pools, sorted by address; fixed for the pools' life.
    spans: Vec<Span>,
}

static POOLS: OnceLock<Result<Pools, String>> = OnceLock::new();

/// The pools, built with `config` (or the machine defaults) on first use.
///
/// # Errors
/// `UmrfErrInit` when building failed (now or on the first try), `UmrfErrAlreadyInitialized`
/// when `config` differs from the one they were built with.
pub fn get(config: Option<Config>) -> Result<&'static Pools, UmrfError> {
    let built = POOLS
        .get_or_init(|| Pools::new(config.unwrap_or_else(Config::default_for_machine), "umrf-c"));
    match built {
        Ok(pools) => match config {
            Some(wanted) if wanted != pools.config => Err(fail(
                UmrfError::UmrfErrAlreadyInitialized,
                format!(
                    "the pools were already built with {:?}; umrf_init must come before any other \
                     call, once",
                    pools.config
                ),
            )),
            _ => Ok(pools),
        },
        Err(reason) => Err(fail(UmrfError::UmrfErrInit, reason.clone())),
    }
}

/// The pools if they were built, for calls that must not build them (free, owner lookup).
pub fn existing() -> Option<&'static Pools> {
    POOLS.get().and_then(|r| r.as_ref().ok())
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    // A panic while holding the table cannot leave it half-updated (each operation is one
    // insert or remove), so a poisoned lock is still a consistent table.
    core.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Block bytes of class `class`.
fn class_bytes(class: usize) -> usize {
    MIN_BLOCK << class
}

/// The class serving `size` bytes (`1..=MAX_BLOCK`).
fn class_of(size: usize) -> usize {
    size.max(MIN_BLOCK).next_power_of_two().trailing_zeros() as usize
        - MIN_BLOCK.trailing_zeros() as usize
}

impl Pools {
    /// Builds a set of pools: per size class, one pool with a slot per core and its fallback
    /// pool, named `{prefix}-{block size}` and `{prefix}-fallback-{block size}`. Pages are
    /// faulted in on first touch, not at build, so unused capacity costs address space only.
    ///
    /// # Errors
    /// An invalid configuration, or a pool that cannot be built (the reason is in the text).
    pub fn new(config: Config, prefix: &str) -> Result<Pools, String> {
        if config.cores == 0 || config.bytes_per_class < MAX_BLOCK {
            return Err(format!(
                "invalid configuration {config:?}: cores must be at least 1 and bytes_per_class at \
                 least {MAX_BLOCK} (one block of the largest class)"
            ));
        }
        let make = |name: String, size: usize, bytes: usize, exhaustion| {
            Pool::<CpuLocal>::builder()
                .name(name)
                .block_size(size)
                .blocks_per_slot((bytes / size).max(1))
                .slots(config.cores)
                .exhaustion(exhaustion)
                .prefault(false)
                .build()
                .map_err(|e| format!("cannot build the C pools: {e}"))
        };
        let mut classes = Vec::with_capacity(CLASSES);
        let mut fallbacks = Vec::with_capacity(CLASSES);
        for class in 0..CLASSES {
            let size = class_bytes(class);
            let fallback = make(
                format!("{prefix}-fallback-{size}"),
                size,
                config.fallback_bytes_per_class.max(size),
                Exhaustion::Fail,
            )?;
            classes.push(make(
                format!("{prefix}-{size}"),
                size,
                config.bytes_per_class,
                Exhaustion::Fallback(fallback.clone()),
            )?);
            fallbacks.push(fallback);
        }
        let mut spans: Vec<Span> = provenance::regions()
            .into_iter()
            .filter_map(|region| {
                let pool = classes
                    .iter()
                    .chain(&fallbacks)
                    .find(|p| p.id() == region.pool_id)?;
                Some(Span {
                    start: region.start,
                    end: region.end,
                    primary: classes.iter().any(|p| p.id() == region.pool_id),
                    slot: region.slot,
                    block_size: pool.block_size(),
                })
            })
            .collect();
        spans.sort_by_key(|span| span.start);
        Ok(Pools {
            config,
            classes,
            fallbacks,
            cores: (0..config.cores).map(|_| Mutex::default()).collect(),
            spans,
        })
    }

    /// The core index of a C core id, counting a bad one.
    ///
    /// # Errors
    /// `UmrfErrCoreOutOfRange`.
    pub fn core_index(&self, core_id: i32) -> Result<usize, UmrfError> {
        usize::try_from(core_id)
            .ok()
            .filter(|&c| c < self.config.cores)
            .ok_or_else(|| {
                BadInput::count(&BAD.core_out_of_range);
                fail(
                    UmrfError::UmrfErrCoreOutOfRange,
                    format!(
                        "core id {core_id} is out of range: the pools have cores 0..{} (set \
                         umrf_config.cores in umrf_init for more)",
                        self.config.cores
                    ),
                )
            })
    }

    /// The number of cores.
    pub fn cores(&self) -> usize {
        self.config.cores
    }

    /// Every pool: the per-core pool and the fallback pool of each class.
    pub fn all(&self) -> impl Iterator<Item = &Pool<CpuLocal>> {
        self.classes.iter().chain(&self.fallbacks)
    }

    /// Allocates `size` bytes on `core`.
    ///
    /// # Errors
    /// `UmrfErrZeroSize`, `UmrfErrTooLarge`, `UmrfErrExhausted`, `UmrfErrCoreBusy`.
    pub fn alloc(&self, size: usize, core: usize) -> Result<*mut u8, UmrfError> {
        if size == 0 {
            BadInput::count(&BAD.zero_size);
            return Err(fail(
                UmrfError::UmrfErrZeroSize,
                "umrf_alloc(0): request at least one byte",
            ));
        }
        if size > MAX_BLOCK {
            BadInput::count(&BAD.too_large);
            return Err(fail(
                UmrfError::UmrfErrTooLarge,
                format!(
                    "umrf_alloc({size}): the C pools' largest block is {MAX_BLOCK} bytes; use malloc \
                     (served by libumrf_preload.so under `umrf run`) for larger allocations"
                ),
            ));
        }
        let class = class_of(size);
        let mut table = lock(&self.cores[core]);
        let lease = self.classes[class].attach_slot(core).map_err(|e| match e {
            Error::SlotBusy { .. } => fail(
                UmrfError::UmrfErrCoreBusy,
                format!("core {core}'s slot is leased by a Rust thread of this process: {e}"),
            ),
            other => fail(
                UmrfError::UmrfErrInternal,
                format!("cannot lease core {core}: {other}"),
            ),
        })?;
        let mut buf = match lease.alloc::<u8>(size) {
            Ok(buf) => buf,
            Err(e) => {
                BadInput::count(&BAD.exhausted);
                return Err(fail(
                    UmrfError::UmrfErrExhausted,
                    format!(
                        "umrf_alloc({size}, {core}): {e}; free blocks, call umrf_reset_pool, or \
                         give umrf_init a larger bytes_per_class"
                    ),
                ));
            }
        };
        let ptr = buf.as_mut_ptr();
        table.live.insert(ptr.addr(), buf.into_capability());
        Ok(ptr)
    }

    /// Where `ptr` lies, if inside a block of these pools: a binary search over their slot
    /// regions (only compared, never read).
    pub fn owner(&self, ptr: *const u8) -> Option<Location> {
        let addr = ptr.addr();
        let after = self.spans.partition_point(|span| span.start <= addr);
        let span = self.spans[..after].last().filter(|span| addr < span.end)?;
        let into = addr - span.start;
        let block = into / span.block_size;
        // Page slack past the last whole block is in no block.
        let blocks = (span.end - span.start) / span.block_size;
        (block < blocks).then_some(Location {
            primary: span.primary,
            slot: span.slot,
            block,
            block_size: span.block_size,
            offset: into % span.block_size,
        })
    }

    /// Frees the block at `ptr`, which must be the start of a live block of these pools.
    ///
    /// # Errors
    /// `UmrfErrForeignPointer`, `UmrfErrInteriorPointer`, `UmrfErrDoubleFree` (nothing is
    /// done).
    pub fn free(&self, ptr: *const u8) -> Result<(), UmrfError> {
        let Some(owner) = self.owner(ptr) else {
            BadInput::count(&BAD.foreign_frees);
            return Err(foreign(ptr));
        };
        self.free_at(ptr, &owner)
    }

    /// Frees the block at `ptr`, whose owner (from [`Pools::owner`]) is `owner`.
    ///
    /// # Errors
    /// As [`Pools::free`], less the foreign pointer.
    pub fn free_at(&self, ptr: *const u8, owner: &Location) -> Result<(), UmrfError> {
        if owner.offset != 0 {
            BadInput::count(&BAD.interior_frees);
            return Err(fail(
                UmrfError::UmrfErrInteriorPointer,
                format!(
                    "umrf_free({ptr:p}): the pointer is {} bytes into a block of {} bytes; pass the \
                     pointer umrf_alloc returned",
                    owner.offset, owner.block_size
                ),
            ));
        }
        // A primary pool's slot is the core; a fallback block may be on any core's table.
        let taken = if owner.primary {
            lock(&self.cores[owner.slot]).live.remove(&ptr.addr())
        } else {
            self.cores
                .iter()
                .find_map(|c| lock(c).live.remove(&ptr.addr()))
        };
        match taken {
            // Dropping the capability sends the block home (after the table's lock is released).
            Some(live) => {
                drop(live);
                Ok(())
            }
            None => {
                BadInput::count(&BAD.double_frees);
                Err(fail(
                    UmrfError::UmrfErrDoubleFree,
                    format!(
                        "umrf_free({ptr:p}): block {} of slot {} is not allocated (state {:?}): \
                         freed twice, or freed after umrf_reset_pool released it",
                        owner.block,
                        owner.slot,
                        provenance::owner_of(ptr).map(|o| o.state)
                    ),
                ))
            }
        }
    }

    /// Releases every block `core` handed out; returns how many.
    pub fn reset(&self, core: usize) -> usize {
        let live = std::mem::take(&mut lock(&self.cores[core]).live);
        let released = live.len();
        drop(live); // every capability goes home, outside the lock
        released
    }

    /// Whether `pool_id` is one of these pools.
    pub fn is_ours(&self, pool_id: u64) -> bool {
        self.classes
            .iter()
            .chain(&self.fallbacks)
            .any(|p| p.id() == pool_id)
    }

    /// The core that holds the live block at `ptr`, if any.
    pub fn holder(&self, ptr: usize, home: usize, primary: bool) -> Option<usize> {
        if primary {
            lock(&self.cores[home])
                .live
                .contains_key(&ptr)
                .then_some(home)
        } else {
            (0..self.cores.len()).find(|&c| lock(&self.cores[c]).live.contains_key(&ptr))
        }
    }

    /// Whether `pool_id` is a primary (per-core) pool.
    pub fn is_primary(&self, pool_id: u64) -> bool {
        self.classes.iter().any(|p| p.id() == pool_id)
    }

    /// Statistics of every class, per core, and the bad-input counts, as JSON.
    pub fn stats_json(&self) -> Value {
        let live: Vec<usize> = self.cores.iter().map(|c| lock(c).live.len()).collect();
        let per_class: Vec<Value> = self
            .classes
            .iter()
            .zip(&self.fallbacks)
            .map(|(pool, fallback)| {
                let stats = pool.stats();
                let fb = fallback.stats();
                json!({
                    "block_size": stats.block_size,
                    "per_core": stats.slots.iter().map(|s| json!({
                        "core": s.slot,
                        "capacity": s.capacity,
                        "in_use": s.in_use,
                        "allocations": s.allocations,
                        "remote_frees": s.remote_frees,
                        "exhaustion_events": s.exhaustion_events,
                        "fallback_allocations": s.fallback_allocations,
                    })).collect::<Vec<_>>(),
                    "fallback_in_use": fb.slots.iter().map(|s| s.in_use).sum::<u64>(),
                    "fallback_capacity": fb.slots.iter().map(|s| s.capacity).sum::<u64>(),
                })
            })
            .collect();
        json!({
            "cores": self.config.cores,
            "live_blocks_per_core": live,
            "classes": per_class,
            "bad_input": BAD.json(),
        })
    }
}

/// The error for a pointer that is not the start of a block of these pools.
pub fn foreign(ptr: *const u8) -> UmrfError {
    fail(
        UmrfError::UmrfErrForeignPointer,
        format!(
            "umrf_free({ptr:p}): not a block of the umrf C pools (another allocator's pointer, the \
             stack, or garbage); free it with the allocator that made it"
        ),
    )
}

/// The C value of a block state (`UMRF_STATE_*` in the header).
pub fn state_code(state: BlockState) -> i32 {
    match state {
        BlockState::Free => crate::UMRF_STATE_FREE,
        BlockState::Owned { .. } => crate::UMRF_STATE_OWNED,
        BlockState::InFlight => crate::UMRF_STATE_IN_FLIGHT,
        BlockState::Frozen => crate::UMRF_STATE_FROZEN,
        BlockState::MappedForDevice => crate::UMRF_STATE_MAPPED_FOR_DEVICE,
        _ => crate::UMRF_STATE_UNKNOWN,
    }
}
