//! Drives the compile-fail suite in `ui-tests/`: each file there is one broken promise that
//! must not compile, with the compiler's expected message beside it; `ui-tests/pass/` holds the
//! happy paths, which must compile and run.
//!
//! Regenerate the expected messages on the pinned toolchain with `TRYBUILD=overwrite cargo test
//! --test compile_fail`, then read every changed `.stderr`.

#[test]
#[cfg_attr(miri, ignore = "trybuild runs the compiler")]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui-tests/*.rs");
    cases.pass("ui-tests/pass/*.rs");
}
