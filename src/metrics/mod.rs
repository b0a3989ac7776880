//! Pool health as Prometheus metrics: stats per pool and per slot, backing facts, and ownership
//! event counts, in the text exposition format 0.0.4.
//!
//! Register pools in a [`Registry`] and render it with [`render_prometheus`]; serve it with
//! [`MetricsServer`] (a minimal HTTP/1.1 endpoint on `std::net`). Every family has `# HELP` and
//! `# TYPE` lines; counters end in `_total`; sizes are in bytes, shares are `_ratio`s; series are
//! labelled `pool`, `residency` and (per slot) `slot`.
//!
//! | family | type | what |
//! |---|---|---|
//! | `umrf_{pool,slot}_capacity_blocks` | gauge | blocks held |
//! | `umrf_{pool,slot}_in_use_blocks` | gauge | blocks owned outside the pool now |
//! | `umrf_{pool,slot}_free_blocks` | gauge | free blocks now |
//! | `umrf_{pool,slot}_high_water_blocks` | gauge | most blocks out at once |
//! | `umrf_{pool,slot}_remote_frees_pending_blocks` | gauge | remote frees not yet taken back |
//! | `umrf_{pool,slot}_region_bytes` | gauge | memory reserved |
//! | `umrf_{pool,slot}_leased` | gauge | leased slots |
//! | `umrf_{pool,slot}_allocations_total` | counter | blocks handed out |
//! | `umrf_{pool,slot}_reuses_total` | counter | of those, blocks used before |
//! | `umrf_{pool,slot}_local_frees_total` | counter | frees on the owning thread |
//! | `umrf_{pool,slot}_remote_frees_total` | counter | frees from other threads |
//! | `umrf_{pool,slot}_exhaustion_events_total` | counter | allocations that found the slot empty |
//! | `umrf_{pool,slot}_fallback_allocations_total` | counter | allocations a fallback pool served |
//! | `umrf_{pool,slot}_accept_failures_total` | counter | capabilities refused |
//! | `umrf_{pool,slot}_reuse_ratio` | gauge | reuses over allocations |
//! | `umrf_{pool,slot}_external_fragmentation_ratio` | gauge | free memory unusable for a block |
//! | `umrf_pool_block_size_bytes`, `umrf_pool_slots` | gauge | geometry |
//! | `umrf_slot_backing_info` | gauge (1) | backing facts as labels: `strategy`, `mechanism`, `prefaulted` |
//! | `umrf_slot_page_size_bytes` | gauge | the page size backing the region |
//! | `umrf_pool_ownership_events_total` | counter | ownership events by `event` (pools with logging) |
//! | `umrf_pool_ownership_events_overwritten_total` | counter | events dropped from full rings |
//! | `umrf_class_*{family, class_bytes}` | both | per size class of a size-class family: [`render_classes`] |
//!
//! ```
//! use umrf::metrics::{render_prometheus, Registry};
//! use umrf::{Pool, residency::CpuLocal};
//!
//! let pool = Pool::<CpuLocal>::builder().name("ingest").block_size(4096).blocks_per_slot(8).slots(2).build()?;
//! let registry = Registry::new();
//! registry.register(&pool)?;
//! let lease = pool.attach_slot(1)?;
//! let _buf = lease.alloc::<u8>(10)?;
//!
//! let text = render_prometheus(&registry);
//! assert!(text.contains("# TYPE umrf_slot_allocations_total counter\n"));
//! assert!(text.contains("umrf_slot_allocations_total{pool=\"ingest\",residency=\"CpuLocal\",slot=\"1\"} 1\n"));
//! assert!(text.contains("umrf_pool_in_use_blocks{pool=\"ingest\",residency=\"CpuLocal\"} 1\n"));
//! # Ok::<(), umrf::Error>(())
//! ```

mod classes;
mod families;
mod http;
mod text;
mod tiered;

use core::fmt;
use std::sync::PoisonError;

pub use classes::render_classes;
pub use http::MetricsServer;

use crate::error::Error;
use crate::events::{EventKind, OwnershipLog};
use crate::pool::{Pool, PoolStats, RawPool};
use crate::residency::Residency;
use crate::sync::Mutex;
use families::{FAMILIES, GEOMETRY, backing_labels, backing_values};
use text::{Kind, Value, header, sample};

/// The `Content-Type` of the text exposition format this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The pools whose metrics are exported. Share it (`Arc<Registry>`) between the code that
/// builds pools and the endpoint that renders them.
///
/// The registry holds a handle to each pool, so a registered pool stays alive (its memory too)
/// until it is [unregistered](Self::unregister) or the registry is dropped.
///
/// ```
/// use umrf::metrics::Registry;
/// use umrf::{Error, Pool, residency::CpuLocal};
/// let registry = Registry::new();
/// let pool = Pool::<CpuLocal>::builder().name("a").block_size(64).blocks_per_slot(1).slots(1).build()?;
/// registry.register(&pool)?;
/// let twin = Pool::<CpuLocal>::builder().name("a").block_size(64).blocks_per_slot(1).slots(1).build()?;
/// assert!(matches!(registry.register(&twin), Err(Error::InvalidConfig { .. })));
/// assert_eq!(registry.pool_names(), ["a"]);
/// assert!(registry.unregister("a"));
/// assert!(registry.pool_names().is_empty());
/// # Ok::<(), umrf::Error>(())
/// ```
pub struct Registry {
    pools: Mutex<Vec<RawPool>>,
    stores: Mutex<Vec<crate::tiered::TieredMetrics>>,
    families: Mutex<Vec<(String, ClassSource)>>,
}

