//! Charts of replays: demand, the ready agents' capacity at the SLO line, and the agents paid
//! for, over time; one strategy or several on one chart. PNG, text in an embedded font.

use std::path::Path;

use plotters::prelude::*;

use super::{SLO_UTILIZATION, TickRecord};

/// Horizontal resolution of the chart: ticks are summarised into this many columns at most.
const COLUMNS: usize = 1400;
/// Strategy colours, in order.
const COLOURS: [RGBColor; 3] = [RGBColor(214, 39, 40), RGBColor(31, 119, 180), GREEN];

/// One strategy's ticks, named.
pub struct Run<'a> {
    /// The strategy.
    pub name: &'a str,
    /// Every simulated tick.
    pub ticks: &'a [TickRecord],
}

/// One column of the chart: the extremes of the ticks it covers.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Column {
    hours: f64,
    demand: f64,
    capacity: f64,
    agents: usize,
    overloaded: bool,
}

/// `ticks` summarised into columns, timed in hours from `origin_ms`.
fn columns(ticks: &[TickRecord], origin_ms: i64) -> Vec<Column> {
    if ticks.is_empty() {
        return Vec::new();
    }
    let count = ticks.len().min(COLUMNS);
    let mut out: Vec<Option<Column>> = vec![None; count];
    for (index, tick) in ticks.iter().enumerate() {
        let capacity = tick.ready as f64 * SLO_UTILIZATION;
        let column = &mut out[index * count / ticks.len()];
        let hours = (tick.ms - origin_ms) as f64 / 3_600_000.0;
        let overloaded = tick.demand > capacity;
        *column = Some(match *column {
            None => Column {
                hours,
                demand: tick.demand,
                capacity,
                agents: tick.agents,
                overloaded,
            },
            // The worst of the column: most demand, least capacity, most agents.
            Some(c) => Column {
                hours: c.hours,
                demand: c.demand.max(tick.demand),
                capacity: c.capacity.min(capacity),
                agents: c.agents.max(tick.agents),
                overloaded: c.overloaded || overloaded,
            },
        });
    }
    out.into_iter().flatten().collect()
}

/// Draws `runs` over one trace into a PNG at `path`, time counted from `origin_ms`.
pub fn draw(path: &Path, title: &str, runs: &[Run<'_>], origin_ms: i64) -> anyhow::Result<()> {
    crate::font::register_font();
    let summaries: Vec<Vec<Column>> = runs
        .iter()
        .map(|run| columns(run.ticks, origin_ms))
        .collect();
    let last = |pick: fn(&[Column]) -> Option<&Column>| {
        summaries
            .iter()
            .filter_map(|c| pick(c))
            .map(|c| c.hours)
            .reduce(f64::max)
            .unwrap_or(0.0)
    };
    let (start_hours, end_hours) = (last(|c| c.first()), last(|c| c.last()));
    let hours = end_hours.max(start_hours + 1e-3);
    // Headroom above the curves for the legend.
    let top = summaries
        .iter()
        .flatten()
        .map(|c| c.demand.max(c.agents as f64))
        .fold(1.0, f64::max)
        * 1.45;
    // Long traces read better in days.
    let (unit, per_unit) = if hours - start_hours > 72.0 {
        ("days", 24.0)
    } else {
        ("hours", 1.0)
    };
    let (from, span) = (start_hours / per_unit, hours / per_unit);
    let root = BitMapBackend::new(path, (1600, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(from..span, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc(format!("{unit} since the trace's start"))
        .y_desc("agent capacities")
        .label_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    if let Some(columns) = summaries.first() {
        let demand = columns.iter().map(|c| (c.hours / per_unit, c.demand));
        chart
            .draw_series(LineSeries::new(demand, BLACK.stroke_width(1)))?
            .label("demand")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    }
    let rug = top / 60.0;
    for (index, (run, columns)) in runs.iter().zip(&summaries).enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let agents = columns
            .iter()
            .map(|c| (c.hours / per_unit, c.agents as f64));
        chart
            .draw_series(LineSeries::new(agents, colour.stroke_width(2)))?
            .label(format!("{}: agents (starting and ready)", run.name))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        let faded = colour.mix(0.45);
        let capacity = columns.iter().map(|c| (c.hours / per_unit, c.capacity));
        chart
            .draw_series(LineSeries::new(capacity, faded.stroke_width(1)))?
            .label(format!(
                "{}: 85% of ready capacity (overloaded: rug)",
                run.name
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], faded));
        // A rug under the curves where the run was overloaded.
        let band = (index as f64 * rug, (index as f64 + 1.0) * rug * 0.9);
        let step = (span - from) / columns.len().max(1) as f64;
        chart.draw_series(columns.iter().filter(|c| c.overloaded).map(|c| {
            let x = c.hours / per_unit;
            Rectangle::new([(x, band.0), (x + step, band.1)], colour.filled())
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 15))
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
    fn columns_keep_the_worst_of_the_ticks_they_cover() {
        let ticks: Vec<TickRecord> = (0..3000)
            .map(|i| TickRecord {
                ms: i * 15_000,
                demand: if i == 1001 { 30.0 } else { 5.0 },
                ready: if i == 1002 { 1 } else { 10 },
                agents: 10,
            })
            .collect();
        let columns = columns(&ticks, 0);
        assert_eq!(columns.len(), COLUMNS);
        let peak = columns
            .iter()
            .find(|c| c.demand == 30.0)
            .expect("spike kept");
        assert!(peak.overloaded);
        assert!(columns.iter().any(|c| c.capacity == SLO_UTILIZATION));
        assert_eq!(columns.iter().filter(|c| c.overloaded).count(), 1);
    }
}
