//! What a run reports: the results table, the ratios of umrf to its best peer and to the
//! hardware limit (with the targets, reported, never asserted), and the JSON file.
//!
//! Every group module declares its [`Comparison`]s next to its contenders, so the definition
//! of "best peer" for each ratio is written where the peers are, and printed with the ratio.

use std::fmt::Write as _;
use std::path::Path;

use crate::measure::Row;

/// What a ratio is taken against.
#[derive(Clone, Copy, Debug)]
pub enum Against {
    /// The fastest of the comparison's peers (lowest median).
    Peer,
    /// The comparison's limit row.
    Limit,
}

/// A target from the issue, as `umrf median / other median <= max_ratio` (times, so lower is
/// better for umrf; a throughput target of "3x" is a time ratio of 1/3).
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub against: Against,
    pub max_ratio: f64,
    /// The target as the issue states it.
    pub text: &'static str,
}

/// One ratio line: umrf's row of a case against a set of peer rows and a limit row.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub group: &'static str,
    pub umrf_case: &'static str,
    /// A short qualifier shown after `group/case`, e.g. "as specified".
    pub variant: &'static str,
    /// The peer rows considered, as (case, impl); the best is the one with the lowest median.
    pub peers: Vec<(&'static str, &'static str)>,
    /// What "best peer" means here, in words.
    pub peer_definition: &'static str,
    /// The hardware or data-structure limit, as (case, impl).
    pub limit: Option<(&'static str, &'static str)>,
    pub targets: Vec<Target>,
}

impl Comparison {
    pub fn new(group: &'static str, umrf_case: &'static str) -> Self {
        Comparison {
            group,
            umrf_case,
            variant: "",
            peers: Vec::new(),
            peer_definition: "",
            limit: None,
            targets: Vec::new(),
        }
    }

    pub fn variant(mut self, variant: &'static str) -> Self {
        self.variant = variant;
        self
    }

    /// Peers: every impl of `impls` in every case of `cases`, defined in words as `definition`.
    pub fn peers(
        mut self,
        cases: &[&'static str],
        impls: &[&'static str],
        definition: &'static str,
    ) -> Self {
        for &case in cases {
            for &imp in impls {
                self.peers.push((case, imp));
            }
        }
        self.peer_definition = definition;
        self
    }

    pub fn limit(mut self, case: &'static str, imp: &'static str) -> Self {
        self.limit = Some((case, imp));
        self
    }

    pub fn target(mut self, against: Against, max_ratio: f64, text: &'static str) -> Self {
        self.targets.push(Target {
            against,
            max_ratio,
            text,
        });
        self
    }

    fn label(&self) -> String {
        if self.variant.is_empty() {
            format!("{}/{}", self.group, self.umrf_case)
        } else {
            format!("{}/{} ({})", self.group, self.umrf_case, self.variant)
        }
    }
}

fn find<'r>(rows: &'r [Row], group: &str, case: &str, imp: &str) -> Option<&'r Row> {
    rows.iter()
        .find(|r| r.group == group && r.case == case && r.imp == imp)
}

/// A comparison evaluated on one run's rows.
struct Evaluated<'r> {
    umrf: &'r Row,
    best_peer: Option<&'r Row>,
    limit: Option<&'r Row>,
}

/// `a`'s time over `b`'s, as the median of the ratios of samples taken in the same round.
///
/// Both rows' samples are in round order and each round measures every contender of a group
/// once, close together in time, so a change of the machine (a hypervisor moving the virtual
/// CPUs, other load) divides out of each ratio, where a ratio of medians could pair a median
/// taken in one state with one taken in another. Rows with unpaired samples fall back to the
/// ratio of medians.
pub fn ratio(a: &Row, b: &Row) -> f64 {
    if a.samples.len() != b.samples.len() || a.samples.is_empty() {
        return a.median_ns / b.median_ns;
    }
    let mut ratios: Vec<f64> = a
        .samples
        .iter()
        .zip(&b.samples)
        .map(|(x, y)| x / y)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let mid = ratios.len() / 2;
    if ratios.len() % 2 == 1 {
        ratios[mid]
    } else {
        (ratios[mid - 1] + ratios[mid]) / 2.0
    }
}

fn evaluate<'r>(c: &Comparison, rows: &'r [Row]) -> Option<Evaluated<'r>> {
    let umrf = find(rows, c.group, c.umrf_case, "umrf")?;
    // The best peer is the one umrf compares worst against, round by round.
    let best_peer = c
        .peers
        .iter()
        .filter_map(|&(case, imp)| find(rows, c.group, case, imp))
        .max_by(|a, b| ratio(umrf, a).total_cmp(&ratio(umrf, b)));
    let limit = c
        .limit
        .and_then(|(case, imp)| find(rows, c.group, case, imp));
    Some(Evaluated {
        umrf,
        best_peer,
        limit,
    })
}

