//! SVG plots of experiment results, drawn with plotters' SVG backend. Its text is laid out
//! by a fixed estimate (no host fonts), so the same data gives the same bytes anywhere.

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

/// Colours of the series, in order: ring 3, ring 0, then others.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One panel of bars: a group per label, a bar per series in each group.
#[derive(Debug)]
pub struct BarPanel {
    pub title: String,
    pub groups: Vec<String>,
    /// (name, a value per group), all positive (the axis is logarithmic).
    pub series: Vec<(String, Vec<f64>)>,
}

const WIDTH: u32 = 1200;
const PANEL_HEIGHT: u32 = 380;
const TITLE_HEIGHT: u32 = 50;
const FOOTER_HEIGHT: u32 = 30;

/// Panels of grouped bars on logarithmic axes, two panels a row, under `title`, with
/// `footer` (the provenance) at the bottom.
pub fn grouped_bars(title: &str, y_label: &str, footer: &str, panels: &[BarPanel]) -> String {
    let rows = panels.len().div_ceil(2) as u32;
    let height = TITLE_HEIGHT + rows * PANEL_HEIGHT + FOOTER_HEIGHT;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let (head, body) =
            page(&root, TITLE_HEIGHT + rows * PANEL_HEIGHT, footer).split_vertically(TITLE_HEIGHT);
        head.titled(title, ("sans-serif", 24)).expect("in memory");
        for (area, panel) in body.split_evenly((rows as usize, 2)).iter().zip(panels) {
            draw_panel(area, y_label, panel);
        }
        root.present().expect("in memory");
    }
    svg
}

fn draw_panel(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    y_label: &str,
    panel: &BarPanel,
) {
    let values = panel.series.iter().flat_map(|(_, v)| v.iter().copied());
    let (low, high) = decades(values);
    // A decade of headroom for the legend.
    let high = high * 10.0;
    let groups = panel.groups.len();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(60)
        .y_label_area_size(90)
        // Group i is centred on x = i, so that the axis's whole-number key points fall
        // on the groups.
        .build_cartesian_2d(-0.5..groups as f64 - 0.5, (low..high).log_scale())
        .expect("in memory");
    let labels = panel.groups.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(y_label)
        .x_labels(groups)
        .x_label_style(("sans-serif", 11))
        .x_label_formatter(&|x| category_label(&labels, *x))
        .y_label_formatter(&|v| grouped(*v))
        .draw()
        .expect("in memory");
    let series = panel.series.len();
    for (s, (name, values)) in panel.series.iter().enumerate() {
        let color = PALETTE[s % PALETTE.len()];
        let bars = values.iter().enumerate().map(|(group, &value)| {
            // Each group's 0.8 of width is split among the series.
            let width = 0.8 / series as f64;
            let left = group as f64 - 0.4 + width * s as f64;
            Rectangle::new(
                [
                    (left + 0.05 * width, low),
                    (left + 0.95 * width, value.max(low)),
                ],
                color.filled(),
            )
        });
        chart
            .draw_series(bars)
            .expect("in memory")
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    draw_legend(&mut chart);
}

/// Bars of stacked segments: a series per segment kind, a value per bar.
#[derive(Debug)]
pub struct Stacks {
    pub bars: Vec<String>,
    /// (name, a value per bar), bottom first.
    pub series: Vec<(String, Vec<f64>)>,
}

/// Stacked bars on a linear axis.
pub fn stacked_bars(title: &str, y_label: &str, footer: &str, stacks: &Stacks) -> String {
    let bars = stacks.bars.len();
    let total = |bar: usize| -> f64 { stacks.series.iter().map(|(_, v)| v[bar]).sum() };
    let high = (0..bars).map(total).fold(0.0, f64::max).max(1.0) * 1.35;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(
            &mut svg,
            (WIDTH / 2 + 200, PANEL_HEIGHT * 3 / 2 + FOOTER_HEIGHT),
        )
        .into_drawing_area();
        let body = page(&root, PANEL_HEIGHT * 3 / 2, footer);
        let mut chart = ChartBuilder::on(&body)
            .caption(title, ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(100)
            .build_cartesian_2d(-0.5..bars as f64 - 0.5, 0.0..high)
            .expect("in memory");
        let labels = stacks.bars.clone();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_label)
            .x_labels(bars)
            .x_label_formatter(&|x| category_label(&labels, *x))
            .y_label_formatter(&|v| grouped(*v))
            .draw()
            .expect("in memory");
        let mut bottoms = vec![0.0; bars];
        for (s, (name, values)) in stacks.series.iter().enumerate() {
            let color = PALETTE[s % PALETTE.len()];
            let segments: Vec<_> = values
                .iter()
                .enumerate()
                .map(|(bar, &value)| {
                    let bottom = bottoms[bar];
                    bottoms[bar] += value;
                    Rectangle::new(
                        [
                            (bar as f64 - 0.3, bottom),
                            (bar as f64 + 0.3, bottom + value),
                        ],
                        color.filled(),
                    )
                })
                .collect();
            chart
                .draw_series(segments)
                .expect("in memory")
                .label(name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        draw_legend(&mut chart);
        root.present().expect("in memory");
    }
    svg
}

/// A white page whose bottom strip holds `footer`; the area above it, `body_height` high.
fn page<'a>(
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
    body_height: u32,
    footer: &str,
) -> DrawingArea<SVGBackend<'a>, plotters::coord::Shift> {
    root.fill(&WHITE).expect("in memory");
    let (body, foot) = root.split_vertically(body_height);
    foot.draw_text(footer, &("sans-serif", 12).into_text_style(&foot), (10, 8))
        .expect("in memory");
    body
}