/// Where a registered size-class family's counters come from, read at each render.
type ClassSource = Box<dyn Fn() -> Option<crate::sized::SizedStats> + Send + Sync>;

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry {
            pools: Mutex::new(Vec::new()),
            stores: Mutex::new(Vec::new()),
            families: Mutex::new(Vec::new()),
        }
    }

    /// Adds `pool`; its name becomes the `pool` label of its series.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a pool of the same name is registered already (the series
    /// would collide): name pools apart with [`PoolBuilder::name`](crate::PoolBuilder::name).
    pub fn register<R: Residency>(&self, pool: &Pool<R>) -> Result<(), Error> {
        let mut pools = self.lock();
        let name = pool.name();
        if pools.iter().any(|p| p.inner().name == *name) {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "a pool named `{name}` is registered for metrics already: give pools distinct names"
                ),
            });
        }
        pools.push(pool.raw().clone());
        Ok(())
    }

    /// Removes the pool named `name`; returns whether it was registered.
    pub fn unregister(&self, name: &str) -> bool {
        let mut pools = self.lock();
        let before = pools.len();
        pools.retain(|p| p.inner().name.as_str() != name);
        pools.len() != before
    }

    /// The registered pools' names, in registration order.
    pub fn pool_names(&self) -> Vec<String> {
        self.lock()
            .iter()
            .map(|p| p.inner().name.as_str().to_owned())
            .collect()
    }

    /// Adds a [`TieredStore`](crate::tiered::TieredStore)'s counters (from
    /// [`TieredStore::metrics`](crate::tiered::TieredStore::metrics)): `umrf_tiered_*` series
    /// labelled `store` (and `tier`). Register the store's pool too, with
    /// [`register`](Self::register), for its block-level series.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a store of the same name is registered already.
    ///
    /// ```
    /// use umrf::metrics::Registry;
    /// use umrf::tiered::TieredStore;
    /// let store = TieredStore::<umrf::residency::CpuLocal>::builder().name("scratch")
    ///     .page_size(4096).ram_budget(4096).build()?;
    /// let registry = Registry::new();
    /// registry.register_tiered(store.metrics())?;
    /// assert!(registry.render_prometheus().contains(r#"umrf_tiered_tier_pages{store="scratch",tier="disk"} 0"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn register_tiered(&self, store: crate::tiered::TieredMetrics) -> Result<(), Error> {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        if stores.iter().any(|s| s.name() == store.name()) {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "a tiered store named `{}` is registered for metrics already: give stores distinct names",
                    store.name()
                ),
            });
        }
        stores.push(store);
        Ok(())
    }

    /// Adds a size-class family (a [`GlobalPool`](crate::GlobalPool) or a
    /// [`SizedPool`](crate::sized::SizedPool)) under the `family` label: `stats` is called at
    /// each render and its counters written as by [`render_classes`] (nothing while it
    /// returns `None`, as a global pool does before its first allocation).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a family of the same name is registered already.
    ///
    /// ```
    /// use umrf::metrics::Registry;
    /// use umrf::{GlobalPool, residency::CpuLocal};
    /// static POOL: GlobalPool<CpuLocal> = GlobalPool::new();
    /// let registry = Registry::new();
    /// registry.register_classes("heap", || POOL.stats().sized)?;
    /// let p = POOL.allocate(64, 8);
    /// assert!(registry.render_prometheus().contains(r#"umrf_class_in_use_blocks{family="heap",class_bytes="64"} 1"#));
    /// # // SAFETY: `p` came from `POOL.allocate` above and is freed once, here.
    /// # unsafe { POOL.free(p) };
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn register_classes(
        &self,
        family: &str,
        stats: impl Fn() -> Option<crate::sized::SizedStats> + Send + Sync + 'static,
    ) -> Result<(), Error> {
        let mut families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        if families.iter().any(|(name, _)| name == family) {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "a size-class family named `{family}` is registered for metrics already: give families distinct names"
                ),
            });
        }
        families.push((family.to_owned(), Box::new(stats)));
        Ok(())
    }

    /// The metrics of every registered pool, tiered store and size-class family, in the text
    /// exposition format 0.0.4.
    pub fn render_prometheus(&self) -> String {
        let snapshots: Vec<Snapshot> = self.lock().iter().map(Snapshot::of).collect();
        let mut out = render(&snapshots);
        let stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        tiered::render(&mut out, &stores);
        let families = self.families.lock().unwrap_or_else(PoisonError::into_inner);
        for (family, stats) in families.iter() {
            if let Some(stats) = stats() {
                out.push_str(&render_classes(family, &stats));
            }
        }
        out
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, Vec<RawPool>> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("pools", &self.pool_names())
            .finish()
    }
}

