//! The size classes: which block size serves a request, in O(1).
//!
//! Spacing after mimalloc's bins and snmalloc's size classes: 16-byte steps up to 128 bytes,
//! then four classes per doubling (`2^b + k * 2^(b-2)`, `k = 1..=4`), up to 1 MiB. A request
//! therefore wastes less than 16 bytes below 128 bytes, and less than a fifth of its block
//! above (the worst case is one byte over a class boundary: `2^b + 1` in a block of
//! `1.25 * 2^b`). The class of a size is one leading-zero count and two shifts: no loop, no
//! table.
//!
//! ```text
//! class   0   1   2  ...   7 |   8   9  10  11 |  12  13  14  15 | ... |      59
//! bytes  16  32  48  ... 128 | 160 192 224 256 | 320 384 448 512 | ... | 1048576
//! ```

/// Bytes of the smallest class, and the spacing of the classes up to 128 bytes.
pub const MIN_CLASS_BYTES: usize = 16;

/// The end of the linear classes (16, 32, ..., 128).
const LINEAR_LIMIT: usize = 128;

/// Classes up to and including [`LINEAR_LIMIT`].
const LINEAR_CLASSES: usize = LINEAR_LIMIT / MIN_CLASS_BYTES;

/// `log2(LINEAR_LIMIT)`.
const LINEAR_SHIFT: u32 = LINEAR_LIMIT.trailing_zeros();

/// Classes per doubling above [`LINEAR_LIMIT`].
const PER_DOUBLING: usize = 4;

/// Bytes of the largest class a size-class pool may have.
pub const MAX_CLASS_BYTES: usize = 1 << 20;

/// Number of classes from [`MIN_CLASS_BYTES`] to [`MAX_CLASS_BYTES`].
pub const CLASS_COUNT: usize =
    LINEAR_CLASSES + PER_DOUBLING * (MAX_CLASS_BYTES.trailing_zeros() - LINEAR_SHIFT) as usize;

/// The class of a request of `size` bytes (`1..=MAX_CLASS_BYTES`): the smallest class whose
/// blocks hold it. `size` 0 is treated as 1.
///
/// ```
/// use umrf::sized::{class_bytes, class_of};
/// assert_eq!(class_of(1), 0);
/// assert_eq!(class_bytes(class_of(100)), 112);
/// assert_eq!(class_bytes(class_of(129)), 160);
/// assert_eq!(class_bytes(class_of(1 << 20)), 1 << 20);
/// ```
#[inline(always)]
pub const fn class_of(size: usize) -> usize {
    if size <= LINEAR_LIMIT {
        return size.saturating_sub(1) / MIN_CLASS_BYTES;
    }
    let t = size - 1;
    let b = usize::BITS - 1 - t.leading_zeros(); // 2^b <= t < 2^(b+1), b >= LINEAR_SHIFT
    let quarter = (t >> (b - 2)) & (PER_DOUBLING - 1);
    LINEAR_CLASSES + (b - LINEAR_SHIFT) as usize * PER_DOUBLING + quarter
}

/// Bytes per block of class `class`.
///
/// ```
/// use umrf::sized::{class_bytes, CLASS_COUNT, MAX_CLASS_BYTES};
/// assert_eq!(class_bytes(0), 16);
/// assert_eq!(class_bytes(8), 160);
/// assert_eq!(class_bytes(CLASS_COUNT - 1), MAX_CLASS_BYTES);
/// ```
#[inline(always)]
pub const fn class_bytes(class: usize) -> usize {
    if class < LINEAR_CLASSES {
        return (class + 1) * MIN_CLASS_BYTES;
    }
    let j = class - LINEAR_CLASSES;
    let b = LINEAR_SHIFT as usize + j / PER_DOUBLING;
    let k = j % PER_DOUBLING + 1;
    (1 << b) + k * (1 << (b - 2))
}

/// The alignment every block of class `class` has (its largest power-of-two divisor, at most a
/// page: blocks start at page-aligned region bases).
#[cfg(test)]
const fn class_align(class: usize, page: usize) -> usize {
    let bytes = class_bytes(class);
    let align = 1 << bytes.trailing_zeros();
    if align < page { align } else { page }
}

/// The largest alignment classes serve (the smallest page of the platforms umrf supports);
/// more aligned requests take the large path, whose regions are page aligned.
const CLASS_MAX_ALIGN: usize = 4096;

/// The class for a request of `size` bytes aligned to `align` (a power of two), or `None` when
/// it is larger than class `last` or aligned above [`CLASS_MAX_ALIGN`].
///
/// An alignment above 16 rounds the size up to a multiple of it first: with the spacing above,
/// the class of a multiple of a power of two `a >= 16` is itself a multiple of `a`, so its
/// blocks are `a`-aligned (checked for every pair by the tests).
#[inline(always)]
pub(crate) const fn class_for(size: usize, align: usize, last: usize) -> Option<usize> {
    // `class_of` is monotone, so `class_of(size) <= last` exactly when
    // `size <= class_bytes(last)`: one compare of classes instead of computing that size. It
    // also refuses every request no class serves: those have the index `CLASS_COUNT`, above
    // any `last`.
    debug_assert!(last < CLASS_COUNT);
    let class = class_index(size, align);
    if class > last {
        return None;
    }
    Some(class)
}

