//! `umrf check-log FILE`: replays an ownership log (JSON lines) and reports the first violation
//! of I1.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use umrf::events::{Validator, read_json_lines};

/// What a check found: the report to print and whether the log is valid.
pub struct Outcome {
    /// Lines for standard output.
    pub report: String,
    /// Whether every block had one owner at every step.
    pub valid: bool,
}

/// Reads and replays `path`.
///
/// # Errors
/// The file cannot be opened or a line is not an event (the line number is named).
pub fn check(path: &Path, allow_truncated: bool) -> Result<Outcome, String> {
    let file = File::open(path).map_err(|e| {
        format!(
            "cannot open the ownership log {}: {e}; pass the path of a JSON-lines log written by \
             umrf::events::JsonLines",
            path.display()
        )
    })?;
    let events = read_json_lines(BufReader::new(file))
        .map_err(|e| format!("{} is not an ownership log: {e}", path.display()))?;
    let validator = Validator::new().allow_truncated_history(allow_truncated);
    Ok(match validator.validate(events) {
        Ok(summary) => Outcome {
            report: format!(
                "{}: valid: {} events, {} blocks, {} outstanding at the end of the log",
                path.display(),
                summary.events,
                summary.blocks,
                summary.outstanding
            ),
            valid: true,
        },
        Err(error) => {
            let first = error
                .violations
                .iter()
                .min_by_key(|v| v.index)
                .map_or_else(String::new, ToString::to_string);
            let hint = if allow_truncated {
                ""
            } else {
                " (if the log came from rings that overwrote old events, rerun with \
                 --allow-truncated)"
            };
            Outcome {
                report: format!(
                    "{}: {} violation(s) of I1 in {} events; first: {first}{hint}",
                    path.display(),
                    error.violations.len(),
                    error.summary.events
                ),
                valid: false,
            }
        }
    })
}
