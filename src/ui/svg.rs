//! Charts drawn on the server as SVG (pure): the page carries them inline,
//! so the Content-Security-Policy stays free of script. Colours come from
//! the stylesheet (`.chart .good`, `.bad`, named by each series, and
//! `currentColor` for text), so
//! a chart follows the light and dark themes; each chart has a title and a
//! description for screen readers, and the page shows its numbers as a
//! table beside it.

use std::fmt::Write;

/// One bar: its label and the lengths of its stacked segments.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub segments: Vec<f64>,
}

const WIDTH: f64 = 640.0;
const LABEL: f64 = 200.0;
const ROW: f64 = 24.0;
const BAR: f64 = 16.0;
const LEGEND: f64 = 24.0;

/// Escapes text for SVG (pure).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number for a chart's text: whole numbers without decimals.
fn number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Horizontal bars with stacked segments named by `legend` (each with the
/// stylesheet's class that colours it), each bar's total at its end (pure).
/// `title` names the chart; `None` when there is no bar.
pub fn bars(title: &str, legend: &[(&str, &str)], bars: &[Bar]) -> Option<String> {
    if bars.is_empty() {
        return None;
    }
    let most = bars
        .iter()
        .map(|b| b.segments.iter().sum::<f64>())
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let plot = WIDTH - LABEL - 60.0;
    let height = LEGEND + ROW * bars.len() as f64 + 4.0;
    let mut s = String::new();
    let id = title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>();
    let _ = write!(
        s,
        r#"<svg class="chart" role="img" aria-labelledby="chart-{id}" viewBox="0 0 {WIDTH} {height}" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg"><title id="chart-{id}">{}</title>"#,
        escape(title)
    );
    // The legend.
    let mut x = LABEL;
    for (name, class) in legend {
        let _ = write!(
            s,
            r#"<rect class="{class}" x="{x}" y="4" width="12" height="12"/><text x="{}" y="14">{}</text>"#,
            x + 16.0,
            escape(name)
        );
        x += 24.0 + 8.0 * name.chars().count() as f64;
    }
    for (row, b) in bars.iter().enumerate() {
        let y = LEGEND + ROW * row as f64;
        let label: String = b.label.chars().take(28).collect();
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL - 8.0,
            y + 13.0,
            escape(&label)
        );
        let mut at = LABEL;
        for (i, v) in b.segments.iter().enumerate() {
            let w = plot * v.max(0.0) / most;
            if w > 0.0 {
                let (name, class) = legend.get(i).copied().unwrap_or_default();
                let _ = write!(
                    s,
                    r#"<rect class="{class}" x="{at:.1}" y="{y}" width="{w:.1}" height="{BAR}"><title>{}: {}</title></rect>"#,
                    escape(name),
                    number(*v)
                );
            }
            at += w;
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}">{}</text>"#,
            at + 6.0,
            y + 13.0,
            number(b.segments.iter().sum())
        );
    }
    s.push_str("</svg>");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_longest_and_escape_every_label() {
        let svg = bars(
            "Changes by team",
            &[("Ready", "good"), ("Stalled", "bad")],
            &[
                Bar {
                    label: "team-a".into(),
                    segments: vec![3.0, 1.0],
                },
                Bar {
                    label: "<script>alert(1)</script>".into(),
                    segments: vec![0.0, 2.0],
                },
            ],
        )
        .unwrap();
        assert!(svg.starts_with("<svg class=\"chart\" role=\"img\""), "{svg}");
        assert!(svg.contains("<title id=\"chart-changes-by-team\">Changes by team</title>"));
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"), "{svg}");
        // The longest bar (4) spans the plot (380); 3 of it is 285, 1 is 95.
        assert!(
            svg.contains(r#"<rect class="good" x="200.0" y="24" width="285.0" height="16">"#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<rect class="bad" x="485.0" y="24" width="95.0" height="16">"#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<rect class="bad" x="200.0" y="48" width="190.0" height="16">"#),
            "{svg}"
        );
        assert!(!svg.contains(r#"width="0.0""#), "an empty segment is not drawn");
        assert!(
            svg.contains(">4</text>") && svg.contains(">2</text>"),
            "totals at the ends"
        );
        assert_eq!(bars("Nothing", &[("Ready", "good")], &[]), None);
    }
}