/// The label of category `x` on an axis whose categories sit on the whole numbers; none
/// between them.
fn category_label(labels: &[String], x: f64) -> String {
    let category = x.round();
    match labels.get(category as usize) {
        Some(label) if (x - category).abs() < 1e-9 && category >= 0.0 => label.clone(),
        _ => String::new(),
    }
}

/// The series' names and colours, in the plot's upper left corner.
fn draw_legend<'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
) {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .expect("in memory");
}

/// A line through points, in the next colour of the palette.
#[derive(Debug)]
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Points marked in the colour of curve `series`, each with a label (empty: none).
#[derive(Debug)]
pub struct Marks {
    pub series: usize,
    pub points: Vec<(f64, f64, String)>,
}

/// A published range at one x, drawn as a bar with its label.
#[derive(Debug)]
pub struct Band {
    pub x: f64,
    pub low: f64,
    pub high: f64,
    pub label: String,
}

/// What the y axis shows.
#[derive(Clone, Copy, Debug)]
pub enum YAxis {
    /// A ratio on a logarithmic axis, with a line at 1.
    Ratio,
    /// A percentage on a linear axis, with a line at 0.
    Percent,
}

/// Curves against a logarithmic x axis, with marks and a published band.
#[derive(Debug)]
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub footer: &'a str,
    pub y: YAxis,
    pub curves: &'a [Curve],
    pub marks: &'a [Marks],
    pub band: Option<&'a Band>,
}

