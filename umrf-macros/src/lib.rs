//! Derive macros for `umrf`. Use them through the re-exports `umrf::Message` and `umrf::Residency`.
