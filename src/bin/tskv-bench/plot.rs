//! Charts of a run as SVG, drawn with `plotters` (SVG backend only): the latency percentile
//! spectrum (HdrHistogram's classic plot), throughput and p99 over time, and a rate ramp's
//! latency against rate. Pure apart from the files [`write_charts`] writes: what to draw
//! comes in a [`RunCharts`], which [`crate::runfile`] reads from a JSON report or an
//! HdrHistogram interval log.
//!
//! The spectrum's x axis is HdrHistogram's: a percentile p is drawn at 1 / (1 - p / 100)
//! on a log scale, so 90%, 99%, 99.9% ... are equally spaced and the tail gets the room.

use std::error::Error;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Width of every chart, in pixels.
pub const CHART_WIDTH_PX: u32 = 1000;
/// Height of every chart's plot, in pixels; the caption adds its lines below.
pub const CHART_HEIGHT_PX: u32 = 576;
/// Height of one caption line, in pixels.
const CAPTION_LINE_HEIGHT_PX: u32 = 15;
/// Characters per caption line before it wraps.
const CAPTION_LINE_CHARS: usize = 150;
/// Highest percentile a spectrum is drawn to: 99.9999% (x = 10^6).
const SPECTRUM_X_MAX: f64 = 1e6;
/// Points per halving of the remaining tail when a histogram becomes a spectrum
/// (HdrHistogram's `outputPercentileDistribution` uses 5 too).
const SPECTRUM_TICKS_PER_HALF: u32 = 5;

/// One named line: (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Legend text, e.g. `GET corrected`.
    pub label: String,
    /// The points; for a spectrum (percentile in %, latency in µs).
    pub points: Vec<(f64, f64)>,
}

/// One interval of the run's timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimelinePoint {
    /// Interval end, seconds since the end of warm-up (a ramp: since the first step's).
    pub end_s: f64,
    /// Answered requests per second over the interval.
    pub ops_per_s: f64,
    /// p99 latency over the interval (open loop: corrected), µs.
    pub p99_us: f64,
}

/// One step of a rate ramp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampPoint {
    /// Intended rate, ops/s.
    pub target_per_s: f64,
    /// Answered requests per second.
    pub achieved_per_s: f64,
    /// Corrected p50, µs.
    pub p50_us: f64,
    /// Corrected p99, µs.
    pub p99_us: f64,
    /// Corrected p99.9, µs.
    pub p99_9_us: f64,
}

/// Everything the charts of one run show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunCharts {
    /// What was run, e.g. `open loop at 5000 ops/s; SET:GET 1:10; ...`.
    pub title: String,
    /// The host and the flags, one entry a line (wrapped when drawn).
    pub caption: Vec<String>,
    /// Latency spectra, one per command and kind of latency.
    pub spectra: Vec<Curve>,
    /// Throughput and p99 per interval.
    pub timeline: Vec<TimelinePoint>,
    /// Rate ramp steps.
    pub ramp: Vec<RampPoint>,
}

type DrawResult<T> = Result<T, Box<dyn Error>>;

/// A figure of a timeline point or a ramp step that a series draws.
type Field<T> = fn(&T) -> f64;

/// The spectrum of a nanosecond histogram: (percentile in %, latency in µs), up to
/// 99.9999% and without the 100% point (it has no place on the log axis).
pub fn spectrum_points(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    if histogram.is_empty() {
        return points;
    }
    for step in histogram.iter_quantiles(SPECTRUM_TICKS_PER_HALF) {
        let quantile = step.quantile_iterated_to();
        if quantile >= 1.0 || 1.0 / (1.0 - quantile) > SPECTRUM_X_MAX {
            break;
        }
        let point = (quantile * 100.0, step.value_iterated_to() as f64 / 1e3);
        if points.last() != Some(&point) {
            points.push(point);
        }
    }
    points
}

/// Where percentile `percent` lies on the spectrum's x axis: 1 / (1 - p).
fn spectrum_x(percent: f64) -> f64 {
    (100.0 / (100.0 - percent).max(100.0 / SPECTRUM_X_MAX)).clamp(1.0, SPECTRUM_X_MAX)
}

/// The axis label of x = 1 / (1 - p): the percentile with as many decimals as it needs.
fn percentile_label(x: &f64) -> String {
    let percent = 100.0 * (1.0 - 1.0 / x.max(1.0));
    let decimals = (x.log10().round() as usize).saturating_sub(2);
    format!("{percent:.decimals$}%")
}

/// Series colours: the ten of matplotlib's `tab10`, readable on white and told apart.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The colour of series `index` (repeating after ten).
fn colour(index: usize) -> RGBColor {
    COLOURS[index % COLOURS.len()]
}

