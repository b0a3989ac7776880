//! Peers and helpers shared by the benchmarks: the same adapters in every harness, so every
//! comparison is like for like.

#![allow(dead_code)] // each bench binary uses a subset

pub mod access;

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;

use std::hint::black_box;
use std::time::{Duration, Instant};

use mimalloc::MiMalloc;
use tikv_jemallocator::Jemalloc;
use umrf::residency::CpuLocal;
use umrf::{Capability, Pool, PoolBuilder, mailbox};

/// Pins the calling thread to `cpu`; a CPU this machine does not have is skipped.
///
/// The count is of online CPUs, not `available_parallelism`: that one reads the calling
/// thread's affinity mask, which a thread inherits from the (already pinned) thread that
/// spawned it, and would make every later pin a silent no-op.
pub fn pin_to(cpu: usize) {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if online <= 0 || cpu >= online as usize {
        eprintln!("pin_to({cpu}): this machine has {online} online CPUs; thread left unpinned");
        return;
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` < CPU_SETSIZE on any machine this runs on (checked against the CPU count).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is this thread; the set is initialised and its size is passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
}

/// A umrf pool of `slots` slots of `blocks_per_slot` blocks of `block_size` bytes, every page
/// faulted in.
pub fn umrf_pool(block_size: usize, blocks_per_slot: usize, slots: usize) -> Pool<CpuLocal> {
    Pool::<CpuLocal>::builder()
        .block_size(block_size)
        .blocks_per_slot(blocks_per_slot)
        .slots(slots)
        .build()
        .expect("umrf pool")
}

/// An allocator used directly, not installed as the global allocator, so all of them can run
/// side by side in one process.
#[derive(Clone, Copy, Debug)]
pub enum Peer {
    System,
    Mimalloc,
    Jemalloc,
}

impl Peer {
    pub const ALL: [Peer; 3] = [Peer::System, Peer::Mimalloc, Peer::Jemalloc];

    pub fn name(self) -> &'static str {
        match self {
            Peer::System => "system",
            Peer::Mimalloc => "mimalloc",
            Peer::Jemalloc => "jemalloc",
        }
    }

    #[inline(always)]
    pub fn alloc(self, layout: Layout) -> *mut u8 {
        match self {
            // SAFETY: every layout used by the benchmarks has a non-zero size.
            Peer::System => unsafe { System.alloc(layout) },
            // SAFETY: as above.
            Peer::Mimalloc => unsafe { MiMalloc.alloc(layout) },
            // SAFETY: as above.
            Peer::Jemalloc => unsafe { Jemalloc.alloc(layout) },
        }
    }

    /// # Safety
    /// `ptr` came from `self.alloc(layout)` and is freed once.
    #[inline(always)]
    pub unsafe fn dealloc(self, ptr: *mut u8, layout: Layout) {
        match self {
            // SAFETY: the caller's promise: this peer allocated `ptr` with `layout`.
            Peer::System => unsafe { System.dealloc(ptr, layout) },
            // SAFETY: as above.
            Peer::Mimalloc => unsafe { MiMalloc.dealloc(ptr, layout) },
            // SAFETY: as above.
            Peer::Jemalloc => unsafe { Jemalloc.dealloc(ptr, layout) },
        }
    }
}

/// `Box<[u8; N]>` allocated by a chosen peer: what a program without umrf sends between threads.
pub struct PeerBox {
    ptr: NonNull<u8>,
    layout: Layout,
    peer: Peer,
}

// SAFETY: the box owns its allocation alone, like `Box`; every peer allocator frees from any thread.
unsafe impl Send for PeerBox {}

impl PeerBox {
    #[inline(always)]
    pub fn new(peer: Peer, bytes: usize) -> Self {
        let layout = Layout::from_size_align(bytes, 8).unwrap();
        let ptr = NonNull::new(peer.alloc(layout)).expect("peer allocation failed");
        PeerBox { ptr, layout, peer }
    }

    /// What `Box::new([0u8; N])` does with this peer: allocate, then zero-initialise (a
    /// `Box<[u8; N]>` cannot exist uninitialised).
    #[inline(always)]
    pub fn new_zeroed(peer: Peer, bytes: usize) -> Self {
        let mut boxed = PeerBox::new(peer, bytes);
        boxed.bytes_mut().fill(0);
        boxed
    }

    #[inline(always)]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the allocation is `layout.size()` bytes, owned by this box.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }

    #[inline(always)]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for PeerBox {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: allocated by this peer with this layout, freed once.
        unsafe { self.peer.dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// The physical limit of a same-thread free list: a `Vec` of pre-touched blocks, pop and push.
pub struct VecFreeList {
    blocks: Vec<*mut u8>,
    _memory: Vec<u8>,
}

impl VecFreeList {
    pub fn new(block_size: usize, blocks: usize) -> Self {
        let mut memory = vec![1u8; block_size * blocks];
        let base = memory.as_mut_ptr();
        let blocks = (0..blocks)
            .map(|i| base.wrapping_add(i * block_size))
            .collect();
        VecFreeList {
            blocks,
            _memory: memory,
        }
    }

    #[inline(always)]
    pub fn pop(&mut self) -> *mut u8 {
        self.blocks.pop().expect("free list empty")
    }

    #[inline(always)]
    pub fn push(&mut self, block: *mut u8) {
        self.blocks.push(block);
    }
}

/// Bytes per message in the hand-off benchmarks.
pub const HANDOFF_BYTES: usize = 4096;
/// Mailbox capacity in the hand-off benchmarks.
pub const QUEUE: usize = 256;

/// Producer/consumer over umrf: capability in the mailbox, remote free home. The pool is
/// `builder` with the hand-off geometry (so callers can add options, such as logging). With
/// `zeroed`, the producer clears each block before writing (`alloc_zeroed`), as a zeroed
/// `Box<[u8; 4096]>` is cleared.
pub fn handoff_umrf(builder: PoolBuilder<CpuLocal>, zeroed: bool, messages: u64) -> Duration {
    let pool = builder
        .block_size(HANDOFF_BYTES)
        .blocks_per_slot(4 * QUEUE)
        .slots(2)
        .build()
        .unwrap();
    let (tx, rx) = mailbox::<Capability<u8, CpuLocal>>(QUEUE);
    let consumer_pool = pool.clone();
    let consumer = std::thread::spawn(move || {
        pin_to(1);
        let lease = consumer_pool.attach_slot(1).unwrap();
        let mut sum = 0u64;
        for cap in rx.iter() {
            let buf = cap.accept(&lease).unwrap();
            sum += u64::from_ne_bytes(buf[..8].try_into().unwrap());
        }
        sum
    });
    pin_to(0);
    let lease = pool.attach_slot(0).unwrap();
    let start = Instant::now();
    for i in 0..messages {
        let mut buf = if zeroed {
            lease.alloc_zeroed::<u8>(HANDOFF_BYTES).unwrap()
        } else {
            lease.alloc::<u8>(HANDOFF_BYTES).unwrap()
        };
        buf[..8].copy_from_slice(&i.to_ne_bytes());
        tx.send(buf.into_capability()).unwrap();
    }
    drop(tx);
    black_box(consumer.join().unwrap());
    start.elapsed()
}

/// A lease on a one-slot pool of one block of `bytes` (the pool lives as long as the lease).
pub fn one_block_lease(bytes: usize) -> umrf::LocalPool<umrf::residency::CpuLocal> {
    umrf::Pool::<umrf::residency::CpuLocal>::builder()
        .block_size(bytes)
        .blocks_per_slot(1)
        .slots(1)
        .build()
        .and_then(|pool| pool.attach())
        .expect("a one-block pool")
}
