//! Device mappings: ownership moves into the mapping, the state says so, forgetting leaks;
//! every coherence mode keeps the data; line maintenance uses what the CPU has.

use umrf::coherence::{
    Bidirectional, Coherence, DeviceMapping, Direction, DmaDirection, FromDevice, Instruction,
    LineMethod, ToDevice,
};
use umrf::residency::CpuLocal;
use umrf::{BlockState, Pool};

fn pool(block_size: usize, blocks: usize, slots: usize) -> Pool<CpuLocal> {
    Pool::<CpuLocal>::builder()
        .block_size(block_size)
        .blocks_per_slot(blocks)
        .slots(slots)
        .build()
        .unwrap()
}

/// Every mode this machine can run: hardware, the detected best, and each instruction alone.
fn modes() -> Vec<Coherence> {
    let mut modes = vec![Coherence::Hardware, Coherence::Software];
    for instruction in [
        Instruction::Clflush,
        Instruction::Clflushopt,
        Instruction::Clwb,
        Instruction::DcCvac,
        Instruction::DcCivac,
        Instruction::FenceOnly,
    ] {
        if let Ok(method) = LineMethod::using(instruction) {
            modes.push(Coherence::SoftwareWith(method));
        }
    }
    modes
}

/// Stands in for a device: writes through the mapping's address, as a DMA engine would.
fn device_fill<R: umrf::Residency, D: Direction>(mapping: &mut DeviceMapping<u8, R, D>, byte: u8) {
    // SAFETY: the mapping owns the block and the CPU side does not touch it meanwhile; the
    // length is the mapping's.
    unsafe { core::ptr::write_bytes(mapping.as_mut_ptr(), byte, mapping.len()) }
}

/// Stands in for a device reading the buffer.
fn device_sum<R: umrf::Residency, D: Direction>(mapping: &DeviceMapping<u8, R, D>) -> u64 {
    // SAFETY: as in `device_fill`, reading.
    let bytes = unsafe { core::slice::from_raw_parts(mapping.as_ptr(), mapping.len()) };
    bytes.iter().map(|&b| u64::from(b)).sum()
}

#[test]
fn every_mode_and_direction_keeps_the_data_and_shows_the_device_writes() {
    let p = pool(8192, 4, 1);
    let lease = p.attach().unwrap();
    for coherence in modes() {
        let buf = lease.alloc_from_slice(&[3u8; 5000]).unwrap();
        let to = buf.map_for_device_with::<ToDevice>(coherence).unwrap();
        assert_eq!(device_sum(&to), 15_000, "{coherence:?}");
        let buf = to.unmap();
        assert!(buf.iter().all(|&b| b == 3));

        let mut from = buf.map_for_device_with::<FromDevice>(coherence).unwrap();
        device_fill(&mut from, 7);
        let buf = from.unmap();
        assert!(buf.iter().all(|&b| b == 7), "{coherence:?}");

        let mut both = buf.map_for_device_with::<Bidirectional>(coherence).unwrap();
        assert_eq!(device_sum(&both), 35_000);
        device_fill(&mut both, 9);
        let buf = both.unmap();
        assert!(buf.iter().all(|&b| b == 9), "{coherence:?}");
    }
    assert_eq!(lease.stats().in_use, 0);
}

#[test]
fn the_mapping_records_the_state_and_unmap_restores_it() {
    let p = pool(4096, 2, 2);
    let lease = p.attach_slot(0).unwrap();
    let buf = lease.alloc_from_slice(&[1u32, 2, 3]).unwrap();
    let addr = buf.as_ptr() as usize;
    let mapping = buf.map_for_device::<FromDevice>().unwrap();
    assert_eq!(p.block_state(0, 0), Some(BlockState::MappedForDevice));
    assert_eq!(
        (mapping.dma_addr(), mapping.len(), mapping.byte_len()),
        (addr, 3, 12)
    );
    assert_eq!(mapping.direction(), DmaDirection::FromDevice);
    assert_eq!(mapping.coherence(), Coherence::default());
    assert_eq!(mapping.home_slot(), 0);
    assert!(!mapping.is_empty());
    let text = format!("{mapping:?}");
    assert!(
        text.contains("FromDevice") && text.contains("dma_addr"),
        "{text}"
    );
    let buf = mapping.unmap();
    assert_eq!(p.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
    drop(buf);
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.in_use, s.local_frees, s.remote_frees), (0, 1, 0));
}

#[test]
fn away_from_home_the_state_follows_and_the_buffer_still_frees_remotely() {
    let p = pool(4096, 2, 2);
    let home = p.attach_slot(0).unwrap();
    let cap = home
        .alloc_from_slice(&[8u8; 100])
        .unwrap()
        .into_capability();
    let q = p.clone();
    std::thread::spawn(move || {
        let there = q.attach_slot(1).unwrap();
        let buf = cap.accept(&there).unwrap();
        let mapping = buf.map_for_device::<Bidirectional>().unwrap();
        assert_eq!(q.block_state(0, 0), Some(BlockState::MappedForDevice));
        let buf = mapping.unmap();
        assert_eq!(q.block_state(0, 0), Some(BlockState::Owned { slot: 1 }));
        assert_eq!(buf[99], 8);
    })
    .join()
    .unwrap();
    assert_eq!(p.block_state(0, 0), Some(BlockState::Free));
    let s = p.slot_stats(0).unwrap();
    assert_eq!((s.in_use, s.remote_frees), (0, 1));
}