/// An axis number without decimals once it is large enough not to need them.
fn number_label(value: &f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// Draws the caption lines (wrapped) in `area`.
fn draw_caption(area: &DrawingArea<SVGBackend<'_>, Shift>, caption: &[String]) -> DrawResult<()> {
    let style = ("sans-serif", 12).into_font().color(&BLACK.mix(0.8));
    for (i, line) in caption_lines(caption).into_iter().enumerate() {
        let y = 4 + i as u32 * CAPTION_LINE_HEIGHT_PX;
        area.draw(&Text::new(line, (10, y as i32), style.clone()))?;
    }
    Ok(())
}

/// The caption as drawn: every entry wrapped.
fn caption_lines(caption: &[String]) -> Vec<String> {
    caption
        .iter()
        .flat_map(|l| wrap(l, CAPTION_LINE_CHARS))
        .collect()
}

/// Width and height of a chart whose caption is `caption`.
fn canvas_size(caption: &[String]) -> (u32, u32) {
    let lines = caption_lines(caption).len() as u32;
    (
        CHART_WIDTH_PX,
        CHART_HEIGHT_PX + 8 + lines * CAPTION_LINE_HEIGHT_PX,
    )
}

/// Splits `text` at spaces into lines of at most `width` characters (longer words alone).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let line = lines.last_mut().expect("never empty");
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// The chart area and the caption area of a fresh white SVG.
fn split_canvas<'a>(
    root: &DrawingArea<SVGBackend<'a>, Shift>,
) -> DrawResult<(
    DrawingArea<SVGBackend<'a>, Shift>,
    DrawingArea<SVGBackend<'a>, Shift>,
)> {
    root.fill(&WHITE)?;
    Ok(root.split_vertically(CHART_HEIGHT_PX))
}

/// The largest y of `curves`, padded by 10% (at least `floor`).
fn y_max(curves: &[Curve], floor: f64) -> f64 {
    let max = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    (max * 1.1).max(floor)
}

/// Latency against percentile for each curve, on HdrHistogram's log percentile axis.
///
/// # Errors
/// A drawing error of plotters.
pub fn spectrum_svg(title: &str, caption: &[String], curves: &[Curve]) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, canvas_size(caption)).into_drawing_area();
        let (plot, foot) = split_canvas(&root)?;
        let x_end = curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| spectrum_x(p.0)))
            .fold(100.0, f64::max);
        let x_end = 10f64.powf(x_end.log10().ceil()).min(SPECTRUM_X_MAX);
        let mut chart = ChartBuilder::on(&plot)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .margin_right(40)
            .x_label_area_size(44)
            .y_label_area_size(80)
            .build_cartesian_2d((1.0..x_end).log_scale(), 0.0..y_max(curves, 1.0))?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&percentile_label)
            .y_label_formatter(&number_label)
            .x_desc("percentile (log scale of 1 / (1 - percentile))")
            .y_desc("latency (µs)")
            .draw()?;
        for (i, curve) in curves.iter().enumerate() {
            let style = colour(i).stroke_width(2);
            let points = curve.points.iter().map(|&(p, us)| (spectrum_x(p), us));
            chart
                .draw_series(LineSeries::new(points, style))?
                .label(curve.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        draw_caption(&foot, caption)?;
        root.present()?;
    }
    Ok(svg)
}

/// Throughput (top) and p99 latency (bottom) per interval.
///
/// # Errors
/// A drawing error of plotters.
pub fn timeline_svg(run: &RunCharts) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, canvas_size(&run.caption)).into_drawing_area();
        let (plot, foot) = split_canvas(&root)?;
        let title = format!("throughput and p99 over time: {}", run.title);
        let plot = plot.titled(&title, ("sans-serif", 18))?;
        let (upper, lower) = plot.split_vertically(plot.dim_in_pixel().1 / 2);
        let t_end = run.timeline.iter().map(|p| p.end_s).fold(1.0, f64::max) * 1.05;
        let panels: [(&DrawingArea<_, _>, &str, &str, Field<TimelinePoint>); 2] = [
            (&upper, "throughput", "throughput (ops/s)", |p| p.ops_per_s),
            (&lower, "p99", "p99 latency (µs)", |p| p.p99_us),
        ];
        for (i, (area, label, y_desc, value)) in panels.into_iter().enumerate() {
            let top = run.timeline.iter().map(value).fold(0.0, f64::max);
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(80)
                .build_cartesian_2d(0.0..t_end, 0.0..(top * 1.1).max(1.0))?;
            chart
                .configure_mesh()
                .x_desc("time since the end of warm-up (s)")
                .y_desc(y_desc)
                .y_label_formatter(&number_label)
                .draw()?;
            let style = colour(i).stroke_width(2);
            let points: Vec<(f64, f64)> =
                run.timeline.iter().map(|p| (p.end_s, value(p))).collect();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, style.filled())))?;
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()?;
        }
        draw_caption(&foot, &run.caption)?;
        root.present()?;
    }
    Ok(svg)
}

