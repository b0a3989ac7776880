//! [`CpuSet`]: a compact bitset of CPU ids, with the two Linux text formats.
//!
//! Formats (Linux `Documentation/admin-guide/cputopology.rst` and
//! `lib/bitmap-str.c`):
//! - *cpulist*: comma-separated decimal ids and ranges, `0-3,8,10-11`; the
//!   kernel's strided form `a-b:used/group` (`0-15:2/4` = 0,1,4,5,8,9,12,13)
//!   is accepted too. An empty string is the empty set.
//! - *cpumap*: comma-separated 32-bit hex words, most significant first,
//!   `00000000,0000ffff` (CPUs 0-15). Any number of words.

use std::fmt;
use std::str::FromStr;

use super::error::CpuSetError;

/// A set of CPU ids (Linux logical CPU numbers), stored as a bitset.
///
/// # Invariants
///
/// 0. `words` has no trailing zero word, so equal sets have equal `words`
///    (derived `PartialEq`/`Hash` are correct).
/// 1. Every set bit is below [`CpuSet::MAX_CPUS`].
///
/// # Examples
///
/// ```
/// use umrf::topology::CpuSet;
///
/// let set = CpuSet::parse_list("0-3,8,10-11")?;
/// assert_eq!(set.len(), 7);
/// assert!(set.contains(8) && !set.contains(9));
/// assert_eq!(set.to_string(), "0-3,8,10-11");
/// assert_eq!(set, CpuSet::parse_mask("00000d0f")?);
/// # Ok::<(), umrf::topology::CpuSetError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct CpuSet {
    words: Vec<u64>,
}

impl CpuSet {
    /// CPU ids must be below this bound (2^20). Linux caps `NR_CPUS` far
    /// lower (8192 on x86-64 with `MAXSMP`), so a larger id means corrupt
    /// input; the bound keeps a hostile mask from allocating unbounded memory.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// assert!(CpuSet::parse_list(&CpuSet::MAX_CPUS.to_string()).is_err());
    /// ```
    pub const MAX_CPUS: u32 = 1 << 20;

