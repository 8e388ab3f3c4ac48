//! numpy, the peer a Python user reads first: `benches/numpy_peer.py`, run
//! once over the whole plan.

use std::path::Path;

use serde_json::{Value, json};

use crate::cases::Case;
use crate::cli::Options;

/// numpy's medians per kernel and size, from `benches/numpy_peer.py`.
pub(crate) struct NumpyPeer {
    pub(crate) version: String,
    pub(crate) blas: String,
    pub(crate) times: std::collections::HashMap<(String, usize), f64>,
    /// Cases the script could not time, each with numpy's error: their
    /// cells stay empty.
    pub(crate) errors: Vec<String>,
}

impl NumpyPeer {
    /// Runs the script once over the whole plan. `OPENBLAS_CORETYPE` and
    /// `OPENBLAS_L2_SIZE` are unset for it: set, they select an older
    /// OpenBLAS kernel than the CPU deserves.
    pub(crate) fn run(
        cases: &[Case],
        plan: &[Vec<usize>],
        opts: &Options,
    ) -> Result<NumpyPeer, String> {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/numpy_peer.py");
        let python = std::env::var("TANDEM_PYTHON").unwrap_or_else(|_| "python3".into());
        let list: Vec<Value> = cases
            .iter()
            .zip(plan)
            .flat_map(|(c, sizes)| {
                sizes.iter().map(move |&n| {
                    let big = (c.axis.elements)(n) >= 1 << 22;
                    let reps = opts.reps.unwrap_or(if big { 5 } else { 15 });
                    json!({
                        "kernel": c.name,
                        "n": n,
                        "elements": (c.axis.elements)(n),
                        "reps": reps.min(opts.max_reps),
                    })
                })
            })
            .collect();
        let mut child = Command::new(&python)
            .arg(&script)
            .env_remove("OPENBLAS_CORETYPE")
            .env_remove("OPENBLAS_L2_SIZE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {python} ({e}); install Python 3 with numpy"))?;
        let input = json!({ "cases": list }).to_string();
        child
            .stdin
            .take()
            .ok_or("no stdin")?
            .write_all(input.as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(if err.contains("No module named 'numpy'") {
                format!("{python} has no numpy (`pip install numpy`)")
            } else {
                format!("{} failed: {}", script.display(), err.trim())
            });
        }
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        let times = v["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let key = (r["kernel"].as_str()?.to_string(), r["n"].as_u64()? as usize);
                Some((key, r["median_s"].as_f64()?))
            })
            .collect();
        let errors = v["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let text = |k: &str| e[k].as_str().unwrap_or("?").to_string();
                format!("{} at n = {}: {}", text("kernel"), e["n"], text("error"))
            })
            .collect();
        Ok(NumpyPeer {
            version: v["numpy"].as_str().unwrap_or("?").to_string(),
            blas: v["blas"].as_str().unwrap_or("?").to_string(),
            times,
            errors,
        })
    }

    pub(crate) fn time(&self, kernel: &str, n: usize) -> Option<f64> {
        self.times.get(&(kernel.to_string(), n)).copied()
    }
}
