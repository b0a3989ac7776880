//! Error paths of the backings, through the fault-injection seam (`umrf::backing::fault`): each
//! operating-system call made to fail on purpose, the error or the reported fallback checked,
//! and the ledger checked for leaks (every region made before the failure is returned).

use umrf::backing::fault::{self, FaultPlan, OsCall};
use umrf::backing::{HugePageMode, Mechanism, NodePolicy};
use umrf::residency::{CpuLocal, GpuPinned, Hugepage, Node0, Residency};
use umrf::{Error, Pool, PoolBuilder};

/// Builds with `plan` installed, checks that every region made was returned when the build
/// failed, and returns the outcome.
fn build_under<R: Residency>(plan: FaultPlan, builder: PoolBuilder<R>) -> Result<Pool<R>, Error> {
    let before = fault::ledger();
    let result = {
        let _guard = plan.install();
        builder.build()
    };
    if result.is_err() {
        assert_eq!(
            fault::ledger().live_mappings(),
            before.live_mappings(),
            "a failed build leaked regions"
        );
    }
    result
}

fn small<R: Residency>(slots: usize) -> PoolBuilder<R> {
    Pool::<R>::builder()
        .block_size(4096)
        .blocks_per_slot(8)
        .slots(slots)
}

#[test]
fn a_refused_reservation_is_a_backing_error_naming_mmap() {
    for slot in 0..3 {
        let err = build_under(
            FaultPlan::new().fail_nth(OsCall::Mmap, slot, libc::ENOMEM),
            small::<CpuLocal>(3),
        )
        .unwrap_err();
        match &err {
            Error::Backing {
                operation, source, ..
            } => {
                assert!(operation.starts_with("mmap"), "{operation}");
                assert_eq!(source.raw_os_error(), Some(libc::ENOMEM));
            }
            other => panic!("expected Backing, got {other:?}"),
        }
        assert!(err.to_string().contains("lower blocks_per_slot"), "{err}");
    }
}

#[test]
fn a_refused_commit_is_a_backing_error_naming_mprotect() {
    let err = build_under(
        FaultPlan::new().fail_nth(OsCall::Mprotect, 1, libc::ENOMEM),
        small::<CpuLocal>(2),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Backing { operation, .. } if operation.starts_with("mprotect")),
        "{err:?}"
    );
}

#[test]
fn cpu_local_survives_a_forbidden_mbind_and_reports_it() {
    let pool = build_under(
        FaultPlan::new().fail(OsCall::Mbind, libc::EPERM),
        small::<CpuLocal>(2),
    )
    .unwrap();
    for info in pool.backing() {
        assert_eq!(info.policy, NodePolicy::Default);
        assert!(info.reason.contains("refused"), "{info}");
    }
}

#[test]
fn numa_binding_failure_is_an_error_on_every_slot_position() {
    for slot in 0..3 {
        let err = build_under(
            FaultPlan::new().fail_nth(OsCall::Mbind, slot, libc::ENOMEM),
            small::<Node0>(3),
        )
        .unwrap_err();
        assert!(
            matches!(&err, Error::Backing { operation, .. } if operation.starts_with("mbind(MPOL_BIND)")),
            "{err:?}"
        );
    }
}

#[test]
fn a_forbidden_bind_on_a_single_node_machine_is_accepted_and_said() {
    let topo = umrf::topology::Topology::detect().unwrap();
    let result = build_under(
        FaultPlan::new().fail(OsCall::Mbind, libc::EPERM),
        small::<Node0>(1),
    );
    if topo.nodes().len() == 1 {
        let pool = result.unwrap();
        let info = &pool.backing()[0];
        assert!(info.reason.contains("only node"), "{info}");
        if info.verified {
            assert_eq!(info.nodes, [0]);
        }
    } else {
        assert!(matches!(result, Err(Error::Backing { .. })));
    }
}

