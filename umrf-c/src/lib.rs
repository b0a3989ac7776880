//! # umrf-c — the C API of umrf
//!
//! Per-core pools for C and C++ programs, declared in `include/umrf.h` (generated from this
//! crate by cbindgen; a test fails when the checked-in header is stale). Build with
//! `cargo build --release -p umrf-c` and link `libumrf_c.so` or `libumrf_c.a`
//! (`-lumrf_c -lpthread -ldl -lm` for the static library).
//!
//! ```c
//! #include "umrf.h"
//! void *p = umrf_alloc(256, 0);            /* 256 bytes from core 0's pool */
//! if (p == NULL) fprintf(stderr, "%s\n", umrf_last_error());
//! umrf_free(p);                            /* back home; any thread may free */
//! umrf_reset_pool(0);                      /* or: release all of core 0's blocks at once */
//! ```
//!
//! The same calls from Rust (the functions are plain `extern "C"` items of this crate):
//!
//! ```
//! use umrf_c::*;
//! let p = umrf_alloc(256, 0).cast::<u8>();
//! assert!(!p.is_null());
//! let mut info = UmrfOwnerInfo::default();
//! // SAFETY: `info` is a live, writable UmrfOwnerInfo.
//! assert_eq!(unsafe { umrf_owner_of(p.cast(), &mut info) }, UmrfError::UmrfOk as i32);
//! assert_eq!((info.core, info.block_size, info.holder_core), (0, 256, 0));
//! assert_eq!(umrf_free(p.cast()), UmrfError::UmrfOk as i32);
//! assert_eq!(umrf_free(p.cast()), UmrfError::UmrfErrDoubleFree as i32);
//! assert!(umrf_alloc(0, 0).is_null());
//! assert_eq!(umrf_last_error_code(), UmrfError::UmrfErrZeroSize as i32);
//! assert_eq!(umrf_reset_pool(0), 0);
//! ```
//!
//! ## The contract
//!
//! - **Cores.** `core_id` is `0..cores` (default: one per online CPU; `umrf_init` sets it).
//!   Any thread may allocate on any core and free any block; a core's allocations are
//!   serialised, so a thread per core (pinned or not) never waits.
//! - **Sizes.** Blocks are 64 B to 64 KiB, a power of two per class; `umrf_alloc(size, core)`
//!   takes the smallest class that holds `size`. Blocks are 64-byte aligned. When a core's
//!   class is exhausted the request is served by the class's shared fallback pool, and only
//!   when that is exhausted too does it fail (`UMRF_ERR_EXHAUSTED`).
//! - **Reset.** `umrf_reset_pool(core)` releases every block allocated on `core` and not yet
//!   freed, at once (arena semantics). Every pointer into them is invalid afterwards; freeing
//!   one is reported as `UMRF_ERR_DOUBLE_FREE` (unless the block has been handed out again,
//!   which no allocator can tell apart from a live pointer).
//! - **Bad input** never corrupts the pools: a null or zero-sized request, a core out of
//!   range, a foreign or interior pointer and a double free each return an error code, set
//!   the thread's `umrf_last_error()` text, and are counted in `umrf_stats_json`.
//! - **No unwinding** crosses the boundary: a panic inside umrf is caught and reported as
//!   `UMRF_ERR_INTERNAL`.

mod error;
pub mod pools;

use std::ffi::{c_char, c_int, c_void};

pub use error::UmrfError;
use error::{fail, guard, succeed};
use pools::{BAD, BadInput, Config, Pools};

/// The largest request `umrf_alloc` serves, in bytes.
pub const UMRF_MAX_ALLOC: usize = 64 * 1024;
/// The alignment of every block `umrf_alloc` returns (and its smallest block), in bytes.
pub const UMRF_BLOCK_ALIGN: usize = 64;

/// `umrf_owner_info.state`: in its pool, not allocated.
pub const UMRF_STATE_FREE: i32 = 0;
/// `umrf_owner_info.state`: owned by a Rust buffer on the thread leasing its slot.
pub const UMRF_STATE_OWNED: i32 = 1;
/// `umrf_owner_info.state`: in flight; a block handed out by `umrf_alloc` is in this state,
/// held by its core's table.
pub const UMRF_STATE_IN_FLIGHT: i32 = 2;
/// `umrf_owner_info.state`: shared read-only by a group of Rust readers.
pub const UMRF_STATE_FROZEN: i32 = 3;
/// `umrf_owner_info.state`: handed to a device.
pub const UMRF_STATE_MAPPED_FOR_DEVICE: i32 = 4;
/// `umrf_owner_info.state`: a state this version of the header does not know.
pub const UMRF_STATE_UNKNOWN: i32 = -1;