fn row_name(row: &Row, umrf_case: &str) -> String {
    if row.case == umrf_case {
        format!("`{}`", row.imp)
    } else {
        format!("`{}` ({})", row.imp, row.case)
    }
}

/// The name, median and umrf's ratio of the row umrf is compared with, or dashes.
fn cells(umrf: &Row, other: Option<&Row>, umrf_case: &str) -> [String; 3] {
    match other {
        Some(o) => [
            row_name(o, umrf_case),
            format!("{:.2}", o.median_ns),
            format!("{:.2}", ratio(umrf, o)),
        ],
        None => ["–".into(), "–".into(), "–".into()],
    }
}

/// The results of one group as a markdown table.
pub fn group_table(rows: &[Row], group: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| case | impl | median ns | min ns | max ns | reps |");
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|");
    for r in rows.iter().filter(|r| r.group == group) {
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {:.2} | {:.2} | {:.2} | {} |",
            r.case, r.imp, r.median_ns, r.min_ns, r.max_ns, r.reps
        );
    }
    out
}

/// The ratio table: umrf against the best peer and the limit, with the targets.
pub fn ratio_table(rows: &[Row], comparisons: &[Comparison]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| comparison | umrf ns | best peer | peer ns | umrf ÷ peer | limit | limit ns | umrf ÷ limit | target | result |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---|---:|---:|---|---|");
    for c in comparisons {
        let Some(e) = evaluate(c, rows) else { continue };
        let [peer, peer_ns, peer_ratio] = cells(e.umrf, e.best_peer, c.umrf_case);
        let [limit, limit_ns, limit_ratio] = cells(e.umrf, e.limit, c.umrf_case);
        let mut targets = Vec::new();
        let mut results = Vec::new();
        for t in &c.targets {
            let other = match t.against {
                Against::Peer => e.best_peer,
                Against::Limit => e.limit,
            };
            targets.push(t.text.to_string());
            results.push(match other {
                Some(o) if ratio(e.umrf, o) <= t.max_ratio => "met".to_string(),
                Some(_) => "**missed**".to_string(),
                None => "not measured".to_string(),
            });
        }
        let _ = writeln!(
            out,
            "| `{}` | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.label(),
            e.umrf.median_ns,
            peer,
            peer_ns,
            peer_ratio,
            limit,
            limit_ns,
            limit_ratio,
            if targets.is_empty() {
                "–".to_string()
            } else {
                targets.join("; ")
            },
            if results.is_empty() {
                "–".to_string()
            } else {
                results.join("; ")
            },
        );
    }
    out
}

/// What "best peer" means in each comparison, as a markdown list.
pub fn peer_definitions(comparisons: &[Comparison]) -> String {
    let mut out = String::new();
    for c in comparisons {
        if !c.peer_definition.is_empty() {
            let _ = writeln!(out, "- `{}`: {}", c.label(), c.peer_definition);
        }
    }
    out
}

/// A function writing rows to a file.
pub type Writer = fn(&[Row], &Path) -> std::io::Result<()>;

/// Writes the rows as a JSON array, one object per row, creating the folder if needed:
/// `{"group", "case", "impl", "median_ns", "min_ns", "max_ns", "reps"}`.
pub fn write_json(rows: &[Row], path: &Path) -> std::io::Result<()> {
    write_rows(rows, path, |r| {
        serde_json::json!({
            "group": r.group,
            "case": r.case,
            "impl": r.imp,
            "median_ns": r.median_ns,
            "min_ns": r.min_ns,
            "max_ns": r.max_ns,
            "reps": r.reps,
        })
    })
}

/// Writes every sample of every row, in the order taken (rounds interleave the contenders of
/// a group, so sample `i` of two rows of one group were taken close together): for telling
/// a drift of the machine from a difference between implementations.
pub fn write_samples(rows: &[Row], path: &Path) -> std::io::Result<()> {
    write_rows(rows, path, |r| {
        serde_json::json!({
            "group": r.group,
            "case": r.case,
            "impl": r.imp,
            "samples_ns": r.samples,
        })
    })
}

fn write_rows(
    rows: &[Row],
    path: &Path,
    object: impl Fn(&Row) -> serde_json::Value,
) -> std::io::Result<()> {
    let array: Vec<serde_json::Value> = rows.iter().map(object).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(&array).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}
