//! Shared by the tests of umrf-c, umrf-preload and umrf-cli (included with `#[path]`):
//! `cargo test` builds a package's rlib for its tests, never its C libraries, so a test that
//! loads `libumrf_c.so` or `libumrf_preload.so` builds them first, once per test binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cargo build -p package --lib` in this test's profile and returns the profile's
/// output folder (`target/<profile>`, the parent of this test binary's `deps/`).
pub fn build_c_libraries(package: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "-p", package, "--lib"]);
    if dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cargo build -p {package} failed");
    dir
}
