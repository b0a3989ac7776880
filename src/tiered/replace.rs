//! Which RAM page to spill next: CLOCK (second chance) or exact LRU.
//!
//! CLOCK keeps one reference bit per page and a hand sweeping a ring; an access sets the bit
//! (no list to update), the hand clears bits until it finds a page without one. LRU keeps the
//! pages ordered by last access (a tick per access, in a `BTreeMap`), so an access is an
//! `O(log n)` remove and insert. `benches/tiered.rs` measures both (docs/PERFORMANCE.md): on
//! the skewed random pins LRU keeps a slightly higher hit rate (0.307 against 0.295) and on
//! the out-of-core GEMM it was as fast or faster, and the cost of its ordered map did not show
//! at the page counts a RAM budget gives (thousands), so LRU is the default.

use std::collections::BTreeMap;

/// The replacement policy of a [`TieredStore`](super::TieredStore).
///
/// ```
/// use umrf::tiered::Replacement;
/// assert_eq!(Replacement::default(), Replacement::Lru);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Replacement {
    /// Second chance: a reference bit per page and a sweeping hand; an access costs one store.
    Clock,
    /// Least recently used, exactly (the default).
    #[default]
    Lru,
}

/// The set of pages in RAM, ordered for eviction.
#[derive(Debug)]
pub(crate) enum Replacer {
    Clock {
        ring: Vec<u32>,
        /// Position in `ring` of each page (`u32::MAX` when not in RAM), and its reference bit.
        position: Vec<(u32, bool)>,
        hand: usize,
    },
    Lru {
        tick: u64,
        order: BTreeMap<u64, u32>,
        stamp: Vec<u64>,
    },
}

const ABSENT: u32 = u32::MAX;

impl Replacer {
    pub(crate) fn new(policy: Replacement) -> Replacer {
        match policy {
            Replacement::Clock => Replacer::Clock {
                ring: Vec::new(),
                position: Vec::new(),
                hand: 0,
            },
            Replacement::Lru => Replacer::Lru {
                tick: 0,
                order: BTreeMap::new(),
                stamp: Vec::new(),
            },
        }
    }

    /// Adds `page` (now in RAM), as just used.
    pub(crate) fn insert(&mut self, page: u32) {
        match self {
            Replacer::Clock { ring, position, .. } => {
                grow(position, page, (ABSENT, false));
                debug_assert_eq!(position[page as usize].0, ABSENT);
                position[page as usize] = (ring.len() as u32, true);
                ring.push(page);
            }
            Replacer::Lru { tick, order, stamp } => {
                grow(stamp, page, 0);
                stamp_now(tick, order, stamp, page);
            }
        }
    }

    /// Records an access to `page` (in RAM).
    #[inline]
    pub(crate) fn touch(&mut self, page: u32) {
        match self {
            Replacer::Clock { position, .. } => position[page as usize].1 = true,
            Replacer::Lru { tick, order, stamp } => {
                order.remove(&stamp[page as usize]);
                stamp_now(tick, order, stamp, page);
            }
        }
    }

    /// Removes `page` (it left RAM).
    pub(crate) fn remove(&mut self, page: u32) {
        match self {
            Replacer::Clock {
                ring,
                position,
                hand,
            } => {
                let at = position[page as usize].0 as usize;
                position[page as usize] = (ABSENT, false);
                ring.swap_remove(at);
                if let Some(&moved) = ring.get(at) {
                    position[moved as usize].0 = at as u32;
                }
                if *hand >= ring.len() {
                    *hand = 0;
                }
            }
            Replacer::Lru { order, stamp, .. } => {
                order.remove(&stamp[page as usize]);
            }
        }
    }

    /// The page to evict: the coldest one for which `evictable` holds (it is not removed).
    pub(crate) fn victim(&mut self, mut evictable: impl FnMut(u32) -> bool) -> Option<u32> {
        match self {
            Replacer::Clock {
                ring,
                position,
                hand,
            } => {
                // Two sweeps: the first may only clear reference bits.
                for _ in 0..2 * ring.len() {
                    let page = ring[*hand];
                    *hand = (*hand + 1) % ring.len();
                    if !evictable(page) {
                        continue;
                    }
                    let referenced = &mut position[page as usize].1;
                    if *referenced {
                        *referenced = false;
                    } else {
                        return Some(page);
                    }
                }
                None
            }
            Replacer::Lru { order, .. } => order.values().copied().find(|&p| evictable(p)),
        }
    }
}

/// Records `page` as the most recently used.
fn stamp_now(tick: &mut u64, order: &mut BTreeMap<u64, u32>, stamp: &mut [u64], page: u32) {
    *tick += 1;
    stamp[page as usize] = *tick;
    order.insert(*tick, page);
}

fn grow<T: Copy>(v: &mut Vec<T>, page: u32, fill: T) {
    if v.len() <= page as usize {
        v.resize(page as usize + 1, fill);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_the_least_recent_evictable_page() {
        let mut r = Replacer::new(Replacement::Lru);
        for p in 0..4 {
            r.insert(p);
        }
        r.touch(0);
        assert_eq!(r.victim(|_| true), Some(1));
        assert_eq!(r.victim(|p| p != 1), Some(2));
        r.remove(1);
        r.remove(2);
        assert_eq!(r.victim(|_| true), Some(3));
        assert_eq!(r.victim(|_| false), None);
    }

    #[test]
    fn clock_gives_a_second_chance() {
        let mut r = Replacer::new(Replacement::Clock);
        for p in 0..3 {
            r.insert(p);
        }
        // All referenced: the first sweep clears, the second finds page 0.
        assert_eq!(r.victim(|_| true), Some(0));
        r.touch(1);
        // Hand is past 0; 1 was touched again, so 2 goes.
        assert_eq!(r.victim(|_| true), Some(2));
        r.remove(2);
        r.remove(0);
        assert_eq!(r.victim(|_| true), Some(1));
        assert_eq!(r.victim(|p| p != 1), None);
    }
}
