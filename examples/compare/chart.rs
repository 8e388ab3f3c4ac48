//! One SVG chart per kernel: throughput against size.

use std::path::Path;

use crate::BoxResult;
use crate::report::KernelSummary;
use crate::roofline::Roofline;
use crate::timing::{Column, Row};

/// Throughput against size, one line per column, with the crossovers
/// marked and the host roofline dashed: GB/s for memory-bound kernels,
/// GFLOP/s for the others.
pub(crate) fn chart(
    path: &Path,
    k: &KernelSummary,
    rows: &[&Row],
    roof: &Roofline,
) -> BoxResult<()> {
    use plotters::prelude::*;
    let Some(last) = rows.last() else {
        return Ok(());
    };
    let host_bw = roof.host_bandwidth(&last.work);
    let memory_bound = last.work.bytes() as f64 / host_bw >= last.work.flops as f64 / roof.fma;
    let (unit, limit) = if memory_bound {
        ("GB/s", host_bw / 1e9)
    } else {
        ("GFLOP/s", roof.fma / 1e9)
    };
    let rate = |r: &Row, t: f64| {
        if memory_bound {
            r.work.bytes() as f64 / t / 1e9
        } else {
            r.work.flops as f64 / t / 1e9
        }
    };
    // x: log2 of the size, so every size of a power-of-two sweep gets a tick.
    let series: Vec<(Column, Vec<(f64, f64)>)> = Column::ALL
        .iter()
        .map(|&c| {
            let pts = rows
                .iter()
                .filter_map(|r| Some(((r.n as f64).log2(), rate(r, r.get(c)?))))
                .filter(|p| p.1.is_finite() && p.1 > 0.0)
                .collect();
            (c, pts)
        })
        .filter(|(_, p): &(Column, Vec<(f64, f64)>)| !p.is_empty())
        .collect();
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((limit, limit), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (x0, x1) = (
        (rows[0].n as f64).log2() - 0.25,
        (last.n as f64).log2() + 0.25,
    );

    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "{} ({}, {}): throughput vs size",
        k.name, k.family, k.element
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, (lo / 2.0..hi * 8.0).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(((x1 - x0).ceil() as usize + 1).min(24))
        .x_desc(format!("{} (log scale)", k.axis.label))
        .y_desc(format!("{unit} (log scale)"))
        .x_label_formatter(&|v| {
            if (v - v.round()).abs() < 0.01 && (0.0..63.0).contains(v) {
                (k.axis.show)(1 << v.round() as u32)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| {
            if *v >= 10.0 {
                format!("{v:.0}")
            } else if *v >= 0.1 {
                format!("{v:.2}")
            } else {
                format!("{v:.1e}")
            }
        })
        .draw()?;
    let colors = [BLACK, BLUE, RED, MAGENTA, GREEN];
    for (c, pts) in &series {
        let color = colors[*c as usize];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?
            .label(c.label())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    let dash = |a: (f64, f64), b: (f64, f64), style: ShapeStyle| {
        DashedLineSeries::new(vec![a, b], 6, 4, style)
    };
    chart
        .draw_series(dash(
            (x0, limit),
            (x1, limit),
            BLACK.mix(0.5).stroke_width(1),
        ))?
        .label(format!(
            "host roofline ({} {unit})",
            if limit >= 10.0 {
                format!("{limit:.0}")
            } else {
                format!("{limit:.1}")
            }
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    for (c, at) in [
        (Column::GpuHost, k.crossover_host),
        (Column::GpuRes, k.crossover_resident),
    ] {
        if let Some(n) = at {
            let color = colors[c as usize];
            let x = (n as f64).log2();
            chart
                .draw_series(dash(
                    (x, lo / 2.0),
                    (x, hi * 8.0),
                    color.mix(0.6).stroke_width(2),
                ))?
                .label(format!("crossover {} at {}", c.label(), (k.axis.show)(n)))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.mix(0.6)));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}
