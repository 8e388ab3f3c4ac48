//! The machine-readable report: CSV and JSON.

use std::fmt::Write as _;

use serde_json::{Value, json};
use tandem::Engine;

use crate::report::{KernelSummary, cpu_model};
use crate::roofline::Roofline;
use crate::timing::{Column, Row};

/// Every row as CSV: times in seconds, empty where not measured; `reps` is
/// the timed calls per column, `serial/cpu/gpu_host/gpu_res/auto`.
pub(crate) fn csv(rows: &[Row], roof: &Roofline) -> String {
    let mut s = String::from(
        "kernel,n,bytes,flops,serial_s,cpu_s,gpu_host_s,gpu_res_s,auto_s,auto_backend,\
         cpu_gb_s,cpu_pct_bw,cpu_speedup,gpu_host_speedup,gpu_res_speedup,auto_regret,\
         triad_gb_s,read_gb_s,reps,family,element,axis,cpu_pct_roof,gpu_res_pct_roof,\
         fma_gflop_s,gpu_copy_gb_s,gpu_fma_gflop_s,numpy_s,cpu_vs_numpy,rust_peer,rust_peer_s,\
         cpu_vs_rust_peer,gpu_host_device_s,gpu_res_device_s\n",
    );
    let secs = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4e}"));
    let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
    for r in rows {
        let mut fields = vec![
            r.kernel.to_string(),
            r.n.to_string(),
            r.work.bytes().to_string(),
            r.work.flops.to_string(),
        ];
        fields.extend(Column::ALL.iter().map(|&c| secs(r.get(c))));
        fields.push(r.auto_choice.to_string());
        fields.push(num(r.cpu_bytes_per_s().map(|b| b / 1e9)));
        fields.push(num(r
            .cpu_bytes_per_s()
            .map(|b| 100.0 * b / roof.host_bandwidth(&r.work))));
        for c in [Column::Cpu, Column::GpuHost, Column::GpuRes] {
            fields.push(num(r.speedup(c)));
        }
        fields.push(num(r.regret()));
        fields.push(num(Some(roof.triad / 1e9)));
        fields.push(num(Some(roof.read / 1e9)));
        let reps: Vec<String> = r
            .cells
            .iter()
            .map(|c| c.map_or("-".into(), |c| c.reps.to_string()))
            .collect();
        fields.push(reps.join("/"));
        fields.push(r.family.to_string());
        fields.push(format!("\"{}\"", r.element));
        fields.push(r.axis.key.to_string());
        fields.push(num(r.roof(roof, Column::Cpu).map(|(f, _)| 100.0 * f)));
        fields.push(num(r.roof(roof, Column::GpuRes).map(|(f, _)| 100.0 * f)));
        fields.push(num(Some(roof.fma / 1e9)));
        fields.push(num(roof.gpu_copy.map(|b| b / 1e9)));
        fields.push(num(roof.gpu_fma.map(|b| b / 1e9)));
        fields.push(secs(r.numpy));
        fields.push(num(r.vs_numpy()));
        fields.push(r.peer.map_or(String::new(), |p| format!("\"{}\"", p.0)));
        fields.push(secs(r.peer.map(|p| p.1.median)));
        fields.push(num(r.vs_peer()));
        fields.push(secs(r.device(Column::GpuHost)));
        fields.push(secs(r.device(Column::GpuRes)));
        let _ = writeln!(s, "{}", fields.join(","));
    }
    s
}

/// The whole run as JSON: machine, command, roofline, rows and per-kernel
/// summaries (times in seconds, rates in bytes or flops per second).
pub(crate) fn json_report(
    args: &[String],
    engine: &Engine,
    engine_start: f64,
    roof: &Roofline,
    rows: &[Row],
    kernels: &[KernelSummary],
    took: f64,
) -> Value {
    let info = engine.info();
    let gpu = info.gpu.as_ref().map(|g| {
        json!({
            "name": g.name, "backend": g.backend, "device_type": g.device_type,
            "driver": g.driver, "software": g.is_software,
        })
    });
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut times = serde_json::Map::new();
            let mut reps = serde_json::Map::new();
            let mut device = serde_json::Map::new();
            for c in Column::ALL {
                if let Some(cell) = r.cells[c as usize] {
                    times.insert(c.key().into(), json!(cell.median));
                    reps.insert(c.key().into(), json!(cell.reps));
                    if let Some(d) = cell.device {
                        device.insert(c.key().into(), json!(d));
                    }
                }
            }
            let roof_of = |c| {
                r.roof(roof, c)
                    .map(|(f, bound)| json!({"fraction": f, "bound": bound}))
            };
            json!({
                "kernel": r.kernel, "family": r.family, "element": r.element,
                "axis": r.axis.key, "size": r.n,
                "work": {
                    "elements": r.work.elements, "bytes_read": r.work.bytes_read,
                    "bytes_written": r.work.bytes_written, "flops": r.work.flops,
                },
                "seconds": times, "reps": reps, "device_seconds": device,
                "auto_backend": r.auto_choice.to_string(),
                "auto_regret": r.regret(),
                "faster": r.faster().to_string(),
                "roofline": {"cpu": roof_of(Column::Cpu), "gpu_res": roof_of(Column::GpuRes)},
                "errors": r.errors.iter().map(|(c, e)| json!({"column": c.key(), "error": e}))
                    .collect::<Vec<_>>(),
                "capped": r.capped.iter().map(|c| c.key()).collect::<Vec<_>>(),
                "numpy_s": r.numpy,
                "cpu_vs_numpy": r.vs_numpy(),
                "rust_peer": r.peer.map(|p| json!({"name": p.0, "seconds": p.1.median, "reps": p.1.reps})),
                "cpu_vs_rust_peer": r.vs_peer(),
            })
        })
        .collect();
    let kernels: Vec<Value> = kernels
        .iter()
        .map(|k| {
            json!({
                "kernel": k.name, "family": k.family, "element": k.element, "axis": k.axis.key,
                "crossover_host": k.crossover_host,
                "crossover_resident": k.crossover_resident,
                "worst_regret": k.worst_regret.map(|(r, n)| json!({"regret": r, "size": n})),
                "cold_start": k.cold.map(|c| json!({
                    "size": c.n, "engine_s": c.engine_s, "first_call_s": c.first_s,
                    "second_call_s": c.second_s, "pipelines_compiled": c.pipelines,
                })),
            })
        })
        .collect();
    json!({
        "command": format!("cargo run --release --example compare -- {}", args.join(" ")),
        "machine": {
            "cpu": cpu_model(), "threads": info.cpu_threads, "simd": info.simd.to_string(), "cpu_simd": info.cpu_simd.to_string(), "gpu": gpu,
            "gpu_unavailable": info.gpu_unavailable,
        },
        "engine_start_s": engine_start,
        "roofline": {
            "triad_bytes_per_s": roof.triad, "read_bytes_per_s": roof.read,
            "fma_flops_per_s": roof.fma, "gpu_copy_bytes_per_s": roof.gpu_copy,
            "gpu_fma_flops_per_s": roof.gpu_fma,
        },
        "rows": rows,
        "kernels": kernels,
        "sweep_s": took,
    })
}