#[test]
fn populate_failure_is_an_error_and_an_old_kernel_falls_back_to_touching() {
    let err = build_under(
        FaultPlan::new().fail_nth(OsCall::Populate, 1, libc::ENOMEM),
        small::<CpuLocal>(2),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Backing { operation, .. } if operation.contains("MADV_POPULATE_WRITE")),
        "{err:?}"
    );
    // EINVAL is what a kernel before 5.14 answers: the pages are touched one by one instead.
    let pool = build_under(
        FaultPlan::new().fail(OsCall::Populate, libc::EINVAL),
        small::<CpuLocal>(1),
    )
    .unwrap();
    let info = &pool.backing()[0];
    assert!(
        info.prefaulted && info.reason.contains("touching"),
        "{info}"
    );
    if info.verified {
        assert!(!info.nodes.is_empty(), "touched pages are present: {info}");
    }
}

#[test]
fn blocked_move_pages_leaves_placement_unverified_not_failed() {
    let pool = build_under(
        FaultPlan::new().fail(OsCall::MovePages, libc::EPERM),
        small::<Node0>(1),
    )
    .unwrap();
    let info = &pool.backing()[0];
    assert!(!info.verified && info.nodes.is_empty(), "{info}");
    assert!(info.reason.contains("move_pages unavailable"), "{info}");
}

#[test]
fn blocked_get_mempolicy_leaves_untouched_pages_unverified() {
    let pool = build_under(
        FaultPlan::new().fail(OsCall::GetMempolicy, libc::EPERM),
        small::<Node0>(1).prefault(false),
    )
    .unwrap();
    let info = &pool.backing()[0];
    assert!(!info.verified, "{info}");
    assert!(info.reason.contains("get_mempolicy failed"), "{info}");
}

#[test]
fn a_failed_thp_advice_falls_back_in_auto_mode_and_fails_in_transparent_mode() {
    let builder = || {
        Pool::<Hugepage>::builder()
            .block_size(1 << 20)
            .blocks_per_slot(2)
            .slots(1)
    };
    let pool = build_under(
        FaultPlan::new()
            .fail(OsCall::MmapHugeTlb, libc::ENOMEM)
            .fail(OsCall::Madvise, libc::EINVAL),
        builder(),
    )
    .unwrap();
    let info = &pool.backing()[0];
    assert_eq!(info.mechanism, Mechanism::AnonymousMmap, "{info}");
    assert!(
        info.reason.contains("madvise(MADV_HUGEPAGE) failed"),
        "{info}"
    );

    let err = build_under(
        FaultPlan::new().fail(OsCall::Madvise, libc::EINVAL),
        builder().huge_pages(HugePageMode::Transparent),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::HugePagesUnavailable { reason } if reason.contains("madvise")),
        "{err:?}"
    );
}

#[test]
fn a_refused_mlock_names_rlimit_memlock_and_leaks_nothing() {
    // With `cuda` and no driver, the first slot's registration fails before the second mlock.
    let slots = if cfg!(feature = "cuda") { 1 } else { 2 };
    for slot in 0..slots {
        let err = build_under(
            FaultPlan::new().fail_nth(OsCall::Mlock, slot, libc::ENOMEM),
            small::<GpuPinned>(2),
        )
        .unwrap_err();
        match &err {
            Error::MemlockLimit {
                residency,
                bytes,
                source,
                ..
            } => {
                assert_eq!(*residency, "GpuPinned");
                assert!(*bytes >= 8 * 4096);
                assert_eq!(source.raw_os_error(), Some(libc::ENOMEM));
            }
            other => panic!("expected MemlockLimit, got {other:?}"),
        }
        let message = err.to_string();
        assert!(
            message.contains("RLIMIT_MEMLOCK") && message.contains("ulimit -l"),
            "{message}"
        );
    }
}

#[test]
fn the_ledger_counts_calls_and_balances_after_a_pool_is_dropped() {
    let before = fault::ledger();
    let mbinds = fault::calls(OsCall::Mbind);
    let pool = small::<Node0>(2).build().unwrap();
    assert_eq!(fault::calls(OsCall::Mbind), mbinds + 2);
    assert_eq!(fault::ledger().live_mappings(), before.live_mappings() + 2);
    drop(pool);
    assert_eq!(fault::ledger().live_mappings(), before.live_mappings());
}
