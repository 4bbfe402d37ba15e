//! The report's charts as inline SVG, drawn with plotters: each pool's size against its
//! bounds, its CPU and error rate, and every pool's response time.

use plotters::prelude::*;

use crate::domain::time::rfc3339;
use crate::report::{PoolChart, Report};

/// Chart size, pixels.
const SIZE: (u32, u32) = (580, 260);

/// Colours of successive series.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One line of a chart: a name and its points (epoch ms, value).
struct Line {
    name: String,
    points: Vec<(i64, f64)>,
    color: RGBColor,
    dashed: bool,
}

impl Line {
    fn new(name: impl Into<String>, points: Vec<(i64, f64)>, color: RGBColor) -> Self {
        Line {
            name: name.into(),
            points,
            color,
            dashed: false,
        }
    }
}

/// Every chart of `report`, each a titled SVG document.
pub fn charts(report: &Report) -> Vec<(String, String)> {
    crate::font::register_font();
    let (since, until) = (report.window.since_ms, report.window.until_ms);
    let mut out = Vec::new();
    for pool in &report.charts {
        if pool.points.is_empty() {
            continue;
        }
        out.push(chart(
            &format!("Pool {}: agents", pool.pool),
            since,
            until,
            &size_lines(pool, since, until),
        ));
        let series = |f: fn(&crate::report::ChartPoint) -> Option<f64>| -> Vec<(i64, f64)> {
            pool.points
                .iter()
                .filter_map(|p| Some((p.ts_ms, f(p)?)))
                .collect()
        };
        out.push(chart(
            &format!("Pool {}: CPU per agent and error rate (%)", pool.pool),
            since,
            until,
            &[
                Line::new("CPU %", series(|p| p.utilisation_percent), PALETTE[0]),
                Line::new("errors %", series(|p| p.error_rate_percent), PALETTE[1]),
            ],
        ));
    }
    let response: Vec<Line> = report
        .charts
        .iter()
        .enumerate()
        .map(|(i, pool)| {
            Line::new(
                pool.pool.clone(),
                pool.points
                    .iter()
                    .filter_map(|p| Some((p.ts_ms, p.response_time_ms?)))
                    .collect(),
                PALETTE[i % PALETTE.len()],
            )
        })
        .filter(|l| !l.points.is_empty())
        .collect();
    if !response.is_empty() {
        out.push(chart(
            "Mean response time by pool (ms)",
            since,
            until,
            &response,
        ));
    }
    out
}

fn size_lines(pool: &PoolChart, since: i64, until: i64) -> Vec<Line> {
    let mut lines = vec![Line::new(
        "agents",
        pool.points.iter().map(|p| (p.ts_ms, p.agents)).collect(),
        PALETTE[0],
    )];
    for (name, bound, color) in [
        ("min_agents", pool.min_agents, PALETTE[2]),
        ("max_agents", pool.max_agents, PALETTE[1]),
    ] {
        if let Some(bound) = bound {
            let mut line = Line::new(
                name,
                vec![(since, bound as f64), (until, bound as f64)],
                color,
            );
            line.dashed = true;
            lines.push(line);
        }
    }
    lines
}

/// One chart as an SVG document; a chart that cannot be drawn says so in its place.
fn chart(title: &str, since: i64, until: i64, lines: &[Line]) -> (String, String) {
    let mut svg = String::new();
    if let Err(error) = draw(&mut svg, title, since, until, lines) {
        tracing::warn!(message = "A report chart could not be drawn.", title, %error);
        svg = format!("<p>({}: not drawn)</p>", super::html::escape(title));
    }
    (title.to_string(), svg)
}

fn draw(
    svg: &mut String,
    title: &str,
    since: i64,
    until: i64,
    lines: &[Line],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let hours = |ts: i64| (ts - since) as f64 / 3_600_000.0;
    let span = hours(until).max(1.0 / 60.0);
    let values = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let high = values.clone().fold(f64::NEG_INFINITY, f64::max);
    let low = values.fold(f64::INFINITY, f64::min).min(0.0);
    let high = if high.is_finite() { high } else { 1.0 };
    let pad = ((high - low) * 0.1).max(1e-6);
    let mut plot = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..span, low..(high + pad))?;
    // About one label a step, at most six: no two labels show the same minute.
    let minutes = ((until - since) / 60_000).max(1) as usize;
    plot.configure_mesh()
        .x_labels(minutes.clamp(2, 6))
        .x_label_formatter(&|h| {
            let time = rfc3339(since + (h * 3_600_000.0).round() as i64);
            time.get(5..16).unwrap_or_default().replace('T', " ")
        })
        .label_style(("sans-serif", 11))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for line in lines {
        let color = line.color;
        let points = line.points.iter().map(|&(ts, v)| (hours(ts), v));
        let style = color.stroke_width(2);
        if line.dashed {
            plot.draw_series(DashedLineSeries::new(points, 6, 4, style))?
        } else {
            plot.draw_series(LineSeries::new(points, style))?
        }
        .label(line.name.clone())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    plot.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 11))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