    /// The empty set.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// assert!(CpuSet::new().is_empty());
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Self { words: Vec::new() }
    }

    /// The set `0..count`.
    ///
    /// # Panics
    ///
    /// If `count > CpuSet::MAX_CPUS`.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// assert_eq!(CpuSet::first_n(4).to_string(), "0-3");
    /// ```
    #[must_use]
    pub fn first_n(count: u32) -> Self {
        let mut set = Self::new();
        if count > 0 {
            set.insert_range(0, count - 1);
        }
        set
    }

    /// Parses a Linux cpulist (`0-3,8,10-11`); leading and trailing
    /// whitespace (such as the newline sysfs appends) is ignored.
    ///
    /// # Errors
    ///
    /// [`CpuSetError`] for an empty item, a non-number, a reversed range, a
    /// bad stride or an id at or above [`CpuSet::MAX_CPUS`].
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// assert_eq!(CpuSet::parse_list("0-15:2/4\n")?.to_string(), "0-1,4-5,8-9,12-13");
    /// assert!(CpuSet::parse_list("")?.is_empty());
    /// assert!(CpuSet::parse_list("1,,2").is_err());
    /// # Ok::<(), umrf::topology::CpuSetError>(())
    /// ```
    pub fn parse_list(input: &str) -> Result<Self, CpuSetError> {
        let text = input.trim();
        let mut set = Self::new();
        if text.is_empty() {
            return Ok(set);
        }
        for (position, item) in text.split(',').enumerate() {
            if item.is_empty() {
                return Err(CpuSetError::EmptyItem {
                    input: input.to_owned(),
                    position,
                });
            }
            set.parse_list_item(input, item)?;
        }
        Ok(set)
    }

    /// Parses one item of a cpulist into `self`.
    fn parse_list_item(&mut self, input: &str, item: &str) -> Result<(), CpuSetError> {
        let (range, stride) = match item.split_once(':') {
            Some((range, stride)) => (range, Some(stride)),
            None => (item, None),
        };
        let (start, end) = match range.split_once('-') {
            Some((a, b)) => (parse_id(input, a)?, parse_id(input, b)?),
            None if stride.is_none() => {
                let id = parse_id(input, range)?;
                (id, id)
            }
            None => {
                return Err(CpuSetError::InvalidStride {
                    text: item.to_owned(),
                });
            }
        };
        if start > end {
            return Err(CpuSetError::ReversedRange { start, end });
        }
        match stride {
            None => self.insert_range(start, end),
            Some(stride) => {
                let bad = || CpuSetError::InvalidStride {
                    text: item.to_owned(),
                };
                let (used, group) = stride.split_once('/').ok_or_else(bad)?;
                let used = parse_id(input, used)?;
                let group = parse_id(input, group)?;
                if used == 0 || group == 0 || used > group {
                    return Err(bad());
                }
                let mut base = start;
                while base <= end {
                    let last = base.saturating_add(used - 1).min(end);
                    self.insert_range(base, last);
                    base = match base.checked_add(group) {
                        Some(next) => next,
                        None => break,
                    };
                }
            }
        }
        Ok(())
    }

    /// Parses a Linux hex cpumap: comma-separated 32-bit words, most
    /// significant first (`00000000,0000ffff`), of any length. Leading and
    /// trailing whitespace is ignored; an empty string is the empty set.
    ///
    /// # Errors
    ///
    /// [`CpuSetError::InvalidMaskWord`] for a word that is empty, longer than
    /// 8 digits or not hex; [`CpuSetError::TooLarge`] if a set bit is at or
    /// above [`CpuSet::MAX_CPUS`].
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// let set = CpuSet::parse_mask("00000001,80000000\n")?;
    /// assert_eq!(set.to_string(), "31-32");
    /// assert!(CpuSet::parse_mask("00000000,00000000")?.is_empty());
    /// assert!(CpuSet::parse_mask("0x3").is_err());
    /// # Ok::<(), umrf::topology::CpuSetError>(())
    /// ```
    pub fn parse_mask(input: &str) -> Result<Self, CpuSetError> {
        let text = input.trim();
        let mut set = Self::new();
        if text.is_empty() {
            return Ok(set);
        }
        let words: Vec<&str> = text.split(',').collect();
        for (index_from_low, word) in words.iter().rev().enumerate() {
            let bad = || CpuSetError::InvalidMaskWord {
                input: input.to_owned(),
                word: (*word).to_owned(),
            };
            if word.is_empty() || word.len() > 8 || !word.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            let value = u32::from_str_radix(word, 16).map_err(|_| bad())?;
            if value == 0 {
                continue;
            }
            for bit in 0..32u64 {
                if value & (1 << bit) != 0 {
                    let cpu = index_from_low as u64 * 32 + bit;
                    let cpu = checked_id(cpu)?;
                    set.insert(cpu);
                }
            }
        }
        Ok(set)
    }

    /// Adds `cpu`; returns whether it was newly added.
    ///
    /// # Panics
    ///
    /// If `cpu >= CpuSet::MAX_CPUS` (parsers check this and return an error
    /// instead).
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// let mut set = CpuSet::new();
    /// assert!(set.insert(5));
    /// assert!(!set.insert(5));
    /// ```
    pub fn insert(&mut self, cpu: u32) -> bool {
        assert!(
            cpu < Self::MAX_CPUS,
            "CPU id {cpu} is not below CpuSet::MAX_CPUS"
        );
        let (word, bit) = split(cpu);
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        let was = self.words[word] & bit != 0;
        self.words[word] |= bit;
        !was
    }

    /// Adds every id in `start..=end` (both below [`CpuSet::MAX_CPUS`]).
    fn insert_range(&mut self, start: u32, end: u32) {
        for cpu in start..=end {
            self.insert(cpu);
        }
    }

    /// Removes `cpu`; returns whether it was present.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// let mut set: CpuSet = [1, 2].into_iter().collect();
    /// assert!(set.remove(2));
    /// assert_eq!(set.to_string(), "1");
    /// ```
    pub fn remove(&mut self, cpu: u32) -> bool {
        let (word, bit) = split(cpu);
        let Some(slot) = self.words.get_mut(word) else {
            return false;
        };
        let was = *slot & bit != 0;
        *slot &= !bit;
        self.normalize();
        was
    }

    /// Whether `cpu` is in the set.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// assert!(CpuSet::first_n(2).contains(1));
    /// ```
    #[must_use]
    pub fn contains(&self, cpu: u32) -> bool {
        let (word, bit) = split(cpu);
        self.words.get(word).is_some_and(|w| w & bit != 0)
    }

    /// Number of CPUs in the set.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// assert_eq!(CpuSet::first_n(3).len(), 3);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// assert!(CpuSet::parse_list("\n")?.is_empty());
    /// # Ok::<(), umrf::topology::CpuSetError>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The smallest id in the set.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// assert_eq!(CpuSet::parse_list("7,3")?.first(), Some(3));
    /// # Ok::<(), umrf::topology::CpuSetError>(())
    /// ```
    #[must_use]
    pub fn first(&self) -> Option<u32> {
        self.iter().next()
    }

    /// The ids in increasing order.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// let ids: Vec<u32> = CpuSet::parse_list("2-4")?.iter().collect();
    /// assert_eq!(ids, [2, 3, 4]);
    /// # Ok::<(), umrf::topology::CpuSetError>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(index, &word)| {
            (0..64u32)
                .filter(move |bit| word & (1u64 << bit) != 0)
                .map(move |bit| index as u32 * 64 + bit)
        })
    }

    /// The CPUs in `self` or `other`.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// let a = CpuSet::parse_list("0-1")?;
    /// assert_eq!(a.union(&CpuSet::parse_list("4")?).to_string(), "0-1,4");
    /// # Ok::<(), umrf::topology::CpuSetError>(())
    /// ```
    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        let len = self.words.len().max(other.words.len());
        let words = (0..len)
            .map(|i| self.word(i) | other.word(i))
            .collect::<Vec<_>>();
        Self { words }
    }

    /// The CPUs in both `self` and `other`.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// let node = CpuSet::parse_list("0-87")?;
    /// let online = CpuSet::parse_list("0-15,88-103")?;
    /// assert_eq!(node.intersection(&online).to_string(), "0-15");
    /// # Ok::<(), umrf::topology::CpuSetError>(())
    /// ```
    #[must_use]
    pub fn intersection(&self, other: &Self) -> Self {
        let len = self.words.len().min(other.words.len());
        let mut set = Self {
            words: (0..len).map(|i| self.word(i) & other.word(i)).collect(),
        };
        set.normalize();
        set
    }

    /// Whether every CPU of `self` is in `other`.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::CpuSet;
    /// assert!(CpuSet::first_n(2).is_subset(&CpuSet::first_n(4)));
    /// ```
    #[must_use]
    pub fn is_subset(&self, other: &Self) -> bool {
        (0..self.words.len()).all(|i| self.word(i) & !other.word(i) == 0)
    }

    /// Word `index`, zero past the end.
    fn word(&self, index: usize) -> u64 {
        self.words.get(index).copied().unwrap_or(0)
    }

    /// Restores invariant 0 (no trailing zero word).
    fn normalize(&mut self) {
        while self.words.last() == Some(&0) {
            self.words.pop();
        }
    }
}

