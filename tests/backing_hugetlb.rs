//! Explicit huge pages: as root, reserve 2 MiB pages through `/proc/sys/vm/nr_hugepages`
//! (restored afterwards, even if the test fails), and check that a `Hugepage` pool takes them,
//! verified in `/proc/self/smaps`; that a refused `MAP_HUGETLB` falls back to transparent huge
//! pages in `Auto` mode and is an error in `Explicit` mode. Where pages cannot be reserved
//! (not root, read-only `/proc/sys`), the test prints SKIPPED and checks the unreserved case.
//!
//! One test function: the reservation is global to the machine.

use umrf::backing::fault::{FaultPlan, OsCall};
use umrf::backing::{HugePageMode, Mechanism};
use umrf::residency::Hugepage;
use umrf::{Error, Pool};

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
const FREE_2M: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages";

fn read_number(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Puts `nr_hugepages` back when dropped.
struct Restore(u64);

impl Drop for Restore {
    fn drop(&mut self) {
        if std::fs::write(NR_HUGEPAGES, self.0.to_string()).is_err() {
            eprintln!("could not restore {NR_HUGEPAGES} to {}", self.0);
        }
    }
}

/// Adds `extra` free 2 MiB pages to the pool; the guard restores the old count.
fn reserve(extra: u64) -> Option<Restore> {
    let old = read_number(NR_HUGEPAGES)?;
    let free_before = read_number(FREE_2M)?;
    std::fs::write(NR_HUGEPAGES, (old + extra).to_string()).ok()?;
    let guard = Restore(old);
    // The kernel may give fewer pages than asked when memory is fragmented.
    (read_number(FREE_2M)? >= free_before + extra).then_some(guard)
}

fn builder() -> umrf::PoolBuilder<Hugepage> {
    // 8 MiB: four 2 MiB pages.
    Pool::<Hugepage>::builder()
        .block_size(1 << 20)
        .blocks_per_slot(8)
        .slots(1)
}

#[test]
fn explicit_huge_pages_when_reserved_else_transparent() {
    let Some(_restore) = reserve(8) else {
        eprintln!(
            "SKIPPED: could not reserve explicit huge pages through {NR_HUGEPAGES} (needs root); checking the unreserved case only"
        );
        if read_number(FREE_2M).unwrap_or(0) == 0 {
            let pool = builder().build().unwrap();
            assert_ne!(pool.backing()[0].mechanism, Mechanism::ExplicitHugePages);
        }
        return;
    };

    let pool = builder().build().unwrap();
    let info = &pool.backing()[0];
    assert_eq!(info.mechanism, Mechanism::ExplicitHugePages, "{info}");
    assert_eq!((info.page_size, info.bytes), (2 << 20, 8 << 20));
    assert!(info.verified, "{info}");
    assert_eq!(
        info.huge_page_bytes, info.bytes,
        "smaps counts every page: {info}"
    );
    let lease = pool.attach().unwrap();
    let mut buf = lease.alloc_zeroed::<u64>(1 << 17).unwrap();
    buf[0] = 7;
    assert_eq!(buf.as_ptr() as usize % (2 << 20), 0);
    drop((buf, lease, pool));

    // Explicit mode takes them too.
    let pool = builder()
        .huge_pages(HugePageMode::Explicit)
        .build()
        .unwrap();
    assert_eq!(pool.backing()[0].mechanism, Mechanism::ExplicitHugePages);
    drop(pool);

    // A refused MAP_HUGETLB: Auto falls back to transparent huge pages and says why ...
    {
        let _plan = FaultPlan::new()
            .fail(OsCall::MmapHugeTlb, libc::ENOMEM)
            .install();
        let pool = builder().build().unwrap();
        let info = &pool.backing()[0];
        assert_eq!(info.mechanism, Mechanism::TransparentHugePages, "{info}");
        assert!(info.reason.contains("refused by mmap"), "{info}");
        // ... and Explicit fails with the remedy.
        let err = builder()
            .huge_pages(HugePageMode::Explicit)
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::HugePagesUnavailable { .. }), "{err:?}");
    }

    // More than the pool holds: Auto falls back, Explicit fails.
    let huge = || {
        Pool::<Hugepage>::builder()
            .block_size(1 << 20)
            .blocks_per_slot(64)
            .slots(1)
    };
    let pool = huge().build().unwrap();
    assert_eq!(pool.backing()[0].mechanism, Mechanism::TransparentHugePages);
    drop(pool);
    let err = huge()
        .huge_pages(HugePageMode::Explicit)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("nr_hugepages"), "{err}");
}