impl LineChart<'_> {
    pub fn to_svg(&self) -> String {
        let xs = self
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.0));
        let ys = self
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.1));
        let marked = self.marks.iter().flat_map(|m| m.points.iter());
        let band = self.band.iter().flat_map(|b| [(b.x, b.low), (b.x, b.high)]);
        let xs: Vec<f64> = xs
            .chain(marked.clone().map(|p| p.0))
            .chain(band.clone().map(|p| p.0))
            .collect();
        let ys: Vec<f64> = ys
            .chain(marked.map(|p| p.1))
            .chain(band.map(|p| p.1))
            .collect();
        let x = decades(xs.into_iter());
        match self.y {
            YAxis::Ratio => {
                let (low, high) = decades(ys.into_iter().chain([1.0]));
                self.draw(x, (low..high).log_scale(), 1.0, short)
            }
            YAxis::Percent => {
                let low = ys.iter().copied().fold(0.0, f64::min);
                let high = ys.iter().copied().fold(0.0, f64::max);
                let margin = (high - low) * 0.1;
                self.draw(x, low - margin..high + 3.0 * margin, 0.0, |v| {
                    format!("{v:+.0}")
                })
            }
        }
    }

    fn draw<Y>(
        &self,
        (x_low, x_high): (f64, f64),
        y: Y,
        reference: f64,
        y_format: fn(f64) -> String,
    ) -> String
    where
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, 2 * PANEL_HEIGHT + FOOTER_HEIGHT))
                .into_drawing_area();
            let body = page(&root, 2 * PANEL_HEIGHT, self.footer);
            let mut chart = ChartBuilder::on(&body)
                .caption(self.title, ("sans-serif", 24))
                .margin(16)
                .x_label_area_size(50)
                .y_label_area_size(80)
                .build_cartesian_2d((x_low..x_high).log_scale(), y)
                .expect("in memory");
            chart
                .configure_mesh()
                .x_desc(self.x_label)
                .y_desc(self.y_label)
                .x_label_formatter(&|v| short(*v))
                .y_label_formatter(&|v| y_format(*v))
                .draw()
                .expect("in memory");
            chart
                .draw_series(LineSeries::new(
                    [(x_low, reference), (x_high, reference)],
                    BLACK.mix(0.5).stroke_width(1),
                ))
                .expect("in memory");
            if let Some(band) = self.band {
                let grey = RGBColor(120, 120, 120);
                chart
                    .draw_series(LineSeries::new(
                        [(band.x, band.low), (band.x, band.high)],
                        grey.mix(0.6).stroke_width(10),
                    ))
                    .expect("in memory");
                chart
                    .draw_series([Text::new(
                        band.label.clone(),
                        (band.x * 1.15, band.high),
                        ("sans-serif", 12),
                    )])
                    .expect("in memory");
            }
            for (i, curve) in self.curves.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                chart
                    .draw_series(LineSeries::new(curve.points.clone(), color.stroke_width(2)))
                    .expect("in memory")
                    .label(curve.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(
                        curve
                            .points
                            .iter()
                            .map(|&p| Circle::new(p, 2, color.filled())),
                    )
                    .expect("in memory");
            }
            for mark in self.marks {
                let color = PALETTE[mark.series % PALETTE.len()];
                chart
                    .draw_series(mark.points.iter().map(|(x, y, label)| {
                        EmptyElement::at((*x, *y))
                            + Circle::new((0, 0), 4, color.filled())
                            + Text::new(label.clone(), (6, -12), ("sans-serif", 11))
                    }))
                    .expect("in memory");
            }
            draw_legend(&mut chart);
            root.present().expect("in memory");
        }
        svg
    }
}

/// A value on a logarithmic axis: whole numbers grouped, fractions to their first digit.
fn short(value: f64) -> String {
    if value >= 1.0 {
        grouped(value)
    } else {
        let digits = (-value.log10().floor()) as usize;
        format!("{value:.digits$}")
    }
}

/// The powers of ten that enclose every value.
fn decades(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if low > high {
        return (1.0, 10.0);
    }
    // A value within a factor of 2 of the floor would be a sliver: a decade lower then.
    let floor =
        low.log10().floor() - f64::from(u8::from(low < 2.0 * 10f64.powf(low.log10().floor())));
    (
        10f64.powf(floor),
        10f64.powf(high.log10().ceil().max(floor + 1.0)),
    )
}

/// A whole number with thousands separators: 1,000,000.
pub fn grouped(value: f64) -> String {
    let whole = value.round() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut text = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            text.push(',');
        }
        text.push(digit);
    }
    if whole < 0 {
        format!("−{text}")
    } else {
        text
    }
}
