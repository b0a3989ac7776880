//! The C API from real C and C++ programs: `tests/c/api_test.c` (linked against
//! `libumrf_c.so`) and `tests/c/api_test.cpp` (linked against `libumrf_c.a`), compiled with the
//! system's `cc` and `c++`. Each exercises every function of `include/umrf.h` with good and bad
//! input and exits non-zero on a failed check. Without a compiler the test prints SKIPPED.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/cdylib.rs"]
mod cdylib;

/// `target/<profile>`, with `libumrf_c.so` and `libumrf_c.a` up to date.
fn artifacts() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| cdylib::build_c_libraries("umrf-c"))
        .clone()
}

fn compiler(name: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!(
            "SKIPPED: no `{name}` compiler (Debian: apt-get install gcc g++); C API test not run"
        );
    }
    found
}

fn build_and_run(compiler: &str, source: &str, link: &[String]) -> String {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{source}.{}", std::process::id()));
    let output = Command::new(compiler)
        .arg("-Wall")
        .arg("-Wextra")
        .arg("-Werror")
        .arg("-O1")
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests/c").join(source))
        .arg("-o")
        .arg(&exe)
        .args(link)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{compiler} {source} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let _ = std::fs::remove_file(&exe);
    assert!(
        run.status.success(),
        "{source} failed:\n{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    stdout
}

#[test]
fn c_program_uses_every_function_through_the_shared_library() {
    if !compiler("cc") {
        return;
    }
    let dir = artifacts();
    assert!(
        dir.join("libumrf_c.so").is_file(),
        "cargo builds libumrf_c.so in {}",
        dir.display()
    );
    let link = [
        format!("-L{}", dir.display()),
        "-lumrf_c".to_owned(),
        format!("-Wl,-rpath,{}", dir.display()),
        "-pthread".to_owned(),
    ];
    let out = build_and_run("cc", "api_test.c", &link);
    assert!(out.contains("ok: a double free is detected"), "{out}");
}

#[test]
fn cpp_program_uses_the_static_library() {
    if !compiler("c++") {
        return;
    }
    let lib = artifacts().join("libumrf_c.a");
    assert!(lib.is_file(), "cargo builds {}", lib.display());
    let link = [
        lib.display().to_string(),
        "-pthread".to_owned(),
        "-ldl".to_owned(),
        "-lm".to_owned(),
    ];
    build_and_run("c++", "api_test.cpp", &link);
}
