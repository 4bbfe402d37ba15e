//! A page of the Prometheus text exposition format (0.0.4), written in place.

use std::fmt::Write as _;

/// The page being written.
#[derive(Default)]
pub(super) struct Page {
    /// The text so far.
    pub(super) out: String,
}

impl Page {
    /// Writes the HELP and TYPE lines of a family.
    pub(super) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// Writes one sample line.
    pub(super) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        // Written in place, without a string per label or value: a scrape of a large fleet
        // writes a line for every metric of every agent.
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(label);
                self.out.push_str("=\"");
                escape_label(&mut self.out, value);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        number(&mut self.out, value);
        self.out.push('\n');
    }
}

/// Appends `value` with the text format's escapes.
fn escape_label(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends a value as the text format writes it.
fn number(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value == f64::INFINITY {
        out.push_str("+Inf");
    } else if value == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_labels_are_written_as_the_format_says() {
        let mut page = Page::default();
        page.family("x", "gauge", "Line one\nback\\slash.");
        page.sample("x", &[("agent", "a\"b\\c\nd"), ("pool", "p")], f64::NAN);
        page.sample("x", &[], f64::INFINITY);
        page.sample("x", &[], -2.5);
        assert_eq!(
            page.out,
            "# HELP x Line one\\nback\\\\slash.\n# TYPE x gauge\n\
             x{agent=\"a\\\"b\\\\c\\nd\",pool=\"p\"} NaN\nx +Inf\nx -2.5\n"
        );
        // What it writes, the scraper reads back.
        let read = crate::ingest::scrape::text::parse(&page.out).unwrap();
        assert_eq!(read.series[0].label("agent"), Some("a\"b\\c\nd"));
    }
}