/// How the C pools are sized. Pass to `umrf_init` before any other call; without it the
/// defaults apply (one core per online CPU, 256 KiB per class per core, as much again in the
/// fallback pools). Fields left at zero take their default.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct UmrfConfig {
    /// Cores, that is valid `core_id`s `0..cores`.
    pub cores: usize,
    /// Bytes of each size class on each core (at least 65536: one block of the largest class).
    pub bytes_per_class: usize,
    /// Bytes of each size class per core in the shared fallback pools: a core whose class is
    /// exhausted borrows one free fallback slot of this size for the request.
    pub fallback_bytes_per_class: usize,
}

/// Where a pointer lies: filled by `umrf_owner_of`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct UmrfOwnerInfo {
    /// The id of the pool holding the address (unique in the process).
    pub pool_id: u64,
    /// The block's home core (its slot in the pool).
    pub core: i32,
    /// The block's state, one of the `UMRF_STATE_*` values.
    pub state: i32,
    /// The block's index in its slot.
    pub block: usize,
    /// Bytes per block.
    pub block_size: usize,
    /// The address's offset from the block's start.
    pub offset: usize,
    /// The core whose table holds the block (allocated by `umrf_alloc` and not freed), or -1.
    pub holder_core: i32,
}

/// Sets the size of the C pools. Call it once, before any other function; later calls with
/// the same configuration succeed, with another fail. `NULL` means the defaults.
///
/// Returns `UMRF_OK`, `UMRF_ERR_INIT` (the message says why), or
/// `UMRF_ERR_ALREADY_INITIALIZED`.
///
/// # Safety
/// `config` is null or points to a readable `umrf_config`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn umrf_init(config: *const UmrfConfig) -> c_int {
    guard(UmrfError::UmrfErrInternal as c_int, || {
        let defaults = Config::default_for_machine();
        // SAFETY: the caller promises `config` is null or points to a readable umrf_config.
        let given = unsafe { config.as_ref() }.copied().unwrap_or_default();
        let or = |value: usize, default: usize| if value == 0 { default } else { value };
        let wanted = Config {
            cores: or(given.cores, defaults.cores),
            bytes_per_class: or(given.bytes_per_class, defaults.bytes_per_class),
            fallback_bytes_per_class: or(
                given.fallback_bytes_per_class,
                defaults.fallback_bytes_per_class,
            ),
        };
        match pools::get(Some(wanted)) {
            Ok(_) => succeed() as c_int,
            Err(code) => code as c_int,
        }
    })
}

/// Allocates `size` bytes (1 to 65536) from core `core_id`'s pool, 64-byte aligned.
///
/// Returns the block, or `NULL` with `umrf_last_error()` set: `UMRF_ERR_ZERO_SIZE`,
/// `UMRF_ERR_TOO_LARGE`, `UMRF_ERR_CORE_OUT_OF_RANGE`, `UMRF_ERR_EXHAUSTED` (core and
/// fallback pool), `UMRF_ERR_CORE_BUSY`, `UMRF_ERR_INIT`.
#[unsafe(no_mangle)]
pub extern "C" fn umrf_alloc(size: usize, core_id: c_int) -> *mut c_void {
    guard(std::ptr::null_mut(), || {
        let attempt = pools::get(None).and_then(|pools| {
            let core = pools.core_index(core_id)?;
            pools.alloc(size, core)
        });
        match attempt {
            Ok(ptr) => {
                succeed();
                ptr.cast()
            }
            Err(_) => std::ptr::null_mut(),
        }
    })
}

/// Frees a block returned by `umrf_alloc`, from any thread. `NULL` is ignored (`UMRF_OK`),
/// as `free(NULL)` is.
///
/// Returns `UMRF_OK`, `UMRF_ERR_FOREIGN_POINTER` (not from `umrf_alloc`: nothing is done),
/// `UMRF_ERR_INTERIOR_POINTER` (inside a block, not its start), or `UMRF_ERR_DOUBLE_FREE`
/// (the block is not allocated: freed already, or released by `umrf_reset_pool`).
#[unsafe(no_mangle)]
pub extern "C" fn umrf_free(ptr: *mut c_void) -> c_int {
    guard(UmrfError::UmrfErrInternal as c_int, || {
        if ptr.is_null() {
            return succeed() as c_int;
        }
        let Some(pools) = pools::existing() else {
            BadInput::count(&BAD.foreign_frees);
            return pools::foreign(ptr.cast()) as c_int;
        };
        match pools.free(ptr.cast()) {
            Ok(()) => succeed() as c_int,
            Err(code) => code as c_int,
        }
    })
}

