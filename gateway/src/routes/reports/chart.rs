//! The flow report as an SVG image, drawn here so any client shows it without JavaScript (an
//! `<img>`, a wiki page, a mail): above, a cumulative flow diagram — the tasks in each status at the
//! end of each interval, stacked, done at the bottom; below, the tasks created and completed in each
//! interval as pairs of bars. Text is laid out with a size estimate (no font is loaded), so labels
//! are short and placed with room to spare; the viewer's sans-serif font draws them.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::types::{FlowInterval, FlowReport, StatusCounts};
use crate::error::ApiError;

/// The image's size in pixels.
const WIDTH: u32 = 960;
const HEIGHT: u32 = 720;
/// The cumulative flow diagram's share of the height; the bars take the rest.
const FLOW_HEIGHT: u32 = 420;
/// At most this many dates under each chart's horizontal axis.
const MAX_DATE_LABELS: usize = 12;

/// The bands of the diagram from the bottom up, each with its colour.
const BANDS: [(&str, RGBColor); 6] = [
    ("done", RGBColor(0x43, 0xa0, 0x47)),
    ("cancelled", RGBColor(0x9e, 0x9e, 0x9e)),
    ("in_review", RGBColor(0x8e, 0x24, 0xaa)),
    ("in_progress", RGBColor(0x1e, 0x88, 0xe5)),
    ("todo", RGBColor(0x90, 0xca, 0xf9)),
    ("backlog", RGBColor(0xe0, 0xe0, 0xe0)),
];
/// The bars' colours.
const CREATED: RGBColor = RGBColor(0xfb, 0x8c, 0x00);
const COMPLETED: RGBColor = RGBColor(0x2e, 0x7d, 0x32);

/// `report` as an SVG document.
///
/// # Errors
///
/// `Internal` if the drawing fails (it only writes to memory, so it should not).
pub(crate) fn render(report: &FlowReport) -> Result<String, ApiError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let (flow, bars) = root.split_vertically(FLOW_HEIGHT);
        cumulative_flow(&flow, report)?;
        created_and_completed(&bars, report)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

fn drawing(error: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("drawing the flow chart: {error}"))
}

/// The count of `band` in `counts`.
fn count_of(counts: &StatusCounts, band: &str) -> u64 {
    counts.bands().into_iter().find(|(name, _)| *name == band).map_or(0, |(_, count)| count)
}

/// The label under interval `x` (a position on the horizontal axis, interval `i` spanning
/// `i..i + 1`): its start's date, for one interval in every `step`.
fn date_label(report: &FlowReport, x: f64, step: usize) -> String {
    let i = x.floor();
    if i < 0.0 || (x - i).abs() > f64::EPSILON {
        return String::new();
    }
    let i = i as usize;
    match report.intervals.get(i) {
        Some(interval) if i.is_multiple_of(step) => interval.start.date().to_string(),
        _ => String::new(),
    }
}

/// One date label in every this many intervals.
fn label_step(report: &FlowReport) -> usize {
    report.intervals.len().div_ceil(MAX_DATE_LABELS).max(1)
}

/// The top of a vertical axis holding `max`: room above the highest value, and never empty.
fn axis_top(max: u64) -> f64 {
    (max.max(1) as f64 * 1.1).ceil()
}

/// A chart's drawing context: intervals along, tasks up.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A chart titled `title` on `area`, with an axis of the report's intervals (dated) and one of tasks
/// up to `top`.
fn axes<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: String,
    report: &FlowReport,
    top: u64,
) -> Result<Chart<'a, 'b>, ApiError> {
    let n = report.intervals.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..n as f64, 0.0..axis_top(top))
        .map_err(drawing)?;
    let step = label_step(report);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|x| date_label(report, *x, step))
        .y_desc("tasks")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(drawing)?;
    Ok(chart)
}

/// The legend of `chart`'s series, in its upper left corner.
fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> Result<(), ApiError> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .draw()
        .map_err(drawing)
}

/// A legend entry's swatch of `colour`.
fn swatch(colour: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
}

