//! The chart of a report: per job, one bar per tool and mode, the median
//! latency in milliseconds on a log scale (jobs differ a hundredfold), drawn
//! as SVG by plotters.

use std::path::Path;

use plotters::prelude::*;

use super::report::Report;
use super::BenchError;

/// Colours of the series, in order of first appearance.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(174, 199, 232),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// The 1-2-5 values from `lo` to `hi`: round ticks for a log axis.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = m * decade;
            if (lo..=hi).contains(&v) {
                out.push(v);
            }
        }
        decade *= 10.0;
    }
    out
}

/// Write the chart of `report` to `path` (SVG).
pub fn write_svg(report: &Report, path: &Path) -> Result<(), BenchError> {
    let draw_err = |e: String| BenchError::Write(path.to_path_buf(), std::io::Error::other(e));
    let mut jobs: Vec<&str> = Vec::new();
    let mut series: Vec<(String, String)> = Vec::new();
    for r in &report.results {
        if !jobs.contains(&r.job.as_str()) {
            jobs.push(&r.job);
        }
        let key = (r.tool.clone(), r.mode.name().to_string());
        if !series.contains(&key) {
            series.push(key);
        }
    }
    if jobs.is_empty() {
        return Err(draw_err("no results to draw".into()));
    }
    let max = report
        .results
        .iter()
        .map(|r| r.median_ms)
        .fold(1.0f64, f64::max);
    let min = report
        .results
        .iter()
        .map(|r| r.median_ms)
        .filter(|m| *m > 0.0)
        .fold(max, f64::min);
    // Where the log axis, and every bar, starts.
    let axis_min = (min / 2.0).max(0.1);
    let height =
        140 + 28 * jobs.len() as u32 * series.len().max(1) as u32 / 2 + 40 * jobs.len() as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(e.to_string()))?;
    let title = format!(
        "median latency per job, ms (log scale; lower is better): {}x{} JPEG, {} cores, {}",
        report.input.width, report.input.height, report.machine.cores, report.machine.cpu
    );
    let n = series.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(110)
        .build_cartesian_2d(
            // Room on the right for the legend; ticks at 1, 2 and 5 times
            // each power of ten (a log axis's own ticks crowd at the top).
            (axis_min..max * 4.0)
                .log_scale()
                .with_key_points(ticks(axis_min, max * 4.0)),
            0.0..jobs.len() as f64,
        )
        .map_err(|e| draw_err(e.to_string()))?;
    let job_names: Vec<String> = jobs.iter().map(|s| s.to_string()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(jobs.len() * 2 + 1)
        .y_label_formatter(&|y| {
            // Label the middle of each job's band.
            // The first job at the top.
            let i = y.floor() as usize;
            if (y - y.floor() - 0.5).abs() < 1e-6 && i < job_names.len() {
                job_names[job_names.len() - 1 - i].clone()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("milliseconds")
        .draw()
        .map_err(|e| draw_err(e.to_string()))?;
    for (si, (tool, mode)) in series.iter().enumerate() {
        let colour = PALETTE[si % PALETTE.len()];
        let bars: Vec<_> = report
            .results
            .iter()
            .filter(|r| &r.tool == tool && r.mode.name() == mode)
            .filter_map(|r| {
                let ji = (jobs.len() - 1 - jobs.iter().position(|j| *j == r.job)?) as f64;
                // The first series at the top of the job's band.
                let top = ji + 0.9 - 0.8 * si as f64 / n;
                let bottom = top - 0.8 / n;
                Some(Rectangle::new(
                    [(axis_min, top), (r.median_ms.max(0.1), bottom)],
                    colour.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| draw_err(e.to_string()))?
            .label(format!("{tool} ({mode})"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| draw_err(e.to_string()))?;
    root.present().map_err(|e| draw_err(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_are_1_2_5_within_the_range() {
        assert_eq!(
            super::ticks(60.0, 6000.0),
            [100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0]
        );
        assert_eq!(super::ticks(0.1, 0.3), [0.1, 0.2]);
    }
}
