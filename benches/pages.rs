//! Page size and placement, measured through pools (criterion, one run, ratios):
//!
//! - `pages/random_read_1g/<case>`: random 8-byte reads over a 1 GiB buffer of one pool slot
//!   (independent loads: the core overlaps their cache and TLB misses), for `cpu_local`
//!   (4 KiB pages), `hugepage_thp` (transparent huge pages) and, where explicit huge pages
//!   could be reserved, `hugepage_explicit`. Throughput is in reads.
//! - `pages/random_chase_1g/<case>`: the same buffers, but each read's address depends on the
//!   value read before (a pointer chase): latency per read, page walk included.
//! - `pages/build_1g/<case>`: building (and dropping) a pool of one 1 GiB slot, every page
//!   faulted in, against a plain `mmap(MAP_POPULATE)` + `munmap` of 1 GiB
//!   (`mmap_populate`), and for huge pages against the same steps without a pool
//!   (`mmap_thp_populate`: aligned `mmap`, `MADV_HUGEPAGE`, `MADV_POPULATE_WRITE`).
//!
//! `cargo bench --bench pages`. To include explicit huge pages, run as root with
//! `UMRF_BENCH_HUGETLB=1`: the bench adds 514 pages of 2 MiB to `/proc/sys/vm/nr_hugepages` and
//! restores the old value when it ends. Each pool's backing report is printed to stderr, so the
//! pages really obtained are on record next to the numbers.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::access::{
    CHASES, GIB, Pattern, READS, indexed_gib, one_gib, random_chase, random_reads,
};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use umrf::PoolBuilder;
use umrf::backing::HugePageMode;
use umrf::residency::{CpuLocal, Hugepage, Residency};

const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// Both access patterns over one 1 GiB buffer of a pool built by `builder`.
fn bench_access<R: Residency>(c: &mut Criterion, case: &str, builder: PoolBuilder<R>) {
    let pool = match builder.build() {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("{case}: skipped: {e}");
            return;
        }
    };
    eprintln!("{case}: {}", pool.backing()[0]);
    let lease = pool.attach_slot(0).unwrap();
    let buf = indexed_gib(&lease);
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    let patterns: [(&str, u64, Pattern); 2] = [
        ("pages/random_read_1g", READS, random_reads),
        ("pages/random_chase_1g", CHASES, random_chase),
    ];
    for (group_name, reads, pattern) in patterns {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(reads));
        group.sample_size(30);
        group.bench_function(case, |b| b.iter(|| black_box(pattern(&buf, &mut seed))));
        group.finish();
    }
}

fn bench_build<R: Residency>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    case: &str,
    builder: impl Fn() -> PoolBuilder<R>,
) {
    match builder().build() {
        Ok(pool) => eprintln!("{case}: {}", pool.backing()[0]),
        Err(e) => {
            eprintln!("{case}: skipped: {e}");
            return;
        }
    }
    group.bench_function(case, |b| {
        b.iter(|| drop(black_box(builder().build().unwrap())))
    });
}

/// `mmap(MAP_POPULATE)` and `munmap` of 1 GiB: the floor a pool build is compared with.
fn plain_mmap_populate() {
    // SAFETY: a fresh private anonymous mapping at an address of the kernel's choosing.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            GIB,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
            -1,
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED, "{}", std::io::Error::last_os_error());
    black_box(ptr);
    // SAFETY: the mapping made above, unused from here.
    assert_eq!(unsafe { libc::munmap(ptr, GIB) }, 0);
}

/// The same with transparent huge pages: an aligned mapping, `MADV_HUGEPAGE`, then
/// `MADV_POPULATE_WRITE` (what a `Hugepage` pool does, without the pool).
fn plain_mmap_thp() {
    let huge = 2 << 20;
    // SAFETY: a fresh private anonymous mapping at an address of the kernel's choosing.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            GIB + huge,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(ptr, libc::MAP_FAILED, "{}", std::io::Error::last_os_error());
    let aligned = (ptr as usize).next_multiple_of(huge) as *mut libc::c_void;
    // SAFETY: `aligned..+GIB` lies inside the mapping made above.
    let rc = unsafe { libc::madvise(aligned, GIB, libc::MADV_HUGEPAGE) };
    assert_eq!(rc, 0);
    // SAFETY: as above.
    let rc = unsafe { libc::madvise(aligned, GIB, libc::MADV_POPULATE_WRITE) };
    assert_eq!(rc, 0);
    black_box(aligned);
    // SAFETY: the mapping made above, unused from here.
    assert_eq!(unsafe { libc::munmap(ptr, GIB + huge) }, 0);
}

/// Explicit huge pages reserved for the bench, returned on drop.
struct Reserved(Option<u64>);

impl Reserved {
    fn new() -> Reserved {
        if std::env::var_os("UMRF_BENCH_HUGETLB").is_none() {
            return Reserved(None);
        }
        let old = std::fs::read_to_string(NR_HUGEPAGES)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok());
        match old {
            Some(old) if std::fs::write(NR_HUGEPAGES, (old + 514).to_string()).is_ok() => {
                Reserved(Some(old))
            }
            _ => {
                eprintln!("UMRF_BENCH_HUGETLB: cannot write {NR_HUGEPAGES} (needs root)");
                Reserved(None)
            }
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if let Some(old) = self.0 {
            let _ = std::fs::write(NR_HUGEPAGES, old.to_string());
        }
    }
}

fn pages(c: &mut Criterion) {
    umrf::cores::pin_current_thread(0).expect("CPU 0 is online");
    let reserved = Reserved::new();

    bench_access(c, "cpu_local", one_gib::<CpuLocal>());
    bench_access(
        c,
        "hugepage_thp",
        one_gib::<Hugepage>().huge_pages(HugePageMode::Transparent),
    );
    if reserved.0.is_some() {
        bench_access(
            c,
            "hugepage_explicit",
            one_gib::<Hugepage>().huge_pages(HugePageMode::Explicit),
        );
    }

    let mut group = c.benchmark_group("pages/build_1g");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("mmap_populate", |b| b.iter(plain_mmap_populate));
    group.bench_function("mmap_thp_populate", |b| b.iter(plain_mmap_thp));
    bench_build(&mut group, "pool_cpu_local", one_gib::<CpuLocal>);
    bench_build(&mut group, "pool_hugepage_thp", || {
        one_gib::<Hugepage>().huge_pages(HugePageMode::Transparent)
    });
    if reserved.0.is_some() {
        bench_build(&mut group, "pool_hugepage_explicit", || {
            one_gib::<Hugepage>().huge_pages(HugePageMode::Explicit)
        });
    }
    group.finish();
    drop(reserved);
}

criterion_group!(benches, pages);
criterion_main!(benches);