fn cumulative_flow(area: &DrawingArea<SVGBackend<'_>, Shift>, report: &FlowReport) -> Result<(), ApiError> {
    let top = report.intervals.iter().map(|i| i.statuses.bands().iter().map(|(_, c)| *c).sum::<u64>()).max();
    let mut chart = axes(area, format!("Cumulative flow by {}", report.interval), report, top.unwrap_or(0))?;
    // Each band is drawn as the area under the sum of it and every band below it, topmost first,
    // so each lower band paints over the part of the one above that is not its own.
    for level in (0..BANDS.len()).rev() {
        let (name, colour) = BANDS[level];
        let heights = report.intervals.iter().enumerate().map(|(i, interval)| {
            let height: u64 = BANDS[..=level].iter().map(|(band, _)| count_of(&interval.statuses, band)).sum();
            (i as f64 + 0.5, height as f64)
        });
        chart
            .draw_series(AreaSeries::new(heights, 0.0, colour.filled()).border_style(colour.stroke_width(1)))
            .map_err(drawing)?
            .label(name)
            .legend(swatch(colour));
    }
    legend(&mut chart)
}

/// One series of bars: its name, colour, offset in each interval and value.
type Bars = (&'static str, RGBColor, f64, fn(&FlowInterval) -> u64);

fn created_and_completed(area: &DrawingArea<SVGBackend<'_>, Shift>, report: &FlowReport) -> Result<(), ApiError> {
    let top = report.intervals.iter().map(|i| i.created.max(i.completed)).max();
    let mut chart = axes(area, format!("Created and completed by {}", report.interval), report, top.unwrap_or(0))?;
    // Two bars in each interval: created on its left half, completed on its right.
    let bars: [Bars; 2] = [("created", CREATED, 0.1, |i| i.created), ("completed", COMPLETED, 0.5, |i| i.completed)];
    for (name, colour, offset, value) in bars {
        let rectangles = report.intervals.iter().enumerate().map(move |(i, interval)| {
            let left = i as f64 + offset;
            Rectangle::new([(left, 0.0), (left + 0.4, value(interval) as f64)], colour.filled())
        });
        chart.draw_series(rectangles).map_err(drawing)?.label(name).legend(swatch(colour));
    }
    legend(&mut chart)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use time::macros::datetime;

    use super::super::types::{CycleTime, FlowInterval, FlowReport, StatusCounts};
    use super::*;

    /// Three weeks: created 4, 2, 6 and completed 1, 3, 0; the statuses at each end add up to the
    /// tasks created so far.
    fn report() -> FlowReport {
        let week = time::Duration::weeks(1);
        let start = datetime!(2026-11-02 00:00 UTC);
        let counts = [(4, 1, [1, 2, 0, 0, 1, 0]), (2, 3, [0, 1, 1, 0, 4, 0]), (6, 0, [2, 4, 1, 1, 3, 1])];
        let intervals = counts
            .iter()
            .enumerate()
            .map(|(i, (created, completed, [backlog, todo, in_progress, in_review, done, cancelled]))| {
                let from = start + week * i as i32;
                FlowInterval {
                    start: from,
                    end: from + week,
                    created: *created,
                    completed: *completed,
                    open: backlog + todo + in_progress + in_review,
                    statuses: StatusCounts {
                        backlog: *backlog,
                        todo: *todo,
                        in_progress: *in_progress,
                        in_review: *in_review,
                        done: *done,
                        cancelled: *cancelled,
                    },
                }
            })
            .collect();
        FlowReport {
            project_id: "0190b6a4-7c1e-7000-8000-0000000000a1".into(),
            from: start,
            to: start + week * 3,
            interval: "week".into(),
            intervals,
            cycle_time: CycleTime { count: 0, p50_seconds: None, p85_seconds: None },
            overdue: 0,
            by_assignee: vec![],
            by_label: vec![],
        }
    }

    /// `colour` as the SVG writes it.
    fn fill(colour: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2)
    }

    /// Every `<text>`'s content, trimmed, in document order.
    fn texts(svg: &roxmltree::Document<'_>) -> Vec<String> {
        svg.descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or_default().trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect()
    }

    fn number(node: roxmltree::Node<'_, '_>, attribute: &str) -> f64 {
        node.attribute(attribute).unwrap().parse().unwrap()
    }

    /// Whether `heights` are `counts` times one scale, give or take a pixel of rounding.
    fn proportional(heights: &[f64], counts: &[u64]) -> bool {
        let (height, count) = heights.iter().zip(counts).max_by_key(|(_, c)| **c).unwrap();
        let scale = height / *count as f64;
        heights.iter().zip(counts).all(|(h, c)| (h - scale * *c as f64).abs() <= 1.0)
    }

    #[test]
    fn the_svg_holds_both_charts_with_a_band_per_status_and_a_bar_per_count() {
        let report = report();

        let svg = render(&report).unwrap();

        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let root = doc.root_element();
        assert!(root.has_tag_name(("http://www.w3.org/2000/svg", "svg")));
        assert_eq!((root.attribute("width"), root.attribute("height")), (Some("960"), Some("720")));
        let texts = texts(&doc);
        for title in ["Cumulative flow by week", "Created and completed by week", "2026-11-02", "2026-11-16"] {
            assert!(texts.iter().any(|t| t == title), "{title} in {texts:?}");
        }
        // The legends, top down: the bands as stacked (done at the bottom), then the bars.
        let legend: Vec<&str> = texts
            .iter()
            .map(String::as_str)
            .filter(|t| BANDS.iter().any(|(band, _)| band == t) || ["created", "completed"].contains(t))
            .collect();
        assert_eq!(
            legend,
            ["backlog", "todo", "in_progress", "in_review", "cancelled", "done", "created", "completed"]
        );

        // One area per band, its top at each interval the sum of it and the bands below it.
        let polygons: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("polygon")).collect();
        assert_eq!(polygons.len(), BANDS.len());
        for (level, (band, colour)) in BANDS.iter().enumerate() {
            let polygon = polygons.iter().find(|p| p.attribute("fill") == Some(&fill(*colour))).expect(band);
            let points: Vec<(f64, f64)> = polygon
                .attribute("points")
                .unwrap()
                .split_whitespace()
                .map(|p| p.split_once(',').map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap())).unwrap())
                .collect();
            let baseline = points.last().unwrap().1;
            let heights: Vec<f64> = points[..report.intervals.len()].iter().map(|(_, y)| baseline - y).collect();
            let stacked: Vec<u64> = report
                .intervals
                .iter()
                .map(|i| BANDS[..=level].iter().map(|(b, _)| count_of(&i.statuses, b)).sum())
                .collect();
            assert!(proportional(&heights, &stacked), "{band}: {heights:?} for {stacked:?}");
        }

        // A bar per interval and count (and the legend's swatch), as high as the count.
        for (colour, counts) in [
            (CREATED, report.intervals.iter().map(|i| i.created).collect::<Vec<_>>()),
            (COMPLETED, report.intervals.iter().map(|i| i.completed).collect()),
        ] {
            let bars: Vec<f64> = doc
                .descendants()
                .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(&fill(colour)))
                .filter(|n| number(*n, "width") > 10.0)
                .map(|n| number(n, "height"))
                .collect();
            assert_eq!(bars.len(), report.intervals.len());
            assert!(proportional(&bars, &counts), "{bars:?} for {counts:?}");
        }
    }

    #[test]
    fn a_report_without_tasks_or_with_one_interval_still_draws() {
        let mut report = report();
        report.intervals.truncate(1);
        report.intervals[0].created = 0;
        report.intervals[0].completed = 0;
        report.intervals[0].statuses = StatusCounts::default();

        let svg = render(&report).unwrap();

        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("polygon")).count(), BANDS.len());
        assert!(texts(&doc).iter().any(|t| t == "2026-11-02"));
    }
}