/// Releases every block allocated on `core_id` and not yet freed, at once (arena semantics).
/// Every pointer into them is invalid afterwards: using one is a use after free, and freeing
/// one returns `UMRF_ERR_DOUBLE_FREE` (unless the block was handed out again since, which no
/// allocator can tell apart from a live pointer). Blocks of other cores are untouched.
///
/// Returns how many blocks were released (zero or more), or `UMRF_ERR_CORE_OUT_OF_RANGE`.
#[unsafe(no_mangle)]
pub extern "C" fn umrf_reset_pool(core_id: c_int) -> i64 {
    guard(UmrfError::UmrfErrInternal as i64, || {
        match pools::get(None).and_then(|pools| {
            let core = pools.core_index(core_id)?;
            Ok(pools.reset(core))
        }) {
            Ok(released) => {
                succeed();
                i64::try_from(released).unwrap_or(i64::MAX)
            }
            Err(code) => code as i64,
        }
    })
}

/// Which pool, core and block an address belongs to, and the block's state now. Works for
/// any address of any umrf pool in the process (an address is only compared, never read).
///
/// Returns `UMRF_OK` with `*info` filled, `UMRF_ERR_FOREIGN_POINTER` when no umrf pool holds
/// the address (`*info` untouched), or `UMRF_ERR_NULL` when `info` is null.
///
/// # Safety
/// `info` is null or points to a writable `umrf_owner_info`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn umrf_owner_of(ptr: *const c_void, info: *mut UmrfOwnerInfo) -> c_int {
    guard(UmrfError::UmrfErrInternal as c_int, || {
        if info.is_null() {
            BadInput::count(&BAD.null_arguments);
            return fail(
                UmrfError::UmrfErrNull,
                "umrf_owner_of: info is NULL; pass a umrf_owner_info to fill",
            ) as c_int;
        }
        let Some(owner) = umrf::provenance::owner_of(ptr.cast::<u8>()) else {
            return fail(
                UmrfError::UmrfErrForeignPointer,
                format!("umrf_owner_of({ptr:p}): no umrf pool holds this address"),
            ) as c_int;
        };
        let holder = pools::existing()
            .filter(|p| p.is_ours(owner.pool_id) && owner.offset == 0)
            .and_then(|p| p.holder(ptr.addr(), owner.slot, p.is_primary(owner.pool_id)));
        let filled = UmrfOwnerInfo {
            pool_id: owner.pool_id,
            core: i32::try_from(owner.slot).unwrap_or(i32::MAX),
            state: pools::state_code(owner.state),
            block: owner.block,
            block_size: owner.block_size,
            offset: owner.offset,
            holder_core: holder.and_then(|c| i32::try_from(c).ok()).unwrap_or(-1),
        };
        // SAFETY: `info` is non-null (checked above), and the caller promises it points to a
        // writable umrf_owner_info.
        unsafe { info.write(filled) };
        succeed() as c_int
    })
}

/// Writes the pools' statistics as JSON (per class and core: capacity, in use, allocations,
/// remote frees, exhaustion and fallback counts; the bad-input counts) into `buf`, as
/// `snprintf` does: at most `len - 1` bytes and a terminating NUL.
///
/// Returns the length of the whole JSON text (without the NUL): when it is `>= len` the text
/// was cut short, and a buffer of the returned length + 1 holds it. `buf` may be `NULL` when
/// `len` is 0, to ask for the length. Returns `UMRF_ERR_NULL` for a null `buf` with a
/// non-zero `len`, `UMRF_ERR_INIT` if the pools cannot be built.
///
/// # Safety
/// `buf` is null or points to `len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn umrf_stats_json(buf: *mut c_char, len: usize) -> i64 {
    guard(UmrfError::UmrfErrInternal as i64, || {
        if buf.is_null() && len != 0 {
            BadInput::count(&BAD.null_arguments);
            return fail(
                UmrfError::UmrfErrNull,
                "umrf_stats_json: buf is NULL but len is not 0",
            ) as i64;
        }
        let pools: &Pools = match pools::get(None) {
            Ok(pools) => pools,
            Err(code) => return code as i64,
        };
        let text = pools.stats_json().to_string();
        if len > 0 {
            let copied = text.len().min(len - 1);
            // SAFETY: `buf` is non-null (len > 0 and the check above), the caller promises `len`
            // writable bytes, and `copied < len`; the source is a live String of at least
            // `copied` bytes that cannot overlap memory the caller owns.
            unsafe { std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), copied) };
            // SAFETY: `copied < len`, so the offset stays inside the caller's `len` bytes.
            let end = unsafe { buf.add(copied) };
            // SAFETY: `end` is inside the caller's `len` writable bytes (above).
            unsafe { end.write(0) };
        }
        succeed();
        i64::try_from(text.len()).unwrap_or(i64::MAX)
    })
}

/// The code of this thread's last failed call (`UMRF_OK` after a successful one).
#[unsafe(no_mangle)]
pub extern "C" fn umrf_last_error_code() -> c_int {
    error::last_code() as c_int
}

/// The message of this thread's last failed call: what went wrong and how to fix it; `""`
/// after a successful one. Valid until this thread's next call of the API.
#[unsafe(no_mangle)]
pub extern "C" fn umrf_last_error() -> *const c_char {
    error::last_message()
}
