//! The one module that makes raw memory and scheduling system calls (STYLE rule 3).
//!
//! Every `mmap`, `munmap`, `madvise`, `mbind`, `get_mempolicy`, `move_pages`, `mlock` and
//! `sched_setaffinity` of umrf goes through a function here, so there is one place to audit and
//! one place to inject faults: each wrapper first passes its [`OsCall`] to `fault_point`, which
//! consults the calling thread's [`FaultPlan`](super::fault::FaultPlan) under `cfg(test)` or the
//! `fault-injection` feature, and compiles to nothing otherwise.
//!
//! Under Miri and loom, which cannot run these calls, regions come from the global allocator
//! instead (`reserve`/`release`, through `crate::sync::heap`, which loom tracks for leaks and
//! double frees), and the placement calls are not made: the pool logic above this seam is the
//! same, so it is still checked. Pinning a thread is a no-op there.
//!
//! Constants that `libc` does not carry are cited from the kernel's UAPI headers.

use std::io;

/// An operating-system call of the backing seam: the unit of fault injection.
///
/// ```
/// use umrf::backing::fault::OsCall;
/// assert_eq!(OsCall::Mbind.to_string(), "mbind");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[cfg_attr(not(any(test, feature = "fault-injection")), allow(dead_code))]
pub enum OsCall {
    /// `mmap` of a region's address range (a `PROT_NONE` reservation).
    Mmap,
    /// `mprotect` making a region inside its reservation readable and writable.
    Mprotect,
    /// `mmap` with `MAP_HUGETLB` (explicit huge pages).
    MmapHugeTlb,
    /// `madvise(MADV_HUGEPAGE)` (transparent huge pages).
    Madvise,
    /// `madvise(MADV_POPULATE_WRITE)` (faulting the pages in at build).
    Populate,
    /// `mbind` (NUMA memory policy of a region).
    Mbind,
    /// `get_mempolicy(MPOL_F_ADDR)` (reading a region's policy back).
    GetMempolicy,
    /// `move_pages` in query mode (where each page landed).
    MovePages,
    /// `mlock` (page-locking for `GpuPinned`).
    Mlock,
    /// `cuMemHostRegister` (CUDA host registration, feature `cuda`).
    CudaRegister,
    /// `sched_setaffinity` (pinning a worker thread, `umrf::cores`).
    SetAffinity,
    /// `open(O_TMPFILE)` of a tier file of [`umrf::tiered`](crate::tiered).
    SpillOpen,
    /// `pwrite` of a page into a tier file (a spill).
    SpillWrite,
    /// `pread` of a page from a tier file (a miss or a prefetch).
    SpillRead,
    /// `io_uring_setup` of a tiered store's I/O ring (a refusal makes
    /// [`IoBackend::Auto`](crate::tiered::IoBackend::Auto) fall back to threads).
    UringSetup,
    /// `pwrite` of a page demoted from the tmpfs tier into the disk tier.
    Demote,
}

#[cfg_attr(not(any(test, feature = "fault-injection")), allow(dead_code))]
impl OsCall {
    /// Every call, in declaration order (the index of a call in this list is its counter).
    pub(crate) const ALL: [OsCall; 16] = [
        OsCall::Mmap,
        OsCall::Mprotect,
        OsCall::MmapHugeTlb,
        OsCall::Madvise,
        OsCall::Populate,
        OsCall::Mbind,
        OsCall::GetMempolicy,
        OsCall::MovePages,
        OsCall::Mlock,
        OsCall::CudaRegister,
        OsCall::SetAffinity,
        OsCall::SpillOpen,
        OsCall::SpillWrite,
        OsCall::SpillRead,
        OsCall::UringSetup,
        OsCall::Demote,
    ];

    /// The call's position in [`OsCall::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for OsCall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            OsCall::Mmap => "mmap",
            OsCall::Mprotect => "mprotect",
            OsCall::MmapHugeTlb => "mmap(MAP_HUGETLB)",
            OsCall::Madvise => "madvise(MADV_HUGEPAGE)",
            OsCall::Populate => "madvise(MADV_POPULATE_WRITE)",
            OsCall::Mbind => "mbind",
            OsCall::GetMempolicy => "get_mempolicy",
            OsCall::MovePages => "move_pages",
            OsCall::Mlock => "mlock",
            OsCall::CudaRegister => "cuMemHostRegister",
            OsCall::SetAffinity => "sched_setaffinity",
            OsCall::SpillOpen => "open(O_TMPFILE)",
            OsCall::SpillWrite => "pwrite",
            OsCall::SpillRead => "pread",
            OsCall::UringSetup => "io_uring_setup",
            OsCall::Demote => "pwrite(demotion)",
        })
    }
}

