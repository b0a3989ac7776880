//! Building a pool without its type: the settings every builder shares, the slot-to-CPU map,
//! and the one function that asks the backing layer for every slot's region.

use super::Geometry;
use super::inner::{PoolInner, PoolParts, RawPool};
use super::slot::Slot;
use crate::backing::{self, BackingInfo, BackingOptions, Machine, RegionRequest};
use crate::error::{Error, PoolName};
use crate::events::{LogConfig, PoolLog, SlotLog};
use crate::residency::Strategy;
use crate::topology::{CpuSet, Topology};

/// A builder's settings, shared by [`PoolBuilder`](super::PoolBuilder) and
/// [`AnyPoolBuilder`](crate::placement::AnyPoolBuilder).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) name: Option<String>,
    pub(crate) block_size: usize,
    pub(crate) blocks_per_slot: usize,
    pub(crate) slots: Option<usize>,
    pub(crate) cpus: Option<Vec<u32>>,
    pub(crate) prefault: bool,
    pub(crate) topology: Option<Topology>,
    pub(crate) options: BackingOptions,
    pub(crate) log: Option<LogConfig>,
    /// Block sizes are rounded up to a multiple of this: [`BLOCK_GRANULE`](super::BLOCK_GRANULE)
    /// for every public builder; size-class pools use 16 for their small classes.
    pub(crate) granule: usize,
    /// Register the pool in the provenance registry (see `PoolParts::register`).
    pub(crate) register_provenance: bool,
    /// Local frees may go into the slots' one-entry hot cell (see `Slot`); size-class pools,
    /// whose allocations pop the stack alone, keep every free on the stack.
    pub(crate) hot_cell: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            name: None,
            block_size: 4096,
            blocks_per_slot: 1024,
            slots: None,
            cpus: None,
            prefault: true,
            topology: None,
            options: BackingOptions::default(),
            log: None,
            granule: super::BLOCK_GRANULE,
            register_provenance: true,
            hot_cell: true,
        }
    }
}

/// Who the pool is: its strategy and names.
pub(crate) struct Identity {
    pub(crate) strategy: Strategy,
    pub(crate) residency: &'static str,
    pub(crate) label: String,
}

/// The setters of [`Settings`], written once for every builder that has a `settings` field.
macro_rules! settings_setters {
    () => {
        /// Names the pool (for errors, stats and metrics). Default: `<residency>-<id>`. An
        /// empty (or all-blank) name makes `build` fail with
        /// [`Error::InvalidConfig`](crate::Error::InvalidConfig). Names need not be unique:
        /// errors that compare pools also give their ids.
        pub fn name(mut self, name: impl Into<String>) -> Self {
            self.settings.name = Some(name.into());
            self
        }

        /// Bytes per block; rounded up to a multiple of [`BLOCK_GRANULE`](crate::BLOCK_GRANULE).
        /// Default 4096.
        pub fn block_size(mut self, bytes: usize) -> Self {
            self.settings.block_size = bytes;
            self
        }

        /// Blocks in each slot. Default 1024.
        pub fn blocks_per_slot(mut self, blocks: usize) -> Self {
            self.settings.blocks_per_slot = blocks;
            self
        }

        /// Number of slots. Default: one per CPU of [`cpus`](Self::cpus), else one per online
        /// CPU.
        pub fn slots(mut self, slots: usize) -> Self {
            self.settings.slots = Some(slots);
            self
        }

        /// The CPUs the slots serve: slot `i` serves `cpus[i % cpus.len()]`, and its memory is
        /// placed for that CPU (for `CpuLocal`: on its node). A CPU may appear more than once
        /// (two threads sharing a core each get a slot). Default: the online CPUs in order.
        ///
        /// # Errors (at `build`)
        /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) for an empty list,
        /// [`Error::CpuUnavailable`](crate::Error::CpuUnavailable) for a CPU that is not
        /// online.
        pub fn cpus(mut self, cpus: impl IntoIterator<Item = u32>) -> Self {
            self.settings.cpus = Some(cpus.into_iter().collect());
            self
        }

        /// Whether to fault every page in at build (default `true`), so the hot path never
        /// takes a page fault. `GpuPinned` regions are always faulted in (locking does it).
        pub fn prefault(mut self, prefault: bool) -> Self {
            self.settings.prefault = prefault;
            self
        }

        $crate::pool::backing_setters!();

        /// Records every change of ownership of the pool's blocks (see
        /// [`events`](crate::events)). Default: off, and a pool without logging pays nothing
        /// measurable for the hooks.
        ///
        /// ```
        /// use umrf::events::{EventKind, LogConfig};
        /// use umrf::{Pool, residency::CpuLocal};
        /// let pool = Pool::<CpuLocal>::builder()
        ///     .block_size(64).blocks_per_slot(1).slots(1)
        ///     .log_ownership(LogConfig::new().ring_capacity(128))
        ///     .build()?;
        /// let lease = pool.attach()?;
        /// let held = lease.alloc::<u8>(1)?;
        /// assert!(lease.alloc::<u8>(1).is_err()); // exhausted
        /// let log = pool.ownership_log().unwrap();
        /// let kinds: Vec<_> = log.events().iter().map(|e| e.event).collect();
        /// assert_eq!(kinds, [EventKind::Allocate, EventKind::Exhausted]);
        /// # drop(held);
        /// # Ok::<(), umrf::Error>(())
        /// ```
        pub fn log_ownership(mut self, config: crate::events::LogConfig) -> Self {
            self.settings.log = Some(config);
            self
        }
    };
}
pub(crate) use settings_setters;