#[test]
fn a_buffer_that_outlived_its_lease_maps_and_unmaps() {
    let p = pool(4096, 2, 1);
    let lease = p.attach().unwrap();
    let buf = lease.alloc_from_slice(&[2u8; 10]).unwrap();
    drop(lease);
    let mapping = buf.map_for_device::<ToDevice>().unwrap();
    assert_eq!(p.block_state(0, 0), Some(BlockState::MappedForDevice));
    let buf = mapping.unmap();
    assert_eq!(p.block_state(0, 0), Some(BlockState::Owned { slot: 0 }));
    drop(buf);
    assert_eq!(p.block_state(0, 0), Some(BlockState::Free));
    assert_eq!(p.stats().remote_frees(), 1);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "leaks the pool by design, which Miri's leak check reports"
)]
fn forgetting_a_mapping_leaks_the_block_and_never_returns_it() {
    let p = pool(64, 2, 1);
    let lease = p.attach().unwrap();
    let mapping = lease
        .alloc_from_slice(&[1u8; 64])
        .unwrap()
        .map_for_device::<FromDevice>()
        .unwrap();
    core::mem::forget(mapping);
    assert_eq!(p.block_state(0, 0), Some(BlockState::MappedForDevice));
    assert_eq!(lease.stats().in_use, 1);
    // The block never comes back: every later allocation gets the other one.
    let other = lease.alloc::<u8>(1).unwrap();
    assert!(lease.alloc::<u8>(1).is_err());
    drop(other);
    assert_eq!(lease.stats().in_use, 1);
    assert_eq!(p.block_state(0, 0), Some(BlockState::MappedForDevice));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "leaks the pool by design, which Miri's leak check reports"
)]
fn dropping_a_mapping_without_unmap_leaks_as_well() {
    let p = pool(64, 1, 1);
    let lease = p.attach().unwrap();
    let mapping = lease
        .alloc::<u8>(1)
        .unwrap()
        .map_for_device::<ToDevice>()
        .unwrap();
    drop(mapping);
    assert_eq!(lease.stats().in_use, 1);
    assert_eq!(p.block_state(0, 0), Some(BlockState::MappedForDevice));
    assert!(lease.alloc::<u8>(1).is_err(), "the device may still use it");
}

#[test]
fn detect_reports_what_the_cpu_has() {
    let best = LineMethod::detect();
    assert!(best.line_size().is_power_of_two() && best.line_size() >= 16);
    assert_eq!(Coherence::Software.line_method(), Some(best));
    if cfg!(miri) || !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert_eq!(best.clean_instruction(), Instruction::FenceOnly);
        return;
    }
    if cfg!(target_arch = "aarch64") {
        assert_eq!(best.clean_instruction(), Instruction::DcCvac);
        assert_eq!(best.invalidate_instruction(), Instruction::DcCivac);
        assert!(LineMethod::using(Instruction::Clflush).is_err());
        return;
    }
    // x86-64: compare with what the kernel read from cpuid.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    if flags.is_empty() {
        return; // no /proc/cpuinfo to compare with
    }
    let has = |f: &str| flags.contains(&f);
    let expect_invalidate = if has("clflushopt") {
        Instruction::Clflushopt
    } else {
        Instruction::Clflush
    };
    let expect_clean = if has("clwb") {
        Instruction::Clwb
    } else {
        expect_invalidate
    };
    assert_eq!(best.clean_instruction(), expect_clean);
    assert_eq!(best.invalidate_instruction(), expect_invalidate);
    assert_eq!(LineMethod::using(Instruction::Clwb).is_ok(), has("clwb"));
    assert_eq!(
        LineMethod::using(Instruction::Clflushopt).is_ok(),
        has("clflushopt")
    );
    assert!(LineMethod::using(Instruction::Clflush).is_ok());
    let err = LineMethod::using(Instruction::DcCivac).unwrap_err();
    assert_eq!(err.instruction(), Instruction::DcCivac);
    assert!(err.to_string().contains("aarch64"), "{err}");
    if let Ok(clwb) = LineMethod::using(Instruction::Clwb) {
        // clwb cannot invalidate: it pairs with the best invalidating instruction.
        assert_eq!(clwb.invalidate_instruction(), expect_invalidate);
    }
}

#[test]
fn line_maintenance_of_unaligned_and_tiny_ranges_is_harmless() {
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    let before = data.clone();
    for coherence in modes() {
        let Some(method) = coherence.line_method() else {
            continue;
        };
        for (start, len) in [(0, 0), (1, 1), (63, 2), (5, 4000), (100, 9900)] {
            method.clean(&data[start..start + len]);
            method.clean_invalidate(&data[start..start + len]);
        }
        // An empty slice's pointer may dangle: nothing is touched.
        method.clean(&[]);
        method.clean_invalidate(&[]);
    }
    assert_eq!(data, before, "maintenance never changes memory");
}

#[test]
fn mappings_of_typed_buffers_keep_their_elements() {
    let p = pool(4096, 1, 1);
    let lease = p.attach().unwrap();
    let buf = lease.alloc_from_slice(&[1.5f64, -2.5, 1e300]).unwrap();
    let mapping = buf
        .map_for_device_with::<Bidirectional>(Coherence::Software)
        .unwrap();
    assert_eq!(mapping.byte_len(), 24);
    assert_eq!(&mapping.unmap()[..], &[1.5, -2.5, 1e300]);
}