/// Word index and bit mask of `cpu`.
fn split(cpu: u32) -> (usize, u64) {
    ((cpu / 64) as usize, 1u64 << (cpu % 64))
}

/// Parses one decimal id of a cpulist and checks it against `MAX_CPUS`.
fn parse_id(input: &str, text: &str) -> Result<u32, CpuSetError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CpuSetError::InvalidNumber {
            input: input.to_owned(),
            text: text.to_owned(),
        });
    }
    match text.parse::<u64>() {
        Ok(value) => checked_id(value),
        // Only overflow is left: all digits, non-empty.
        Err(_) => Err(CpuSetError::TooLarge {
            cpu: u64::MAX,
            max: CpuSet::MAX_CPUS,
        }),
    }
}

/// `value` as a CPU id, if below `MAX_CPUS`.
fn checked_id(value: u64) -> Result<u32, CpuSetError> {
    if value < u64::from(CpuSet::MAX_CPUS) {
        // Below 2^20, so it fits.
        Ok(value as u32)
    } else {
        Err(CpuSetError::TooLarge {
            cpu: value,
            max: CpuSet::MAX_CPUS,
        })
    }
}

impl FromStr for CpuSet {
    type Err = CpuSetError;

    /// Same as [`CpuSet::parse_list`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_list(s)
    }
}

impl FromIterator<u32> for CpuSet {
    /// Collects ids into a set.
    ///
    /// # Panics
    ///
    /// If an id is at or above [`CpuSet::MAX_CPUS`].
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let mut set = Self::new();
        for cpu in iter {
            set.insert(cpu);
        }
        set
    }
}