/// The placement setters of [`Settings`] that every builder shares, pools and size-class
/// families alike.
macro_rules! backing_setters {
    () => {
        /// Places slots by this topology instead of detecting the machine's at build
        /// ([`Topology::detect`](crate::topology::Topology::detect), about a millisecond of
        /// sysfs reads: pass one detected topology to many builders to save it). The memory
        /// still comes from this machine: a node that the given topology has and the machine
        /// lacks fails at `mbind`.
        pub fn topology(mut self, topology: crate::topology::Topology) -> Self {
            self.settings.topology = Some(topology);
            self
        }

        /// What a `Cxl` pool does without a CXL node. Default
        /// [`CxlFallback::Fail`](crate::backing::CxlFallback::Fail).
        pub fn cxl_fallback(mut self, fallback: crate::backing::CxlFallback) -> Self {
            self.settings.options.cxl_fallback = fallback;
            self
        }

        /// Which huge pages a `Hugepage` pool may use. Default
        /// [`HugePageMode::Auto`](crate::backing::HugePageMode::Auto).
        pub fn huge_pages(mut self, mode: crate::backing::HugePageMode) -> Self {
            self.settings.options.huge_pages = mode;
            self
        }
    };
}
pub(crate) use backing_setters;

/// Validates the settings, obtains every slot's region, and returns the pool's first handle.
/// On any error, the regions already obtained are returned to the system.
pub(crate) fn build_raw(
    mut settings: Settings,
    identity: Identity,
    fallback: Option<RawPool>,
) -> Result<RawPool, Error> {
    if settings
        .name
        .as_ref()
        .is_some_and(|name| name.trim().is_empty())
    {
        return Err(Error::InvalidConfig {
            reason: "the pool name is empty: give a name that says what the pool is for, or leave it unset for `<residency>-<id>`".into(),
        });
    }
    if settings.cpus.as_ref().is_some_and(Vec::is_empty) {
        return Err(Error::InvalidConfig {
            reason: "cpus is empty: give at least one CPU for the slots to serve".into(),
        });
    }
    let slots = settings.slots.or(settings.cpus.as_ref().map(Vec::len));
    let geometry = Geometry::check(
        settings.block_size,
        settings.blocks_per_slot,
        slots,
        settings.granule,
    )?;
    if let Some(pool) = &fallback {
        check_fallback(pool, &geometry)?;
    }
    let (topology, unknown) = machine(settings.topology.take());
    let machine = match &topology {
        Some(topo) => Machine::Known(topo),
        None => Machine::Unknown(&unknown),
    };
    let cpus = slot_cpus(settings.cpus.take(), topology.as_ref())?;
    let id = crate::sync::next_pool_id();
    let name = PoolName::new(
        &settings
            .name
            .take()
            .unwrap_or_else(|| format!("{}-{id}", identity.label)),
    );
    let span = tracing::debug_span!(
        target: "umrf::pool",
        "umrf.pool.build",
        pool = %name,
        residency = %identity.label,
        slots = geometry.slots,
        blocks_per_slot = geometry.blocks,
        block_size = geometry.block_size,
    );
    let _entered = span.enter();
    let mut regions = Vec::with_capacity(geometry.slots);
    for index in 0..geometry.slots {
        let request = RegionRequest {
            bytes: geometry.slot_bytes,
            strategy: identity.strategy,
            residency: identity.residency,
            prefault: settings.prefault,
            cpu: (!cpus.is_empty()).then(|| cpus[index % cpus.len()]),
            machine,
            options: settings.options,
        };
        regions.push(backing::obtain(&request).inspect_err(|error| {
            tracing::debug!(target: "umrf::pool", slot = index, %error, "backing refused");
        })?);
    }
    backing::finish(&mut regions);
    let hot_cell = settings.hot_cell;
    let log = settings
        .log
        .take()
        .map(|config| {
            PoolLog::new(
                name.clone(),
                id,
                identity.label.clone(),
                geometry.slots,
                config,
            )
        })
        .transpose()?;
    let slot_list = regions
        .into_iter()
        .enumerate()
        .map(|(index, region)| {
            trace_backing(index, region.info());
            let mut slot = Slot::new(index, geometry.blocks, geometry.block_size, region);
            if let Some(log) = &log {
                slot.set_log(SlotLog::new(log.clone(), index, geometry.blocks));
            }
            if !hot_cell {
                slot.keep_frees_on_the_stack();
            }
            slot
        })
        .collect();
    Ok(PoolInner::create(PoolParts {
        id,
        name,
        residency: identity.residency,
        residency_label: identity.label,
        block_size: geometry.block_size,
        block_align: geometry.block_align,
        blocks_per_slot: geometry.blocks,
        slots: slot_list,
        fallback,
        log,
        register: settings.register_provenance,
    }))
    .inspect(|raw| {
        tracing::debug!(target: "umrf::pool", id, logging = raw.inner().log.is_some(), "pool built");
    })
}

