//! [`AnyPool`]: a pool whose residency was chosen at run time, and the checked downcast back
//! to a typed [`Pool<R>`].

use core::any::TypeId;
use core::fmt;

use super::Decision;
use crate::backing::{BackingInfo, Summary};
use crate::error::{Error, PoolName};
use crate::pool::{Identity, RawPool, Settings, build_raw, settings_setters};
use crate::residency::{CpuLocal, Cxl, GpuPinned, Hugepage, Node0, Residency, Strategy};
use crate::{Pool, PoolStats};

/// What the pool's memory was obtained as, for the downcast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Erased from a `Pool<R>`: only `R` itself matches.
    Typed(TypeId),
    /// Built from a [`Decision`]: the built-in marker of the strategy matches.
    Builtin,
}

/// A pool whose residency is known only at run time: built from a placement [`Decision`], or
/// erased from a typed [`Pool`].
///
/// Allocation needs the type back: [`try_into_typed`](AnyPool::try_into_typed) is a checked
/// downcast that returns the typed pool, or hands this one back unchanged on a mismatch, so
/// code that chooses at run time still ends in typed buffers.
///
/// A pool built from a decision matches the built-in marker of its strategy: `CpuLocal`,
/// `Hugepage`, `Cxl`, `GpuPinned`, or `NumaNode<N>` with the decision's node. A pool erased
/// from `Pool<R>` matches `R` only.
///
/// ```
/// use umrf::placement::AnyPool;
/// use umrf::{Pool, residency::{CpuLocal, Hugepage}};
///
/// let pool = Pool::<CpuLocal>::builder().block_size(64).blocks_per_slot(4).slots(1).build()?;
/// let any = AnyPool::from(pool);
/// assert!(any.is::<CpuLocal>() && !any.is::<Hugepage>());
/// let any = any.try_into_typed::<Hugepage>().unwrap_err().into_inner(); // handed back
/// let pool: Pool<CpuLocal> = any.try_into_typed().unwrap();
/// # drop(pool);
/// # Ok::<(), umrf::Error>(())
/// ```
pub struct AnyPool {
    raw: RawPool,
    strategy: Strategy,
    kind: Kind,
    decision: Option<Decision>,
}

impl AnyPool {
    /// A builder for a pool placed as `decision` says.
    ///
    /// ```
    /// use umrf::placement::{decide, AnyPool, Request};
    /// use umrf::topology::Topology;
    /// let decision = decide(&Request::new(1 << 16), &Topology::detect()?)?;
    /// let pool = AnyPool::builder(&decision).block_size(4096).blocks_per_slot(16).slots(1).build()?;
    /// assert_eq!(pool.strategy(), decision.strategy);
    /// assert_eq!(pool.decision(), Some(&decision));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(decision: &Decision) -> AnyPoolBuilder {
        AnyPoolBuilder {
            settings: Settings::default(),
            decision: decision.clone(),
        }
    }

    /// The strategy the pool's memory was obtained with.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The decision the pool was built from, if it was.
    pub fn decision(&self) -> Option<&Decision> {
        self.decision.as_ref()
    }

    /// Whether [`try_into_typed::<R>`](AnyPool::try_into_typed) would succeed.
    ///
    /// ```
    /// use umrf::placement::AnyPool;
    /// use umrf::{Pool, residency::{Node0, Node1}};
    /// let any = AnyPool::from(Pool::<Node0>::builder().block_size(64).blocks_per_slot(1).slots(1).build()?);
    /// assert!(any.is::<Node0>() && !any.is::<Node1>());
    /// # Ok::<(), umrf::Error>(())
    /// ```
    pub fn is<R: Residency>(&self) -> bool {
        match self.kind {
            Kind::Typed(id) => id == TypeId::of::<R>(),
            Kind::Builtin => builtin_matches::<R>(self.strategy),
        }
    }

    /// The typed pool, if its residency is `R`; else this pool, unchanged.
    ///
    /// # Errors
    /// An [`IntoTypedError`] that hands this pool back unchanged (take it with
    /// [`IntoTypedError::into_inner`]) when the pool's residency is not `R` (see
    /// [`is`](AnyPool::is)).
    ///
    /// ```
    /// use umrf::placement::{decide, AnyPool, Request};
    /// use umrf::residency::{CpuLocal, Strategy};
    /// use umrf::topology::Topology;
    /// let decision = decide(&Request::new(4096).force(Strategy::CpuLocal), &Topology::detect()?)?;
    /// let any = AnyPool::builder(&decision).block_size(4096).blocks_per_slot(1).slots(1).build()?;
    /// let pool = any.try_into_typed::<CpuLocal>().expect("decided CpuLocal");
    /// let lease = pool.attach()?;
    /// let _buf: umrf::SharedBuffer<u32, CpuLocal> = lease.alloc(16)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_into_typed<R: Residency>(self) -> Result<Pool<R>, IntoTypedError> {
        if self.is::<R>() {
            Ok(Pool::from_raw(self.raw))
        } else {
            Err(IntoTypedError {
                pool: Box::new(self),
                expected: R::NAME,
            })
        }
    }

    /// What the operating system really gave, one entry per slot.
    pub fn backing(&self) -> &[BackingInfo] {
        &self.raw.inner().backing
    }

    /// Counters of every slot.
    pub fn stats(&self) -> PoolStats {
        PoolStats::of(self.raw.inner())
    }

    /// The pool's name.
    pub fn name(&self) -> &PoolName {
        &self.raw.inner().name
    }

    /// The residency's name, with the node for `NumaNode` (for example `NumaNode<1>`).
    pub fn residency_name(&self) -> &str {
        &self.raw.inner().residency_label
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.raw.inner().slots.len()
    }

    /// Bytes per block.
    pub fn block_size(&self) -> usize {
        self.raw.inner().block_size
    }
}

