//! The font every drawn chart uses (replay plots, API charts), embedded so that drawing
//! needs no system font.

use std::sync::Once;

use plotters::style::FontStyle;

/// DejaVu Sans (see assets/fonts/LICENSE-DejaVu.txt), the font of every chart.
static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Registers the embedded font as `sans-serif` for plotters, once per process.
pub fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            tracing::warn!(message = "The embedded chart font did not load.");
        }
    });
}
