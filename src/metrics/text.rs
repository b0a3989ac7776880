//! The Prometheus text exposition format, version 0.0.4: HELP and TYPE lines, samples with
//! escaped labels.
//!
//! Format reference: <https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format>.

use core::fmt::{self, Write};

/// The type of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A sample value: integers are written exactly, whatever their size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Value {
    Int(u64),
    Float(f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v.is_infinite() => {
                f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" })
            }
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

/// Writes one family's header: `# HELP` (escaped) and `# TYPE`.
pub(crate) fn header(out: &mut String, name: &str, help: &str, kind: Kind) {
    let _ = write!(out, "# HELP {name} ");
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    let _ = writeln!(out, "\n# TYPE {name} {}", kind.as_str());
}

/// Writes one sample line: `name{label="value",...} value`.
pub(crate) fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: Value) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, text)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label(out, text);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_label(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_help_are_escaped_and_values_exact() {
        let mut out = String::new();
        header(&mut out, "x_total", "a \\ b\nc", Kind::Counter);
        sample(
            &mut out,
            "x_total",
            &[("pool", "a\"b\\c\nd"), ("slot", "0")],
            Value::Int(u64::MAX),
        );
        sample(&mut out, "y", &[], Value::Float(f64::INFINITY));
        sample(&mut out, "y", &[], Value::Float(0.25));
        assert_eq!(
            out,
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\n\
             x_total{pool=\"a\\\"b\\\\c\\nd\",slot=\"0\"} 18446744073709551615\ny +Inf\ny 0.25\n"
        );
    }
}