/// Asks the fault plan of this thread whether `call` is to fail now.
#[inline]
pub(crate) fn fault_point(call: OsCall) -> io::Result<()> {
    #[cfg(any(test, feature = "fault-injection"))]
    {
        super::fault::check(call)
    }
    #[cfg(not(any(test, feature = "fault-injection")))]
    {
        let _ = call;
        Ok(())
    }
}

/// Records a mapping made (`+1`) or released (`-1`) in this thread's fault ledger.
#[inline]
fn note_mapping(made: bool) {
    #[cfg(any(test, feature = "fault-injection"))]
    super::fault::note_mapping(made);
    #[cfg(not(any(test, feature = "fault-injection")))]
    let _ = made;
}

/// The base page size of this machine (4096 where it cannot be asked).
pub(crate) fn page_size() -> usize {
    #[cfg(not(any(miri, umrf_loom)))]
    {
        // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 {
            return size as usize;
        }
    }
    4096
}

/// The number of online CPUs (at least 1).
pub(crate) fn online_cpus() -> usize {
    #[cfg(not(any(miri, umrf_loom)))]
    {
        // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
        let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        if n > 0 {
            return n as usize;
        }
    }
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(not(any(miri, umrf_loom)))]
pub(crate) use linux::*;

#[cfg(any(miri, umrf_loom))]
pub(crate) use heap::*;

/// The real system calls.
#[cfg(not(any(miri, umrf_loom)))]
mod linux {
    use super::{OsCall, fault_point, note_mapping};
    use core::ptr::NonNull;
    use std::io;

    /// `MPOL_F_ADDR`, a flag of `get_mempolicy(2)`: the policy of the mapping at an address
    /// (include/uapi/linux/mempolicy.h).
    const MPOL_F_ADDR: libc::c_ulong = 1 << 1;

    /// Bits in one word of a kernel node mask.
    const WORD_BITS: usize = libc::c_ulong::BITS as usize;

    /// Reserves `len` bytes of address space: private, anonymous, `PROT_NONE`, no memory
    /// committed. Parts are made usable later with [`make_usable`].
    ///
    /// # Errors
    /// The operating system's error (usually `ENOMEM`), or an injected fault ([`OsCall::Mmap`]).
    pub(crate) fn reserve(len: usize) -> io::Result<NonNull<u8>> {
        fault_point(OsCall::Mmap)?;
        fresh_mapping(len, libc::PROT_NONE, 0)
    }

