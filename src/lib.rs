//! umrf: typed memory residency and move-only ownership over a per-core pool allocator.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod topology;
