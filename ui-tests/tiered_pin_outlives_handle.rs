// I4: a pin guard borrows its page's handle, so the page cannot be freed while it is pinned;
// the guard's view of the page in RAM never outlives the pin.
use umrf::residency::CpuLocal;
use umrf::tiered::TieredStore;

fn main() {
    let store = TieredStore::<CpuLocal>::builder().page_size(64).ram_budget(64).build().unwrap();
    let page = store.alloc::<u8>().unwrap();
    let pinned = store.pin(&page).unwrap();
    store.free(page).unwrap();
    let _ = pinned[0];
}
