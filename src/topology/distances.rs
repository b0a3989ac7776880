//! [`Distances`]: the NUMA distance matrix (ACPI SLIT values).

use super::error::TopologyError;

/// The NUMA distance matrix, indexed by node id pairs.
///
/// Values are the firmware's relative distances (ACPI SLIT): 10 for a node
/// to itself, larger is farther. The matrix may be unknown (no source had
/// one); then every lookup is `None`.
///
/// # Invariants
///
/// 0. `values.len() == ids.len() * ids.len()`, row-major, row = from.
/// 1. `ids` is strictly increasing.
///
/// # Examples
///
/// ```
/// use umrf::topology::Distances;
///
/// let d = Distances::from_rows(vec![0, 8], vec![vec![10, 40], vec![40, 10]])?;
/// assert_eq!(d.get(0, 8), Some(40));
/// assert_eq!(d.get(0, 1), None);
/// assert_eq!(Distances::unknown().get(0, 0), None);
/// # Ok::<(), umrf::topology::TopologyError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Distances {
    ids: Vec<u32>,
    values: Vec<u32>,
}

impl Distances {
    /// No distance information.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Distances;
    /// assert!(!Distances::unknown().is_known());
    /// ```
    #[must_use]
    pub const fn unknown() -> Self {
        Self {
            ids: Vec::new(),
            values: Vec::new(),
        }
    }

    /// A matrix over node `ids`; `rows[i][j]` is the distance from `ids[i]`
    /// to `ids[j]`. The ids are sorted here, with rows and columns permuted
    /// to match.
    ///
    /// # Errors
    ///
    /// [`TopologyError::Inconsistent`] if an id repeats, or the number of rows
    /// or of values in a row is not the number of ids.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Distances;
    /// let d = Distances::from_rows(vec![1, 0], vec![vec![10, 20], vec![21, 10]])?;
    /// assert_eq!(d.node_ids(), [0, 1]);
    /// assert_eq!((d.get(1, 0), d.get(0, 1)), (Some(20), Some(21)));
    /// assert!(Distances::from_rows(vec![0], vec![vec![10, 20]]).is_err());
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    pub fn from_rows(ids: Vec<u32>, rows: Vec<Vec<u32>>) -> Result<Self, TopologyError> {
        let n = ids.len();
        if rows.len() != n {
            return Err(TopologyError::Inconsistent {
                what: format!("distance matrix has {} rows for {n} nodes", rows.len()),
            });
        }
        if let Some((i, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != n) {
            return Err(TopologyError::Inconsistent {
                what: format!(
                    "distance row of node {} has {} values for {n} nodes",
                    ids[i],
                    row.len()
                ),
            });
        }
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| ids[i]);
        if let Some(pair) = order.windows(2).find(|w| ids[w[0]] == ids[w[1]]) {
            return Err(TopologyError::Inconsistent {
                what: format!("node {} appears twice in the distance matrix", ids[pair[0]]),
            });
        }
        let values = order
            .iter()
            .flat_map(|&i| order.iter().map(move |&j| (i, j)))
            .map(|(i, j)| rows[i][j])
            .collect();
        let ids = order.iter().map(|&i| ids[i]).collect();
        Ok(Self { ids, values })
    }

    /// Whether a matrix is present.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Distances;
    /// assert!(Distances::from_rows(vec![0], vec![vec![10]])?.is_known());
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn is_known(&self) -> bool {
        !self.ids.is_empty()
    }

    /// The node ids the matrix covers, sorted.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Distances;
    /// assert!(Distances::unknown().node_ids().is_empty());
    /// ```
    #[must_use]
    pub fn node_ids(&self) -> &[u32] {
        &self.ids
    }

    /// Distance from node `from` to node `to`, if known.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Distances;
    /// let d = Distances::from_rows(vec![0, 1], vec![vec![10, 21], vec![21, 10]])?;
    /// assert_eq!(d.get(1, 1), Some(10));
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn get(&self, from: u32, to: u32) -> Option<u32> {
        let i = self.index_of(from)?;
        let j = self.index_of(to)?;
        self.values.get(i * self.ids.len() + j).copied()
    }

    /// The row of node `from`: distances to every node of
    /// [`Distances::node_ids`], in that order.
    ///
    /// # Examples
    ///
    /// ```
    /// use umrf::topology::Distances;
    /// let d = Distances::from_rows(vec![0, 1], vec![vec![10, 21], vec![21, 10]])?;
    /// assert_eq!(d.row(1), Some(&[21, 10][..]));
    /// # Ok::<(), umrf::topology::TopologyError>(())
    /// ```
    #[must_use]
    pub fn row(&self, from: u32) -> Option<&[u32]> {
        let n = self.ids.len();
        let i = self.index_of(from)?;
        self.values.get(i * n..(i + 1) * n)
    }

    /// Position of `id` in `ids`.
    fn index_of(&self, id: u32) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }
}