impl fmt::Display for CpuSet {
    /// Writes the set as a Linux cpulist (`0-3,8,10-11`); the empty set is
    /// the empty string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids = self.iter().peekable();
        let mut first = true;
        while let Some(start) = ids.next() {
            let mut end = start;
            while ids.peek() == Some(&(end + 1)) {
                end += 1;
                ids.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end {
                write!(f, "{start}")?;
            } else {
                write!(f, "{start}-{end}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CpuSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_roundtrip_and_edges() {
        assert!(CpuSet::parse_list("").unwrap().is_empty());
        assert!(CpuSet::parse_list(" \n").unwrap().is_empty());
        assert_eq!(CpuSet::parse_list("0\n").unwrap().to_string(), "0");
        assert_eq!(CpuSet::parse_list("5,1-2").unwrap().to_string(), "1-2,5");
        assert_eq!(CpuSet::parse_list("0-1,1-2").unwrap().len(), 3);
        let big = CpuSet::parse_list("0-87,88-175,1000").unwrap();
        assert_eq!(big.len(), 177);
        assert_eq!(big.to_string(), "0-175,1000");
        assert_eq!(
            CpuSet::parse_list("0-15:2/4").unwrap().to_string(),
            "0-1,4-5,8-9,12-13"
        );
        assert_eq!(CpuSet::parse_list("1-6:1/3").unwrap().to_string(), "1,4");
        assert_eq!(CpuSet::parse_list("4-5:4/4").unwrap().to_string(), "4-5");
    }

    #[test]
    fn list_errors() {
        type Check = fn(&CpuSetError) -> bool;
        let cases: [(&str, Check); 12] = [
            (",", |e| {
                matches!(e, CpuSetError::EmptyItem { position: 0, .. })
            }),
            ("1,", |e| {
                matches!(e, CpuSetError::EmptyItem { position: 1, .. })
            }),
            ("a", |e| matches!(e, CpuSetError::InvalidNumber { .. })),
            ("1-", |e| matches!(e, CpuSetError::InvalidNumber { .. })),
            ("-1", |e| matches!(e, CpuSetError::InvalidNumber { .. })),
            ("1 2", |e| matches!(e, CpuSetError::InvalidNumber { .. })),
            ("+1", |e| matches!(e, CpuSetError::InvalidNumber { .. })),
            ("5-2", |e| {
                matches!(e, CpuSetError::ReversedRange { start: 5, end: 2 })
            }),
            ("0-7:0/4", |e| {
                matches!(e, CpuSetError::InvalidStride { .. })
            }),
            ("0-7:5/4", |e| {
                matches!(e, CpuSetError::InvalidStride { .. })
            }),
            ("3:1/2", |e| matches!(e, CpuSetError::InvalidStride { .. })),
            ("99999999999999999999999", |e| {
                matches!(e, CpuSetError::TooLarge { .. })
            }),
        ];
        for (input, check) in cases {
            let err = CpuSet::parse_list(input).unwrap_err();
            assert!(check(&err), "{input:?} gave {err:?}");
        }
        let err = CpuSet::parse_list("0-4294967295").unwrap_err();
        assert!(matches!(
            err,
            CpuSetError::TooLarge {
                cpu: 4294967295,
                ..
            }
        ));
    }

    #[test]
    fn mask_parsing() {
        assert_eq!(CpuSet::parse_mask("f").unwrap().to_string(), "0-3");
        assert_eq!(
            CpuSet::parse_mask("00ff00ff\n").unwrap().to_string(),
            "0-7,16-23"
        );
        assert_eq!(
            CpuSet::parse_mask("00000000,0000ffff").unwrap().to_string(),
            "0-15"
        );
        assert_eq!(
            CpuSet::parse_mask("80000000,00000000,00000001")
                .unwrap()
                .to_string(),
            "0,95"
        );
        // 4096-bit mask (Itanium node3 style): 127 zero words then ff000000.
        let mut words = vec!["00000000"; 127];
        words.push("ff000000");
        assert_eq!(
            CpuSet::parse_mask(&words.join(",")).unwrap().to_string(),
            "24-31"
        );
        words[0] = "00000001";
        let set = CpuSet::parse_mask(&words.join(",")).unwrap();
        assert!(set.contains(4064) && set.len() == 9);
        assert!(CpuSet::parse_mask("").unwrap().is_empty());
    }

    #[test]
    fn mask_errors() {
        for bad in ["0x1", "1,,2", "123456789", "g", ",1", "1,", "ff ff"] {
            let err = CpuSet::parse_mask(bad).unwrap_err();
            assert!(
                matches!(err, CpuSetError::InvalidMaskWord { .. }),
                "{bad:?} gave {err:?}"
            );
        }
        let huge = format!("1{}", ",00000000".repeat(32768));
        assert!(matches!(
            CpuSet::parse_mask(&huge).unwrap_err(),
            CpuSetError::TooLarge { cpu: 1_048_576, .. }
        ));
    }

    #[test]
    fn set_operations() {
        let mut set: CpuSet = [3, 64, 65].into_iter().collect();
        assert_eq!(set.first(), Some(3));
        assert!(set.remove(64) && set.remove(65));
        assert!(!set.remove(1000));
        assert_eq!(set, CpuSet::parse_list("3").unwrap());
        let a = CpuSet::parse_list("0-100").unwrap();
        let b = CpuSet::parse_list("100-200").unwrap();
        assert_eq!(a.intersection(&b).to_string(), "100");
        assert_eq!(a.union(&b).to_string(), "0-200");
        assert!(CpuSet::parse_list("100").unwrap().is_subset(&b));
        assert!(!a.is_subset(&b));
        assert_eq!(
            CpuSet::parse_list("0-63").unwrap().intersection(&b),
            CpuSet::new()
        );
        assert_eq!(format!("{:?}", a), "CpuSet(0-100)");
        assert_eq!("1-2".parse::<CpuSet>().unwrap().len(), 2);
    }
}
