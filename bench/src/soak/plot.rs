//! The soak's samples drawn as a PNG: one panel per quantity, minutes along the bottom.

use std::path::Path;

use anyhow::{anyhow, Context};
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::samples::Sample;

/// Debian's `fonts-dejavu-core`: plotters draws text with a font it is given, and finds none itself.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

struct Panel {
    title: &'static str,
    unit: &'static str,
    value: fn(&Sample) -> f64,
    /// A part of `value`, drawn in blue beneath it.
    part: Option<fn(&Sample) -> f64>,
}

const MIB: f64 = 1024.0 * 1024.0;

const PANELS: [Panel; 4] = [
    Panel {
        title: "resident memory (black), of which anonymous: heap and stacks (blue)",
        unit: "MiB",
        value: |s| s.rss_bytes as f64 / MIB,
        part: Some(|s| s.anon_bytes as f64 / MIB),
    },
    Panel {
        title: "open descriptors (black), of which connections (blue)",
        unit: "count",
        value: |s| s.fds as f64,
        part: Some(|s| s.connections as f64),
    },
    Panel {
        title: "rooms in memory",
        unit: "rooms",
        value: |s| s.rooms as f64,
        part: None,
    },
    Panel {
        title: "storage on disk",
        unit: "MiB",
        value: |s| s.storage_bytes as f64 / MIB,
        part: None,
    },
];

/// Draws `samples` to `path`, with `title` on top and the end of the warm-up marked.
pub fn draw(
    path: &Path,
    title: &str,
    samples: &[Sample],
    warm_up_minutes: f64,
) -> anyhow::Result<()> {
    let font = std::fs::read(FONT)
        .with_context(|| format!("cannot read {FONT} (install fonts-dejavu-core)"))?;
    // plotters keeps fonts for the life of the process.
    plotters::style::register_font("sans-serif", FontStyle::Normal, font.leak())
        .map_err(|_| anyhow!("{FONT} is no font plotters can use"))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let root = BitMapBackend::new(path, (1200, 1200)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing)?;
    let root = root.titled(title, ("sans-serif", 26)).map_err(drawing)?;
    let minutes = samples.last().map_or(1.0, |s| s.seconds / 60.0).max(1.0);
    for (area, panel) in root.split_evenly((PANELS.len(), 1)).iter().zip(&PANELS) {
        let points = |value: fn(&Sample) -> f64| {
            samples
                .iter()
                .map(move |s| (s.seconds / 60.0, value(s)))
                .collect::<Vec<_>>()
        };
        let top = samples.iter().map(panel.value).fold(0.0, f64::max).max(1.0) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(panel.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..minutes, 0.0..top)
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc(panel.unit)
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(drawing)?;
        chart
            .draw_series(LineSeries::new(
                [(warm_up_minutes, 0.0), (warm_up_minutes, top)],
                RGBColor(200, 200, 200).stroke_width(2),
            ))
            .map_err(drawing)?;
        if let Some(part) = panel.part {
            chart
                .draw_series(LineSeries::new(points(part), BLUE.stroke_width(2)))
                .map_err(drawing)?;
        }
        chart
            .draw_series(LineSeries::new(points(panel.value), BLACK.stroke_width(2)))
            .map_err(drawing)?;
    }
    root.present().map_err(drawing)?;
    Ok(())
}

fn drawing<E: std::error::Error + Send + Sync + 'static>(err: E) -> anyhow::Error {
    anyhow!("cannot draw the plot: {err}")
}
