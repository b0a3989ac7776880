//! SVG bar charts of one group: a cluster of bars per case, one bar per implementation (its
//! median, labelled), whiskers from min to max, on a log scale. Drawn with plotters' SVG
//! backend, whose text is SVG `<text>`: no font files, no system libraries.

use std::path::Path;

use plotters::prelude::*;

use crate::measure::Row;

/// Fixed colours, so an implementation looks the same in every chart.
fn colour(imp: &str) -> RGBColor {
    match imp {
        "umrf" => RGBColor(214, 39, 40),
        "system" => RGBColor(31, 119, 180),
        "mimalloc" => RGBColor(44, 160, 44),
        "jemalloc" => RGBColor(255, 127, 14),
        "bumpalo" => RGBColor(148, 103, 189),
        "copy_ring" => RGBColor(140, 86, 75),
        "vec_free_list" => RGBColor(150, 150, 150),
        "atomic_pingpong" => RGBColor(90, 90, 90),
        _ => RGBColor(23, 190, 207),
    }
}

/// Draws `group`'s rows into `path`.
pub fn draw(rows: &[Row], group: &str, title: &str, path: &Path) -> Result<(), String> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.group == group).collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut cases: Vec<&str> = Vec::new();
    let mut impls: Vec<&str> = Vec::new();
    for r in &rows {
        if !cases.contains(&r.case.as_str()) {
            cases.push(&r.case);
        }
        if !impls.contains(&r.imp.as_str()) {
            impls.push(&r.imp);
        }
    }
    // Each case is one unit of x; the bars of the fullest case fill 80% of it, and every bar
    // has that width, its case's cluster centred.
    let most = cases
        .iter()
        .map(|c| rows.iter().filter(|r| r.case == *c).count())
        .max()
        .unwrap_or(1);
    let width = 0.8 / most as f64;
    let bar = |r: &Row| -> (f64, f64) {
        let case = cases.iter().position(|c| *c == r.case).unwrap_or(0);
        let here: Vec<&&Row> = rows.iter().filter(|o| o.case == r.case).collect();
        let slot = here.iter().position(|o| o.imp == r.imp).unwrap_or(0);
        let left = case as f64 + 0.5 - width * here.len() as f64 / 2.0 + slot as f64 * width;
        (left, left + width)
    };
    let low = rows.iter().map(|r| r.min_ns).fold(f64::INFINITY, f64::min);
    let high = rows.iter().map(|r| r.max_ns).fold(0.0, f64::max);
    let floor = 10f64.powf((low / 2.0).max(0.01).log10().floor());
    let ceiling = 10f64.powf((high * 20.0).log10().ceil());

    let bars = rows.len();
    let width = (220 + 48 * bars as u32).clamp(640, 1400);
    let backend = SVGBackend::new(path, (width, 460)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("chart {}: {e}", path.display());
    backend.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&backend)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..cases.len() as f64, (floor..ceiling).log_scale())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("case")
        .y_desc("ns per operation (log scale)")
        .x_labels(0)
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(|e| err(&e))?;

    for imp in &impls {
        let mine: Vec<&&Row> = rows.iter().filter(|r| r.imp == *imp).collect();
        let fill = colour(imp);
        chart
            .draw_series(mine.iter().map(|r| {
                let (x0, x1) = bar(r);
                Rectangle::new([(x0, floor), (x1, r.median_ns)], fill.filled())
            }))
            .map_err(|e| err(&e))?
            .label(imp.to_string())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], fill.filled()));
        chart
            .draw_series(mine.iter().map(|r| {
                let (x0, x1) = bar(r);
                let mid = (x0 + x1) / 2.0;
                PathElement::new(
                    vec![(mid, r.min_ns), (mid, r.max_ns)],
                    BLACK.stroke_width(1),
                )
            }))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(mine.iter().map(|r| {
                let (x0, _) = bar(r);
                Text::new(
                    format_ns(r.median_ns),
                    (x0, r.max_ns * 1.25),
                    ("sans-serif", 11).into_font(),
                )
            }))
            .map_err(|e| err(&e))?;
    }
    // The case names, centred under their clusters (drawn on the whole canvas: they lie below
    // the plotting area).
    let label_style = ("sans-serif", 14).into_font().color(&BLACK);
    for (i, case) in cases.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, floor));
        let half = (case.len() as i32 * 7) / 2;
        backend
            .draw(&Text::new(
                case.to_string(),
                (x - half, y + 6),
                label_style.clone(),
            ))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    backend.present().map_err(|e| err(&e))
}

/// A median as a short label: three significant figures.
fn format_ns(ns: f64) -> String {
    if ns >= 100.0 {
        format!("{ns:.0}")
    } else if ns >= 10.0 {
        format!("{ns:.1}")
    } else {
        format!("{ns:.2}")
    }
}