/// The metrics of every pool in `registry`, in the Prometheus text exposition format 0.0.4
/// (serve it with [`CONTENT_TYPE`]).
///
/// ```
/// use umrf::metrics::{render_prometheus, Registry};
/// assert_eq!(render_prometheus(&Registry::new()), "");
/// ```
pub fn render_prometheus(registry: &Registry) -> String {
    registry.render_prometheus()
}

/// One pool's figures, read once per rendering.
struct Snapshot {
    stats: PoolStats,
    backing: Vec<crate::backing::BackingInfo>,
    log: Option<OwnershipLog>,
}

impl Snapshot {
    fn of(pool: &RawPool) -> Snapshot {
        let inner = pool.inner();
        Snapshot {
            stats: PoolStats::of(inner),
            backing: inner.backing.to_vec(),
            log: inner.log.clone().map(OwnershipLog::new),
        }
    }
}

fn render(pools: &[Snapshot]) -> String {
    let mut out = String::new();
    if pools.is_empty() {
        return out;
    }
    for family in FAMILIES {
        if let Some(pool_value) = family.pool {
            let name = format!("umrf_pool_{}", family.suffix);
            header(&mut out, &name, family.help, family.kind);
            for p in pools {
                sample(&mut out, &name, &pool_labels(p), pool_value(&p.stats));
            }
        }
        let name = format!("umrf_slot_{}", family.suffix);
        header(&mut out, &name, family.help, family.kind);
        for p in pools {
            for s in &p.stats.slots {
                let slot = s.slot.to_string();
                sample(&mut out, &name, &slot_labels(p, &slot), (family.slot)(s));
            }
        }
    }
    for (name, help, value) in GEOMETRY {
        header(&mut out, name, help, Kind::Gauge);
        for p in pools {
            sample(&mut out, name, &pool_labels(p), value(&p.stats));
        }
    }
    render_backing(&mut out, pools);
    render_events(&mut out, pools);
    out
}

fn pool_labels(p: &Snapshot) -> [(&'static str, &str); 2] {
    [
        ("pool", p.stats.pool.as_str()),
        ("residency", p.stats.residency.as_str()),
    ]
}

fn slot_labels<'a>(p: &'a Snapshot, slot: &'a str) -> [(&'static str, &'a str); 3] {
    let [pool, residency] = pool_labels(p);
    [pool, residency, ("slot", slot)]
}

fn render_backing(out: &mut String, pools: &[Snapshot]) {
    let name = "umrf_slot_backing_info";
    header(
        out,
        name,
        "What the operating system gave the slot's region, as labels (value 1).",
        Kind::Gauge,
    );
    for p in pools {
        for (slot, info) in p.backing.iter().enumerate() {
            let slot = slot.to_string();
            let facts = backing_labels(info);
            let mut labels: Vec<(&str, &str)> = slot_labels(p, &slot).to_vec();
            labels.extend(facts.iter().map(|(k, v)| (*k, v.as_str())));
            sample(out, name, &labels, Value::Int(1));
        }
    }
    let Some(first) = pools.iter().find_map(|p| p.backing.first()) else {
        return;
    };
    for (index, (name, help, _)) in backing_values(first).into_iter().enumerate() {
        header(out, name, help, Kind::Gauge);
        for p in pools {
            for (slot, info) in p.backing.iter().enumerate() {
                let slot = slot.to_string();
                let value = backing_values(info)[index].2;
                sample(out, name, &slot_labels(p, &slot), value);
            }
        }
    }
}

fn render_events(out: &mut String, pools: &[Snapshot]) {
    let logging: Vec<(&Snapshot, &OwnershipLog)> = pools
        .iter()
        .filter_map(|p| p.log.as_ref().map(|log| (p, log)))
        .collect();
    if logging.is_empty() {
        return;
    }
    let name = "umrf_pool_ownership_events_total";
    header(
        out,
        name,
        "Ownership events recorded, by kind (pools built with ownership logging).",
        Kind::Counter,
    );
    for (p, log) in &logging {
        for kind in EventKind::ALL {
            let [pool, residency] = pool_labels(p);
            let labels = [pool, residency, ("event", kind.as_str())];
            sample(out, name, &labels, Value::Int(log.count(kind)));
        }
    }
    let name = "umrf_pool_ownership_events_overwritten_total";
    header(
        out,
        name,
        "Ownership events dropped from full in-memory rings (sinks still received them).",
        Kind::Counter,
    );
    for (p, log) in &logging {
        sample(out, name, &pool_labels(p), Value::Int(log.overwritten()));
    }
}