    /// A new private anonymous mapping of `len` bytes with protection `prot` and the extra
    /// `flags`, at an address of the kernel's choosing, recorded in the fault ledger.
    fn fresh_mapping(len: usize, prot: i32, flags: i32) -> io::Result<NonNull<u8>> {
        // SAFETY: a fresh mapping at an address of the kernel's choosing (addr null, no
        // MAP_FIXED) cannot alias any existing object; the arguments are plain values.
        let ptr = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        note_mapping(true);
        NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))
    }

    /// Maps `len` bytes of fresh, zero-filled, read-write explicit huge pages of `page_size`
    /// bytes (`MAP_HUGETLB`), at an address of the kernel's choosing (aligned to the page
    /// size). Such a mapping never merges with a neighbour, so it needs no guard areas.
    ///
    /// # Errors
    /// `ENOMEM` when the huge-page pool is short, or an injected fault
    /// ([`OsCall::MmapHugeTlb`]).
    pub(crate) fn map_huge(len: usize, page_size: usize) -> io::Result<NonNull<u8>> {
        fault_point(OsCall::MmapHugeTlb)?;
        // The page size is encoded as its log2 in the bits above MAP_HUGE_SHIFT
        // (include/uapi/asm-generic/hugetlb_encode.h).
        let size_bits = (page_size.trailing_zeros() as i32) << libc::MAP_HUGE_SHIFT;
        fresh_mapping(
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_HUGETLB | size_bits,
        )
    }

    /// Makes `addr..addr + len` of a reservation readable and writable (`mprotect(2)`); its
    /// pages are then zero-filled on first touch. Unlike `mmap(MAP_FIXED)`, a failure leaves
    /// the reservation intact.
    ///
    /// # Errors
    /// `ENOMEM` when the kernel cannot commit the memory, or an injected fault
    /// ([`OsCall::Mprotect`]).
    ///
    /// # Safety
    /// `addr..addr + len` lies inside a reservation the caller owns, page aligned, and nothing
    /// relies on its being inaccessible.
    pub(crate) unsafe fn make_usable(addr: NonNull<u8>, len: usize) -> io::Result<()> {
        fault_point(OsCall::Mprotect)?;
        // SAFETY: the caller's promise: an owned, page-aligned part of a reservation; making
        // it accessible changes no object anyone else holds.
        let rc = unsafe {
            libc::mprotect(
                addr.as_ptr().cast(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Returns a mapping made by [`reserve`] or [`map_huge`] to the operating system.
    ///
    /// # Safety
    /// 1. `ptr` and `len` are exactly those of one earlier [`reserve`] or [`map_huge`] call
    ///    that succeeded.
    /// 2. It has not been released yet, and nothing reads or writes it after this call.
    pub(crate) unsafe fn release(ptr: NonNull<u8>, len: usize) {
        // SAFETY: caller's promises 1 and 2: this is a live mapping of `len` bytes, unused from
        // now on.
        let rc = unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
        debug_assert_eq!(
            rc,
            0,
            "munmap of a live mapping failed: {}",
            io::Error::last_os_error()
        );
        note_mapping(false);
    }

    /// Calls `madvise(addr, len, advice)`, with `call` as its fault point.
    ///
    /// # Safety
    /// `addr..addr + len` is a read-write mapping the caller owns (page aligned), whose
    /// contents the caller does not mind being faulted in (the advices used here keep them).
    unsafe fn advise(addr: NonNull<u8>, len: usize, advice: i32, call: OsCall) -> io::Result<()> {
        fault_point(call)?;
        // SAFETY: caller's promise: an owned mapping; MADV_HUGEPAGE and MADV_POPULATE_WRITE
        // never discard or change its contents.
        let rc = unsafe { libc::madvise(addr.as_ptr().cast(), len, advice) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Asks for transparent huge pages on a range (`madvise(MADV_HUGEPAGE)`).
    ///
    /// # Errors
    /// `EINVAL` on kernels without transparent huge pages, or an injected fault
    /// ([`OsCall::Madvise`]).
    ///
    /// # Safety
    /// As for `advise`: an owned, page-aligned, read-write mapping.
    pub(crate) unsafe fn advise_huge(addr: NonNull<u8>, len: usize) -> io::Result<()> {
        // SAFETY: the caller's promise, passed on.
        unsafe { advise(addr, len, libc::MADV_HUGEPAGE, OsCall::Madvise) }
    }

    /// Faults every page of a range in, writable, under the range's memory policy
    /// (`madvise(MADV_POPULATE_WRITE)`, Linux 5.14).
    ///
    /// # Errors
    /// `EINVAL` on older kernels, `ENOMEM`/`EFAULT` when the memory cannot be had (for
    /// example a bound node is full), or an injected fault ([`OsCall::Populate`]).
    ///
    /// # Safety
    /// As for `advise`: an owned, page-aligned, read-write mapping.
    pub(crate) unsafe fn populate(addr: NonNull<u8>, len: usize) -> io::Result<()> {
        // SAFETY: the caller's promise, passed on.
        unsafe { advise(addr, len, libc::MADV_POPULATE_WRITE, OsCall::Populate) }
    }

    /// Sets the NUMA memory policy of a range to `mode` over the single node `node`
    /// (`mbind(2)`), before any page of it is touched.
    ///
    /// # Errors
    /// `EINVAL` for a node the kernel does not have, `ENOSYS` on kernels without NUMA,
    /// `EPERM` in sandboxes that forbid it, or an injected fault ([`OsCall::Mbind`]).
    ///
    /// # Safety
    /// `addr..addr + len` is a mapping the caller owns (page aligned).
    pub(crate) unsafe fn bind(
        addr: NonNull<u8>,
        len: usize,
        mode: i32,
        node: u32,
    ) -> io::Result<()> {
        fault_point(OsCall::Mbind)?;
        let mut mask = vec![0 as libc::c_ulong; node as usize / WORD_BITS + 1];
        mask[node as usize / WORD_BITS] |= 1 << (node as usize % WORD_BITS);
        // The kernel reads `maxnode - 1` bits (mm/mempolicy.c, get_nodes), so one more than
        // the mask holds.
        let maxnode = (mask.len() * WORD_BITS + 1) as libc::c_ulong;
        // SAFETY: the caller's promise: an owned range; `mask` holds `maxnode - 1` bits and
        // lives across the call; flags 0 moves nothing.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_mbind,
                addr.as_ptr(),
                len as libc::c_ulong,
                mode as libc::c_ulong,
                mask.as_ptr(),
                maxnode,
                0 as libc::c_ulong,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The memory policy of the mapping at `addr`: its mode and the nodes of its mask
    /// (`get_mempolicy(2)` with `MPOL_F_ADDR`), for nodes below `nodes_below`.
    ///
    /// # Errors
    /// As [`bind`], or an injected fault ([`OsCall::GetMempolicy`]).
    pub(crate) fn policy_at(addr: NonNull<u8>, nodes_below: u32) -> io::Result<(i32, Vec<u32>)> {
        fault_point(OsCall::GetMempolicy)?;
        let words = (nodes_below as usize).div_ceil(WORD_BITS).max(1);
        let mut mask = vec![0 as libc::c_ulong; words];
        let mut mode: libc::c_int = 0;
        // SAFETY: `mode` and `mask` are live, writable, and `mask` holds `words * WORD_BITS`
        // bits, the `maxnode` passed; MPOL_F_ADDR only reads the policy of the mapping at
        // `addr` (any address is allowed: EFAULT if unmapped).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_get_mempolicy,
                &mut mode as *mut libc::c_int,
                mask.as_mut_ptr(),
                (words * WORD_BITS) as libc::c_ulong,
                addr.as_ptr(),
                MPOL_F_ADDR,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let nodes = (0..words * WORD_BITS)
            .filter(|&bit| mask[bit / WORD_BITS] & (1 << (bit % WORD_BITS)) != 0)
            .map(|bit| bit as u32)
            .collect();
        Ok((mode, nodes))
    }

    /// For each address in `pages`, the node its page is on, or a negative errno (`-ENOENT`:
    /// not faulted in), written to `status` (`move_pages(2)` in query mode: nothing moves).
    ///
    /// # Errors
    /// `ENOSYS`/`EPERM` where the call is unavailable, or an injected fault
    /// ([`OsCall::MovePages`]).
    ///
    /// # Panics
    /// If `status` is shorter than `pages` (a bug in the caller).
    pub(crate) fn page_nodes(
        pages: &[*mut libc::c_void],
        status: &mut [libc::c_int],
    ) -> io::Result<()> {
        assert!(status.len() >= pages.len(), "one status per page");
        fault_point(OsCall::MovePages)?;
        // SAFETY: pid 0 is this process; `pages` and `status` hold `pages.len()` entries and
        // live across the call; a null `nodes` asks only where the pages are. The addresses
        // are only looked up (EFAULT status for unmapped ones), never dereferenced here.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_move_pages,
                0 as libc::c_long,
                pages.len() as libc::c_ulong,
                pages.as_ptr(),
                core::ptr::null::<libc::c_int>(),
                status.as_mut_ptr(),
                0 as libc::c_long,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Locks a range in RAM (`mlock(2)`), faulting its pages in.
    ///
    /// # Errors
    /// `ENOMEM`/`EPERM` when `RLIMIT_MEMLOCK` forbids it, or an injected fault
    /// ([`OsCall::Mlock`]).
    ///
    /// # Safety
    /// `addr..addr + len` is a read-write mapping the caller owns.
    pub(crate) unsafe fn lock(addr: NonNull<u8>, len: usize) -> io::Result<()> {
        fault_point(OsCall::Mlock)?;
        // SAFETY: the caller's promise: an owned mapping; mlock only faults pages in and pins
        // them, it does not change their contents.
        let rc = unsafe { libc::mlock(addr.as_ptr().cast(), len) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The soft `RLIMIT_MEMLOCK` in bytes; `None` for unlimited or unknown.
    pub(crate) fn memlock_limit() -> Option<u64> {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is a live, writable rlimit; RLIMIT_MEMLOCK is a valid resource.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
        (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
    }

    /// Pins the calling thread to CPU `cpu` (`sched_setaffinity(2)`).
    ///
    /// # Errors
    /// `EINVAL` when the CPU is offline, beyond `CPU_SETSIZE`, or outside this process's
    /// allowed set (cgroup cpuset, `taskset`); or an injected fault ([`OsCall::SetAffinity`]).
    pub(crate) fn pin_current_thread(cpu: u32) -> io::Result<()> {
        fault_point(OsCall::SetAffinity)?;
        if cpu as usize >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: a zeroed cpu_set_t is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
        // SAFETY: `cpu` < CPU_SETSIZE (checked above), so CPU_SET writes inside the set.
        unsafe { libc::CPU_SET(cpu as usize, &mut set) };
        // SAFETY: pid 0 is the calling thread; the set is initialised and its size is passed.
        let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Writes one zero byte into every page of `addr..addr + len`, so each is faulted in: the
    /// fallback of [`populate`] on kernels older than 5.14.
    ///
    /// # Safety
    /// `addr..addr + len` is a read-write, zero-filled mapping the caller owns and nothing else
    /// reads or writes yet; `page` is its page size.
    pub(crate) unsafe fn touch_pages(addr: NonNull<u8>, len: usize, page: usize) {
        for offset in (0..len).step_by(page) {
            let byte = addr.as_ptr().wrapping_add(offset);
            // SAFETY: caller's promise: the byte is inside an owned, writable, zero-filled mapping
            // that nothing else uses, so writing the zero it holds changes nothing but faults the
            // page in. Volatile, so the write is not elided.
            unsafe { byte.write_volatile(0) };
        }
    }
}

/// Heap stand-ins under Miri and loom.
#[cfg(any(miri, umrf_loom))]
mod heap {
    use super::{OsCall, fault_point, note_mapping, page_size};
    use core::ptr::NonNull;
    use std::io;

    /// Heap stand-in for a reservation: zeroed, page aligned, read-write.
    ///
    /// # Errors
    /// `InvalidInput` for a zero or oversized length, `OutOfMemory`, or an injected fault.
    pub(crate) fn reserve(len: usize) -> io::Result<NonNull<u8>> {
        fault_point(OsCall::Mmap)?;
        let layout = std::alloc::Layout::from_size_align(len, page_size())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if layout.size() == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let ptr = unsafe { crate::sync::heap::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?;
        note_mapping(true);
        Ok(ptr)
    }

    /// Heap stand-in for releasing a reservation.
    ///
    /// # Safety
    /// As for the `munmap` version: `ptr`/`len` come from one [`reserve`] call, freed once.
    pub(crate) unsafe fn release(ptr: NonNull<u8>, len: usize) {
        let layout = std::alloc::Layout::from_size_align(len, page_size())
            .expect("the layout was valid when the region was reserved");
        // SAFETY: caller's promise: `ptr` came from `alloc_zeroed` with this very layout, once.
        unsafe { crate::sync::heap::dealloc(ptr.as_ptr(), layout) }
        note_mapping(false);
    }

    /// Pinning is not modelled under Miri and loom: a successful no-op (after the fault
    /// point, so injected faults still reach callers).
    ///
    /// # Errors
    /// Only an injected fault ([`OsCall::SetAffinity`]).
    pub(crate) fn pin_current_thread(_cpu: u32) -> io::Result<()> {
        fault_point(OsCall::SetAffinity)
    }
}

#[cfg(all(test, not(any(miri, umrf_loom))))]
mod tests {
    use super::*;

    #[test]
    fn call_indices_follow_the_list() {
        for (i, call) in OsCall::ALL.iter().enumerate() {
            assert_eq!(call.index(), i, "{call}");
        }
    }

    #[test]
    fn a_bound_reservation_reads_its_policy_back_and_its_pages_are_counted() {
        let page = page_size();
        let ptr = reserve(4 * page).unwrap();
        // SAFETY: the reservation is this test's, unused elsewhere.
        unsafe { make_usable(ptr, 4 * page) }.unwrap();
        // SAFETY: as above; nothing touched the pages yet.
        unsafe { bind(ptr, 4 * page, libc::MPOL_BIND, 0) }.unwrap();
        assert_eq!(policy_at(ptr, 1).unwrap(), (libc::MPOL_BIND, vec![0]));
        let pages: Vec<*mut libc::c_void> = (0..4)
            .map(|i| ptr.as_ptr().wrapping_add(i * page).cast())
            .collect();
        let mut status = [0; 4];
        page_nodes(&pages, &mut status).unwrap();
        assert!(status.iter().all(|&s| s < 0), "not faulted in: {status:?}");
        // SAFETY: as above.
        unsafe { populate(ptr, 4 * page) }.unwrap();
        page_nodes(&pages, &mut status).unwrap();
        assert_eq!(status, [0; 4]);
        // SAFETY: the reservation made above, released once, unused afterwards.
        unsafe { release(ptr, 4 * page) };
    }

    #[test]
    fn an_absent_node_is_refused_by_the_kernel() {
        let page = page_size();
        let ptr = reserve(page).unwrap();
        // SAFETY: the reservation is this test's.
        let err = unsafe { bind(ptr, page, libc::MPOL_BIND, 1000) }.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        // SAFETY: the reservation made above, released once.
        unsafe { release(ptr, page) };
    }

    #[test]
    fn pinning_refuses_cpus_past_the_set_size() {
        assert!(pin_current_thread(libc::CPU_SETSIZE as u32).is_err());
        assert!(memlock_limit().is_none_or(|l| l > 0));
    }
}
