//! Facts about the running process that only the OS knows: the CPU a thread
//! runs on and the base page size. All `unsafe` of the topology module is
//! here.

/// The CPU the calling thread is running on, from `sched_getcpu(3)`; `None`
/// if the call fails (`ENOSYS` on kernels or sandboxes without it).
pub(crate) fn current_cpu() -> Option<u32> {
    // SAFETY: `sched_getcpu` takes no arguments, touches no caller memory and
    // only reads the calling thread's state; it cannot cause UB.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}

/// The base page size from `sysconf(_SC_PAGESIZE)`; `None` if it fails.
pub(crate) fn page_size() -> Option<u64> {
    // SAFETY: `sysconf` with a valid name constant only returns a value; it
    // has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0)
}

/// The number of online CPUs from `sysconf(_SC_NPROCESSORS_ONLN)`.
pub(crate) fn online_cpu_count() -> Option<u32> {
    // SAFETY: as in `page_size`: a valid name constant, no preconditions.
    let count = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(count).ok().filter(|&c| c > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn live_facts() {
        let cpu = super::current_cpu().expect("sched_getcpu works on Linux");
        let count = super::online_cpu_count().expect("sysconf works");
        assert!(cpu < 1 << 20 && count >= 1);
        let page = super::page_size().expect("sysconf works");
        assert!(page.is_power_of_two() && page >= 4096);
    }
}
