// I1: one writer or many readers of a page: `pin_mut` borrows the page's only handle
// mutably, so it cannot be taken while a read pin holds the handle.
use umrf::residency::CpuLocal;
use umrf::tiered::TieredStore;

fn main() {
    let store = TieredStore::<CpuLocal>::builder().page_size(64).ram_budget(64).build().unwrap();
    let mut page = store.alloc::<u8>().unwrap();
    let reader = store.pin(&page).unwrap();
    let mut writer = store.pin_mut(&mut page).unwrap();
    writer[0] = reader[0];
}
