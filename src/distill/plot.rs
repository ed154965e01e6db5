//! Test-accuracy curves as an SVG figure (no fonts or system libraries needed).

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};

/// One run's curve: a label and `(epoch, test accuracy %)` points.
#[derive(Clone, Debug)]
pub struct Curve {
    /// The legend entry.
    pub label: String,
    /// `(epoch, accuracy)` points, in order.
    pub points: Vec<(f64, f64)>,
}

const COLOURS: [RGBColor; 6] = [BLACK, RED, BLUE, GREEN, MAGENTA, RGBColor(230, 140, 0)];

/// Draws `curves` (test accuracy against epoch) into the SVG file `path`, titled `title`.
pub fn write_curves(path: &Path, title: &str, curves: &[Curve]) -> Result<()> {
    let err = |e: String| Error::invalid("plot", format!("{}: {e}", path.display()));
    let points = || curves.iter().flat_map(|c| c.points.iter().copied());
    let max_epoch = points().map(|p| p.0).fold(1.0, f64::max);
    let low = points().map(|p| p.1).fold(100.0, f64::min);
    let low = ((low - 2.0) / 5.0).floor().clamp(0.0, 19.0) * 5.0;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_epoch, low..100.0)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_labels(max_epoch as usize + 1)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("epoch")
        .y_desc("test accuracy (%)")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, curve) in curves.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(curve.points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(|e| err(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(curve.points.iter().copied(), colour.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(curve.label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_an_svg_with_every_label() {
        let dir = std::env::temp_dir().join(format!("iekd-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("curves.svg");
        let curves = vec![
            Curve { label: "teacher".into(), points: vec![(1.0, 70.0), (2.0, 80.0)] },
            Curve { label: "ie-ft".into(), points: vec![(1.0, 60.0), (2.0, 75.5), (3.0, 81.0)] },
        ];
        write_curves(&path, "accuracy", &curves).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{}", &svg[..40]);
        assert!(svg.contains("teacher") && svg.contains("ie-ft") && svg.contains("<polyline"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