/// Every request the primary accepts must fit a fallback block (alloc checks the primary's
/// geometry only).
fn check_fallback(pool: &RawPool, geometry: &Geometry) -> Result<(), Error> {
    let fallback = pool.inner();
    if fallback.block_size < geometry.block_size || fallback.block_align < geometry.block_align {
        return Err(Error::InvalidConfig {
            reason: format!(
                "fallback pool `{}` has {}-byte blocks aligned to {}, smaller than this pool's {}-byte blocks aligned to {}: give the fallback blocks at least as large",
                fallback.name,
                fallback.block_size,
                fallback.block_align,
                geometry.block_size,
                geometry.block_align
            ),
        });
    }
    Ok(())
}

/// The topology to place by: the given one, else this machine's; or why there is none.
fn machine(given: Option<Topology>) -> (Option<Topology>, String) {
    if given.is_some() {
        return (given, String::new());
    }
    if cfg!(any(miri, umrf_loom)) {
        return (None, "not detected under Miri and loom".into());
    }
    match Topology::detect() {
        Ok(topo) => (Some(topo), String::new()),
        Err(e) => (None, e.to_string()),
    }
}

/// The CPU of each slot (cycled): the given list, checked against the machine, else the
/// online CPUs. Empty when unknown.
fn slot_cpus(given: Option<Vec<u32>>, topology: Option<&Topology>) -> Result<Vec<u32>, Error> {
    let online: Option<CpuSet> = topology.map(|topo| {
        if topo.online_cpus().is_empty() {
            topo.nodes()
                .iter()
                .fold(CpuSet::new(), |all, n| all.union(n.cpus()))
        } else {
            topo.online_cpus().clone()
        }
    });
    match (given, online) {
        (Some(list), Some(online)) => {
            if let Some(&cpu) = list.iter().find(|&&c| !online.contains(c)) {
                return Err(Error::CpuUnavailable {
                    cpu,
                    reason: format!(
                        "it is not online on this machine (online CPUs: {online}); give the builder's `cpus` from that list"
                    ),
                });
            }
            Ok(list)
        }
        (Some(list), None) => Ok(list),
        (None, Some(online)) => Ok(online.iter().collect()),
        (None, None) => Ok((0..backing::os::online_cpus() as u32).collect()),
    }
}

/// Reports what the backing gave one slot, as a `tracing` event (no cost without a subscriber).
fn trace_backing(slot: usize, info: &BackingInfo) {
    tracing::debug!(
        target: "umrf::backing",
        slot,
        strategy = %info.strategy,
        mechanism = %info.mechanism,
        bytes = info.bytes,
        page_size = info.page_size,
        prefaulted = info.prefaulted,
        reason = %info.reason,
        "slot backing"
    );
}
