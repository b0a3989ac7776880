//! `include/umrf.h` is what cbindgen generates from the crate now: this test fails when the
//! checked-in header is stale. `UMRF_BLESS=1 cargo test -p umrf-c --test header` rewrites it.

use std::path::Path;

#[test]
fn checked_in_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen parses umrf-c")
        .write(&mut generated);
    let path = crate_dir.join("include/umrf.h");
    if std::env::var_os("UMRF_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale: regenerate it with `UMRF_BLESS=1 cargo test -p umrf-c --test header` and \
         commit it",
        path.display()
    );
}
