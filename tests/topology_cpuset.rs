//! Property tests of `CpuSet`'s two text formats: what is printed parses
//! back to the same set, and no input string makes a parser panic.

use proptest::prelude::*;
use umrf::topology::CpuSet;

/// A random set of CPU ids below 5000, with runs (so ranges appear).
fn cpu_sets() -> impl Strategy<Value = CpuSet> {
    prop::collection::vec((0u32..5000, 0u32..40), 0..30).prop_map(|runs| {
        let mut set = CpuSet::new();
        for (start, len) in runs {
            for cpu in start..(start + len).min(5000) {
                set.insert(cpu);
            }
        }
        set
    })
}

/// The Linux cpumap text of `set`: 32-bit words, most significant first,
/// `words` words at least.
fn to_mask(set: &CpuSet, words: usize) -> String {
    let needed = set.iter().last().map_or(1, |max| max as usize / 32 + 1);
    let mut w = vec![0u32; needed.max(words)];
    for cpu in set.iter() {
        w[cpu as usize / 32] |= 1 << (cpu % 32);
    }
    w.iter()
        .rev()
        .map(|x| format!("{x:08x}"))
        .collect::<Vec<_>>()
        .join(",")
}

proptest! {
    #[test]
    fn list_roundtrip(set in cpu_sets()) {
        let text = set.to_string();
        let back = CpuSet::parse_list(&format!("{text}\n")).unwrap();
        prop_assert_eq!(&back, &set);
        prop_assert_eq!(back.len(), set.iter().count());
        // Display is canonical: ascending, maximal ranges.
        prop_assert_eq!(back.to_string(), text);
    }

    #[test]
    fn mask_roundtrip(set in cpu_sets(), extra_words in 0usize..200) {
        let mask = to_mask(&set, extra_words);
        prop_assert_eq!(CpuSet::parse_mask(&mask).unwrap(), set);
    }

    #[test]
    fn list_and_membership_agree(set in cpu_sets(), probe in 0u32..5100) {
        prop_assert_eq!(set.contains(probe), set.iter().any(|c| c == probe));
        let single: CpuSet = std::iter::once(probe).collect();
        prop_assert_eq!(single.is_subset(&set), set.contains(probe));
        prop_assert_eq!(set.intersection(&single).is_empty(), !set.contains(probe));
    }

    #[test]
    fn parsers_never_panic(text in "[0-9a-fx,: /\\-\n]{0,40}") {
        let _ = CpuSet::parse_list(&text);
        let _ = CpuSet::parse_mask(&text);
    }
}