impl<R: Residency> From<Pool<R>> for AnyPool {
    fn from(pool: Pool<R>) -> Self {
        AnyPool {
            raw: pool.into_raw(),
            strategy: R::STRATEGY,
            kind: Kind::Typed(TypeId::of::<R>()),
            decision: None,
        }
    }
}

impl fmt::Debug for AnyPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.raw.inner();
        f.debug_struct("AnyPool")
            .field("name", &inner.name)
            .field("residency", &inner.residency_label)
            .field("slots", &inner.slots.len())
            .field("backing", &Summary(&inner.backing))
            .field("decision", &self.decision.as_ref().map(|d| d.rule))
            .finish_non_exhaustive()
    }
}

/// Whether `R` is the built-in marker of `strategy`, by type identity: a custom marker never
/// matches, whatever its name. `NumaNode<N>` cannot be named for a node known only at run
/// time, so it is recognised by its sealed node number (the markers `NumaNode<N>` and their
/// aliases `Node0`…`Node7`).
fn builtin_matches<R: Residency>(strategy: Strategy) -> bool {
    let id = TypeId::of::<R>();
    match strategy {
        Strategy::CpuLocal => id == TypeId::of::<CpuLocal>(),
        Strategy::Hugepage => id == TypeId::of::<Hugepage>(),
        Strategy::Cxl => id == TypeId::of::<Cxl>(),
        Strategy::GpuPinned => id == TypeId::of::<GpuPinned>(),
        Strategy::Numa { node } => crate::residency::builtin_numa_node::<R>() == Some(node),
    }
}

/// The name and label of the built-in marker of `strategy`.
fn builtin_identity(strategy: Strategy) -> Identity {
    let residency = match strategy {
        Strategy::CpuLocal => CpuLocal::NAME,
        Strategy::Hugepage => Hugepage::NAME,
        Strategy::Cxl => Cxl::NAME,
        Strategy::GpuPinned => GpuPinned::NAME,
        Strategy::Numa { .. } => Node0::NAME,
    };
    let label = match strategy {
        Strategy::Numa { node } => format!("{residency}<{node}>"),
        _ => residency.to_owned(),
    };
    Identity {
        strategy,
        residency,
        label,
    }
}

/// Configures and builds an [`AnyPool`] placed as a [`Decision`] says. Made by
/// [`AnyPool::builder`]; the settings are those of [`PoolBuilder`](crate::PoolBuilder).
///
/// ```
/// use umrf::placement::{decide, AnyPool, Request};
/// use umrf::topology::Topology;
/// let topo = Topology::detect()?;
/// let decision = decide(&Request::new(1 << 20).from_cpu(0), &topo)?;
/// let pool = AnyPool::builder(&decision)
///     .name("scratch")
///     .block_size(1 << 16)
///     .blocks_per_slot(4)
///     .cpus([0])
///     .topology(topo)
///     .build()?;
/// assert_eq!(pool.name().as_str(), "scratch");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
#[derive(Debug)]
pub struct AnyPoolBuilder {
    settings: Settings,
    decision: Decision,
}

impl AnyPoolBuilder {
    settings_setters!();

    /// Reserves every slot's memory with the decision's strategy and returns the pool.
    ///
    /// # Errors
    /// As [`PoolBuilder::build`](crate::PoolBuilder::build) for the decided residency.
    pub fn build(self) -> Result<AnyPool, Error> {
        let strategy = self.decision.strategy;
        let raw = build_raw(self.settings, builtin_identity(strategy), None)?;
        Ok(AnyPool {
            raw,
            strategy,
            kind: Kind::Builtin,
            decision: Some(self.decision),
        })
    }
}

/// A refused [`AnyPool::try_into_typed`]: the residency asked for is not the pool's. It hands
/// the pool back unchanged and implements [`std::error::Error`] (`Send + Sync`), so `?` works
/// into `Box<dyn Error + Send + Sync>` and into [`crate::Error`].
///
/// ```
/// use umrf::placement::AnyPool;
/// use umrf::{Pool, residency::{CpuLocal, Hugepage}};
/// let any = AnyPool::from(Pool::<CpuLocal>::builder().name("p").block_size(64).blocks_per_slot(1).slots(1).build()?);
/// let err = any.try_into_typed::<Hugepage>().unwrap_err();
/// assert_eq!(err.expected(), "Hugepage");
/// assert!(err.to_string().contains("pool `p` has residency CpuLocal, not Hugepage"));
/// let pool: Pool<CpuLocal> = err.into_inner().try_into_typed()?;
/// # drop(pool);
/// # Ok::<(), umrf::Error>(())
/// ```
pub struct IntoTypedError {
    /// Boxed: the error stays small (the decision inside a pool carries its reasons).
    pool: Box<AnyPool>,
    expected: &'static str,
}

impl IntoTypedError {
    /// The pool, unchanged.
    pub fn into_inner(self) -> AnyPool {
        *self.pool
    }

    /// The pool, to look at (its residency, name, backing).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The residency that was asked for.
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

impl fmt::Debug for IntoTypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoTypedError")
            .field("pool", self.pool.name())
            .field("found", &self.pool.residency_name())
            .field("expected", &self.expected)
            .finish()
    }
}

impl fmt::Display for IntoTypedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool `{}` has residency {}, not {}: ask for `{}`, or check `AnyPool::is` before converting",
            self.pool.name(),
            self.pool.residency_name(),
            self.expected,
            self.pool.residency_name()
        )
    }
}

impl std::error::Error for IntoTypedError {}
