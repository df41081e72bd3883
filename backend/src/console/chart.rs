//! The overview's traffic chart: messages per minute over the last 24 hours, one line per
//! kind, drawn as SVG on the server (pure; no script).
use maud::{html, Markup};

/// The minutes a chart covers.
pub const MINUTES: usize = 24 * 60;
const KINDS: [(&str, &str); 4] = [
    ("accepted", "#3b7ddd"),
    ("delivered", "#2e9e44"),
    ("deferred", "#e39b1b"),
    ("bounced", "#c43d3d"),
];
const W: f64 = 960.0;
const H: f64 = 180.0;

/// `counts`: (minute as UNIX seconds, [accepted, delivered, deferred, bounced]); minutes
/// not given had none. `end`: the chart's last minute (UNIX seconds, whole minute).
pub fn traffic(counts: &[(i64, [i64; 4])], end: i64) -> Markup {
    let start = end - (MINUTES as i64 - 1) * 60;
    let mut series = vec![[0i64; 4]; MINUTES];
    for (minute, c) in counts {
        if (start..=end).contains(minute) {
            series[((minute - start) / 60) as usize] = *c;
        }
    }
    let peak = series
        .iter()
        .flat_map(|c| c.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |i: usize| i as f64 * W / (MINUTES - 1) as f64;
    let y = |v: i64| H - v as f64 * (H - 10.0) / peak as f64;
    let totals: Vec<i64> = (0..4).map(|k| series.iter().map(|c| c[k]).sum()).collect();
    html! {
        svg.traffic xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (W) " " (H + 20.0)} width="100%" role="img"
            aria-label="messages per minute, last 24 hours" {
            rect x="0" y="0" width=(W) height=(H) fill="#fff" stroke="#d5dbe5" {}
            text x="4" y="12" font-size="11" fill="#555" { "peak " (peak) "/min" }
            @for (k, (name, color)) in KINDS.iter().enumerate() {
                polyline fill="none" stroke=(color) stroke-width="1.2" data-kind=(name)
                    points=(points(&series, k, x, y)) {}
            }
            text x="0" y=(H + 15.0) font-size="11" fill="#555" { "24 h ago" }
            text x=(W - 30.0) y=(H + 15.0) font-size="11" fill="#555" { "now" }
        }
        p.legend {
            @for (k, (name, color)) in KINDS.iter().enumerate() {
                span style={"color:" (color)} { "■ " } (name) " " b data-total=(name) { (totals[k]) } "  "
            }
        }
    }
}

fn points(
    series: &[[i64; 4]],
    k: usize,
    x: impl Fn(usize) -> f64,
    y: impl Fn(i64) -> f64,
) -> String {
    let mut out = String::with_capacity(series.len() * 12);
    for (i, c) in series.iter().enumerate() {
        use std::fmt::Write;
        let _ = write!(out, "{:.1},{:.1} ", x(i), y(c[k]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_chart_counts_only_its_day() {
        let end = 1_800_000_000 / 60 * 60;
        let counts = [
            (end, [3, 2, 1, 0]),
            (end - 60, [1, 0, 0, 4]),
            (end - 86_400 * 2, [99, 0, 0, 0]),
        ];
        let svg = super::traffic(&counts, end).into_string();
        assert!(svg.contains(r#"data-total="accepted">4<"#), "{svg}");
        assert!(svg.contains(r#"data-total="bounced">4<"#));
        assert!(svg.contains("peak 4/min"));
        assert_eq!(svg.matches("<polyline").count(), 4);
    }
}
