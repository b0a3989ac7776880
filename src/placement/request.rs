//! [`Request`]: what a buffer (or pool) is for, and the scopes and preferences it names.

use core::fmt;

use crate::residency::Strategy;

/// Who reads and writes the memory: the scope of a [`Request`].
///
/// ```
/// use umrf::placement::Reach;
/// assert_eq!(Reach::default(), Reach::Local);
/// assert_eq!(Reach::CrossSocket.to_string(), "cross-socket");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reach {
    /// Threads on the requester's own node.
    #[default]
    Local,
    /// Threads on other sockets of this machine too.
    CrossSocket,
    /// Other machines or devices (RDMA, network, storage), through a registration of the
    /// whole region.
    Remote,
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reach::Local => "local",
            Reach::CrossSocket => "cross-socket",
            Reach::Remote => "remote",
        })
    }
}

/// Which property of memory the data is bound by: the tier a [`Request`] asks for.
///
/// Memory-only nodes (HBM without CPUs, CXL expanders) are chosen only when a request asks
/// for their property; an ordinary request stays on nodes with CPUs.
///
/// ```
/// use umrf::placement::MemoryPreference;
/// assert_eq!(MemoryPreference::default(), MemoryPreference::Latency);
/// assert_eq!(MemoryPreference::Bandwidth.to_string(), "bandwidth");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemoryPreference {
    /// Ordinary DRAM near the requester (the default).
    #[default]
    Latency,
    /// High-bandwidth memory (HBM, Xeon Phi MCDRAM) where the topology has a node of that
    /// kind with room: streaming kernels bound by memory bandwidth.
    Bandwidth,
    /// A capacity tier (CXL-attached memory) for large data bound by capacity rather than
    /// latency: cold tables, spill space.
    Capacity,
}

impl fmt::Display for MemoryPreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemoryPreference::Latency => "latency",
            MemoryPreference::Bandwidth => "bandwidth",
            MemoryPreference::Capacity => "capacity",
        })
    }
}

/// What a buffer (or pool) is for: its size, who uses it, which memory tier it prefers, and
/// any explicit choice.
///
/// ```
/// use umrf::placement::{MemoryPreference, Reach, Request};
/// use umrf::residency::Strategy;
/// let request = Request::new(8 << 20)
///     .reach(Reach::CrossSocket)
///     .from_cpu(3)
///     .prefer(MemoryPreference::Bandwidth)
///     .allow_spread(true);
/// assert_eq!(request.bytes(), 8 << 20);
/// assert_eq!(request.preference(), MemoryPreference::Bandwidth);
/// let forced = request.force(Strategy::Hugepage);
/// assert_eq!(forced.forced(), Some(Strategy::Hugepage));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub(super) bytes: usize,
    pub(super) reach: Reach,
    pub(super) gpu_access: bool,
    pub(super) preference: MemoryPreference,
    pub(super) spread: bool,
    pub(super) cpu: Option<u32>,
    pub(super) forced: Option<Strategy>,
}

impl Request {
    /// A request for `bytes`, local scope, no GPU access, latency preference, one node.
    ///
    /// ```
    /// use umrf::placement::Request;
    /// assert_eq!(Request::new(4096).bytes(), 4096);
    /// ```
    pub fn new(bytes: usize) -> Self {
        Request {
            bytes,
            reach: Reach::Local,
            gpu_access: false,
            preference: MemoryPreference::Latency,
            spread: false,
            cpu: None,
            forced: None,
        }
    }

    /// Who uses the memory: the request's scope.
    ///
    /// ```
    /// use umrf::placement::{Reach, Request};
    /// let _ = Request::new(4096).reach(Reach::Remote);
    /// ```
    pub fn reach(mut self, reach: Reach) -> Self {
        self.reach = reach;
        self
    }

    /// Whether a GPU reads or writes the memory by DMA.
    ///
    /// ```
    /// use umrf::placement::Request;
    /// let _ = Request::new(4096).gpu_access(true);
    /// ```
    pub fn gpu_access(mut self, yes: bool) -> Self {
        self.gpu_access = yes;
        self
    }

    /// Which memory tier the data prefers (default [`MemoryPreference::Latency`]).
    ///
    /// ```
    /// use umrf::placement::{MemoryPreference, Request};
    /// let r = Request::new(1 << 30).prefer(MemoryPreference::Capacity);
    /// assert_eq!(r.preference(), MemoryPreference::Capacity);
    /// ```
    pub fn prefer(mut self, preference: MemoryPreference) -> Self {
        self.preference = preference;
        self
    }

    /// Shorthand: `true` is [`prefer(MemoryPreference::Capacity)`](Request::prefer), `false`
    /// [`MemoryPreference::Latency`]. The data is bound by capacity rather than latency (cold
    /// tables, spill space), so CXL memory may hold it when the request is large.
    ///
    /// ```
    /// use umrf::placement::{MemoryPreference, Request};
    /// assert_eq!(Request::new(1).capacity_bound(true).preference(), MemoryPreference::Capacity);
    /// ```
    pub fn capacity_bound(self, yes: bool) -> Self {
        self.prefer(if yes {
            MemoryPreference::Capacity
        } else {
            MemoryPreference::Latency
        })
    }

    /// Whether the memory may be spread over several nodes when no single node has room for
    /// it (default: no, and such a request is an error).
    ///
    /// ```
    /// use umrf::placement::Request;
    /// assert!(Request::new(1 << 40).allow_spread(true).spreads());
    /// ```
    pub fn allow_spread(mut self, yes: bool) -> Self {
        self.spread = yes;
        self
    }

    /// The CPU that will use the memory (default: the calling thread's CPU for a topology of
    /// this machine, else the first CPU of the first node).
    ///
    /// ```
    /// use umrf::placement::Request;
    /// let _ = Request::new(4096).from_cpu(3);
    /// ```
    pub fn from_cpu(mut self, cpu: u32) -> Self {
        self.cpu = Some(cpu);
        self
    }

    /// An explicit choice, which always wins over the rules.
    ///
    /// ```
    /// use umrf::placement::Request;
    /// use umrf::residency::Strategy;
    /// assert_eq!(Request::new(1).force(Strategy::Cxl).forced(), Some(Strategy::Cxl));
    /// ```
    pub fn force(mut self, strategy: Strategy) -> Self {
        self.forced = Some(strategy);
        self
    }

    /// Bytes asked for.
    ///
    /// ```
    /// use umrf::placement::Request;
    /// assert_eq!(Request::new(7).bytes(), 7);
    /// ```
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The memory tier asked for.
    ///
    /// ```
    /// use umrf::placement::{MemoryPreference, Request};
    /// assert_eq!(Request::new(7).preference(), MemoryPreference::Latency);
    /// ```
    pub fn preference(&self) -> MemoryPreference {
        self.preference
    }

    /// Whether the request may be spread over several nodes.
    ///
    /// ```
    /// use umrf::placement::Request;
    /// assert!(!Request::new(7).spreads());
    /// ```
    pub fn spreads(&self) -> bool {
        self.spread
    }

    /// The explicit choice, if any.
    ///
    /// ```
    /// use umrf::placement::Request;
    /// assert_eq!(Request::new(7).forced(), None);
    /// ```
    pub fn forced(&self) -> Option<crate::residency::Strategy> {
        self.forced
    }
}