/// [`class_for`] without a largest class: the class of the whole family that serves the
/// request, or [`CLASS_COUNT`] when none does (larger than [`MAX_CLASS_BYTES`], or aligned
/// above [`CLASS_MAX_ALIGN`]). The hot paths index a table of `CLASS_COUNT + 1` entries with
/// it, whose entries above a row's last class stay empty, so they need no compare with the
/// row's last class (nor a bounds check: the result is at most `CLASS_COUNT`).
#[inline(always)]
pub(crate) const fn class_index(size: usize, align: usize) -> usize {
    let size = if align <= MIN_CLASS_BYTES {
        size
    } else if align > CLASS_MAX_ALIGN || size > MAX_CLASS_BYTES {
        return CLASS_COUNT;
    } else {
        // align is a power of two: this cannot overflow for size <= MAX_CLASS_BYTES.
        (size + align - 1) & !(align - 1)
    };
    let class = class_of(size);
    if class < CLASS_COUNT {
        class
    } else {
        CLASS_COUNT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_run_from_16_bytes_to_1_mib_in_order() {
        assert_eq!(CLASS_COUNT, 60);
        assert_eq!(class_bytes(0), 16);
        assert_eq!(class_bytes(CLASS_COUNT - 1), MAX_CLASS_BYTES);
        for c in 1..CLASS_COUNT {
            assert!(class_bytes(c) > class_bytes(c - 1), "class {c}");
            assert_eq!(class_bytes(c) % MIN_CLASS_BYTES, 0);
        }
    }

    #[test]
    fn every_size_gets_the_smallest_class_that_holds_it() {
        let step = if cfg!(miri) { 997 } else { 1 };
        for size in (1..=MAX_CLASS_BYTES).step_by(step) {
            let c = class_of(size);
            assert!(class_bytes(c) >= size, "size {size} in class {c}");
            assert!(
                c == 0 || class_bytes(c - 1) < size,
                "size {size}: class {c} not smallest"
            );
        }
        for c in 0..CLASS_COUNT {
            assert_eq!(class_of(class_bytes(c)), c);
            assert_eq!(class_of(class_bytes(c) + 1), c + 1);
        }
    }

    #[test]
    fn no_class_serves_a_size_above_the_largest_class() {
        let above = [
            MAX_CLASS_BYTES + 1,
            MAX_CLASS_BYTES + 4096,
            2 * MAX_CLASS_BYTES,
            usize::MAX / 2 + 1,
            usize::MAX - 4095,
            usize::MAX,
        ];
        for size in above {
            for align in [1, 8, 16, 32, 4096] {
                for last in [0, 7, CLASS_COUNT - 1] {
                    assert_eq!(
                        class_for(size, align, last),
                        None,
                        "{size} B, align {align}"
                    );
                }
            }
        }
        assert_eq!(class_of(MAX_CLASS_BYTES + 1), CLASS_COUNT);
    }

    #[test]
    fn waste_is_under_16_bytes_or_a_fifth_of_the_block() {
        for c in 1..CLASS_COUNT {
            let worst = class_bytes(c - 1) + 1; // the smallest request of class c
            let waste = class_bytes(c) - worst;
            assert!(
                waste < MIN_CLASS_BYTES || waste * 5 < class_bytes(c),
                "class {c}: {waste} of {} bytes",
                class_bytes(c)
            );
        }
    }

    #[test]
    fn aligned_requests_land_in_blocks_with_that_alignment() {
        let page = 4096;
        let mut align = 1;
        while align <= page {
            for size in (1..=16 * page).step_by(if cfg!(miri) { 61 } else { 7 }) {
                let c = class_for(size, align, CLASS_COUNT - 1).expect("fits");
                assert!(class_bytes(c) >= size);
                assert!(
                    class_align(c, page) >= align.max(16),
                    "size {size} align {align}: class {c} of {} bytes",
                    class_bytes(c)
                );
            }
            align *= 2;
        }
        assert_eq!(class_for(MAX_CLASS_BYTES + 1, 8, CLASS_COUNT - 1), None);
        assert_eq!(class_for(200, 8, class_of(160)), None);
    }

    #[test]
    fn a_request_fits_under_the_last_class_exactly_when_its_size_does() {
        for last in 0..CLASS_COUNT {
            let limit = class_bytes(last);
            for size in [
                1,
                limit - 1,
                limit,
                limit + 1,
                MAX_CLASS_BYTES,
                MAX_CLASS_BYTES + 1,
            ] {
                for align in [1, 8, 16, 64, 4096] {
                    let rounded = size.next_multiple_of(align.max(1));
                    let fits = if align <= MIN_CLASS_BYTES {
                        size
                    } else {
                        rounded
                    } <= limit;
                    let got = class_for(size, align, last);
                    assert_eq!(got.is_some(), fits, "size {size} align {align} last {last}");
                    if let Some(c) = got {
                        assert!(c <= last && class_bytes(c) >= size);
                    }
                }
            }
        }
    }
}