/// Corrected latency (p50, p99, p99.9, log scale) against the ramp's target rate, with the
/// achieved rate as a second series on the right axis: where the two part is the knee.
///
/// # Errors
/// A drawing error of plotters.
pub fn ramp_svg(run: &RunCharts) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, canvas_size(&run.caption)).into_drawing_area();
        let (plot, foot) = split_canvas(&root)?;
        let steps = &run.ramp;
        let rate_max = steps
            .iter()
            .map(|s| s.target_per_s.max(s.achieved_per_s))
            .fold(1.0, f64::max)
            * 1.05;
        let latency_min = steps
            .iter()
            .map(|s| s.p50_us)
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min);
        let latency_min = if latency_min.is_finite() {
            10f64.powf(latency_min.log10().floor())
        } else {
            1.0
        };
        let latency_max = steps
            .iter()
            .map(|s| s.p99_9_us)
            .fold(latency_min * 10.0, f64::max);
        let latency_max = 10f64.powf(latency_max.log10().ceil());
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                format!("corrected latency against rate: {}", run.title),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(80)
            .right_y_label_area_size(80)
            .build_cartesian_2d(0.0..rate_max, (latency_min..latency_max).log_scale())?
            .set_secondary_coord(0.0..rate_max, 0.0..rate_max);
        chart
            .configure_mesh()
            .x_desc("target rate (ops/s)")
            .y_desc("corrected latency (µs, log scale)")
            .x_label_formatter(&number_label)
            .y_label_formatter(&number_label)
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("achieved rate (ops/s)")
            .y_label_formatter(&number_label)
            .draw()?;
        let latencies: [(&str, Field<RampPoint>); 3] = [
            ("p50 corrected", |s| s.p50_us),
            ("p99 corrected", |s| s.p99_us),
            ("p99.9 corrected", |s| s.p99_9_us),
        ];
        for (i, (label, value)) in latencies.into_iter().enumerate() {
            let style = colour(i).stroke_width(2);
            let points: Vec<(f64, f64)> = steps
                .iter()
                .map(|s| (s.target_per_s, value(s).max(latency_min)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, style.filled())))?;
        }
        let style = BLACK.stroke_width(2);
        let achieved: Vec<(f64, f64)> = steps
            .iter()
            .map(|s| (s.target_per_s, s.achieved_per_s))
            .collect();
        chart
            .draw_secondary_series(LineSeries::new(achieved.iter().copied(), style))?
            .label("achieved ops/s (right axis)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        draw_caption(&foot, &run.caption)?;
        root.present()?;
    }
    Ok(svg)
}

/// Writes every chart `run` has data for into `dir` (created if missing):
/// `latency-spectrum.svg`, `timeline.svg`, `ramp.svg`. Returns the files written.
///
/// # Errors
/// A drawing error, or the I/O error of creating the directory or writing a file.
pub fn write_charts(run: &RunCharts, dir: &Path) -> DrawResult<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut charts = Vec::new();
    if !run.spectra.is_empty() {
        let title = format!("latency by percentile: {}", run.title);
        charts.push((
            "latency-spectrum.svg",
            spectrum_svg(&title, &run.caption, &run.spectra)?,
        ));
    }
    if !run.timeline.is_empty() {
        charts.push(("timeline.svg", timeline_svg(run)?));
    }
    if !run.ramp.is_empty() {
        charts.push(("ramp.svg", ramp_svg(run)?));
    }
    let mut written = Vec::new();
    for (name, svg) in charts {
        let path = dir.join(name);
        std::fs::write(&path, svg).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn percentiles_map_to_the_log_axis_and_back() {
        assert_eq!(spectrum_x(0.0), 1.0);
        assert!((spectrum_x(99.0) - 100.0).abs() < 1e-9);
        assert_eq!(percentile_label(&1.0), "0%");
        assert_eq!(percentile_label(&10.0), "90%");
        assert_eq!(percentile_label(&100.0), "99%");
        assert_eq!(percentile_label(&1000.0), "99.9%");
        assert_eq!(percentile_label(&1e5), "99.999%");
    }

    #[test]
    fn a_spectrum_rises_to_the_tail_in_microseconds() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 1_000).unwrap();
        }
        let points = spectrum_points(&h);
        assert!(points.len() > 20, "{} points", points.len());
        assert!(points
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        let (p, us) = *points.last().unwrap();
        assert!(p > 99.9 && p < 100.0, "{p}");
        assert!(us > 9_900.0 && us <= 10_010.0, "{us}");
        assert!(spectrum_points(&new_histogram()).is_empty());
    }

    #[test]
    fn captions_wrap_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh x", 3), vec!["abcdefgh", "x"]);
    }
}
