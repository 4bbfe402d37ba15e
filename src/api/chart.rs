//! PNG charts of one series' rollups, for `GET /api/v1/agents/{id}/series/{metric}?format=png`:
//! the band between each step's min and max, its mean, and its p95 where there is one. Text in
//! the embedded font, so no system font is needed.

use plotters::prelude::*;

use crate::store::SeriesPoint;

/// Chart size, pixels.
const SIZE: (u32, u32) = (1000, 420);

/// Why a chart could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// plotters failed to draw.
    #[error("cannot draw the chart: {0}")]
    Draw(String),
    /// The PNG encoder failed.
    #[error("cannot encode the chart")]
    Encode(#[from] png::EncodingError),
}

/// What to draw: the points of one window.
pub struct SeriesChart<'a> {
    /// Caption, e.g. `worker-1 queue_size`.
    pub title: &'a str,
    /// Rollup points, oldest first.
    pub points: &'a [SeriesPoint],
    /// The window, epoch milliseconds.
    pub since_ms: i64,
    /// End of the window, epoch milliseconds.
    pub until_ms: i64,
    /// Width of a point, milliseconds.
    pub step_ms: i64,
}

/// Draws `chart` and encodes it as PNG.
pub fn series_png(chart: &SeriesChart<'_>) -> Result<Vec<u8>, ChartError> {
    crate::font::register_font();
    let (width, height) = SIZE;
    let mut rgb = vec![0u8; (width * height * 3) as usize];
    draw(chart, &mut rgb).map_err(|e| ChartError::Draw(e.to_string()))?;
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(png_bytes)
}

fn draw(chart: &SeriesChart<'_>, rgb: &mut [u8]) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    // Minutes from the window's start, so the axis is plain numbers; labels show UTC times.
    let minutes = |ts: i64| (ts - chart.since_ms) as f64 / 60_000.0;
    let span = minutes(chart.until_ms).max(1.0);
    let (low, high) = chart
        .points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| {
            (l.min(p.min), h.max(p.max))
        });
    let (low, high) = if low.is_finite() {
        (low, high)
    } else {
        (0.0, 1.0)
    };
    let pad = ((high - low) * 0.1).max(1e-6);
    let since = chart.since_ms;
    let caption = if chart.points.is_empty() {
        format!("{} (no rollups in this window)", chart.title)
    } else {
        format!("{} (per {} s)", chart.title, chart.step_ms / 1000)
    };
    let mut plot = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..span, (low - pad)..(high + pad))?;
    plot.configure_mesh()
        .x_desc("UTC")
        .x_label_formatter(&|m| {
            let ts = since + (m * 60_000.0) as i64;
            crate::clock::rfc3339(ts)
                .get(11..16)
                .unwrap_or_default()
                .to_string()
        })
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let blue = RGBColor(31, 119, 180);
    let width = chart.step_ms as f64 / 60_000.0;
    plot.draw_series(chart.points.iter().map(|p| {
        let x = minutes(p.ts_ms);
        Rectangle::new([(x, p.min), (x + width, p.max)], blue.mix(0.18).filled())
    }))?
    .label("min to max")
    .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], blue.mix(0.18).filled()));
    let centre = |p: &SeriesPoint| minutes(p.ts_ms) + width / 2.0;
    plot.draw_series(LineSeries::new(
        chart.points.iter().map(|p| (centre(p), p.mean)),
        blue.stroke_width(2),
    ))?
    .label("mean")
    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2)));
    let red = RGBColor(214, 39, 40);
    plot.draw_series(
        chart
            .points
            .iter()
            .filter_map(|p| Some(Circle::new((centre(p), p.p95?), 3, red.filled()))),
    )?
    .label("p95")
    .legend(move |(x, y)| Circle::new((x + 10, y), 3, red.filled()));
    plot.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_a_png_of_the_chart_size() {
        let points: Vec<SeriesPoint> = (0..30)
            .map(|i| SeriesPoint {
                ts_ms: i * 60_000,
                min: i as f64,
                max: i as f64 + 5.0,
                mean: i as f64 + 2.0,
                count: 10,
                p95: (i % 2 == 0).then_some(i as f64 + 4.0),
            })
            .collect();
        for points in [&points[..], &[]] {
            let png_bytes = series_png(&SeriesChart {
                title: "w-1 queue_size",
                points,
                since_ms: 0,
                until_ms: 30 * 60_000,
                step_ms: 60_000,
            })
            .unwrap();
            let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
            let reader = decoder.read_info().unwrap();
            let info = reader.info();
            assert_eq!((info.width, info.height), SIZE);
        }
    }
}
