//! Saved calibration profiles: the measured cost curves of one machine,
//! versioned and keyed by the CPU model, the thread count and the adapter.
//!
//! A profile is a JSON file (human-readable, diffable). [`Engine::new`]
//! loads the one whose key matches the engine; a missing file means the
//! defaults, and a corrupt, foreign or old-version file is ignored with one
//! warning on stderr — never a panic, never a decision from someone else's
//! numbers.
//!
//! Where it lives: `$TANDEM_PROFILE` if set, else
//! `$XDG_CACHE_HOME/tandem/<key>.json`, else `$HOME/.cache/tandem/<key>.json`.
//!
//! [`Engine::new`]: crate::Engine::new

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::BackendCost;
use crate::gpu::GpuInfo;
use crate::kernel::Work;
pub use crate::kernel::{Axis, FLOPS_PER_BYTE_HEAVY};

/// The profile format this build reads and writes. Files of another version
/// are ignored (with a warning): recalibrate.
///
/// 2: each kernel's curves carry the [`Axis`] they are keyed on.
pub const PROFILE_VERSION: u32 = 2;

/// The `format` field of every profile file.
pub const PROFILE_FORMAT: &str = "tandem-profile";

/// The environment variable naming a profile file (overrides the cache dir).
pub const PROFILE_ENV: &str = "TANDEM_PROFILE";

/// What a profile was measured on. A profile applies only to an engine with
/// the same key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProfileKey {
    /// CPU model name (`/proc/cpuinfo`'s `model name` on Linux, else the
    /// architecture).
    pub cpu: String,
    /// CPU worker threads of the engine.
    pub threads: usize,
    /// Adapter name, empty without a GPU.
    pub adapter: String,
    /// Adapter driver and version, empty without a GPU.
    pub driver: String,
    /// Graphics API (`Vulkan`, `Metal`, ...), empty without a GPU.
    pub backend: String,
}

impl ProfileKey {
    /// The key of an engine with `threads` CPU threads and the given GPU.
    pub fn new(threads: usize, gpu: Option<&GpuInfo>) -> ProfileKey {
        ProfileKey {
            cpu: cpu_model(),
            threads,
            adapter: gpu.map(|g| g.name.clone()).unwrap_or_default(),
            driver: gpu.map(|g| g.driver.clone()).unwrap_or_default(),
            backend: gpu.map(|g| g.backend.clone()).unwrap_or_default(),
        }
    }

    /// A file name derived from the key: readable, filesystem-safe, and
    /// distinct for distinct keys (a hash of the whole key ends it).
    pub fn file_name(&self) -> String {
        let readable: String = format!("{}-{}t-{}", self.cpu, self.threads, self.adapter)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let mut squeezed = String::new();
        for c in readable.chars() {
            if !(c == '-' && squeezed.ends_with('-')) {
                squeezed.push(c);
            }
        }
        let short: String = squeezed.trim_matches('-').chars().take(80).collect();
        format!("{short}-{:016x}.json", fnv1a(&format!("{self:?}")))
    }
}

impl fmt::Display for ProfileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {} threads", self.cpu, self.threads)?;
        if self.adapter.is_empty() {
            write!(f, ", no GPU")
        } else {
            write!(
                f,
                ", {} ({}, driver {})",
                self.adapter, self.backend, self.driver
            )
        }
    }
}

/// A stable 64-bit hash (FNV-1a), so file names do not change between
/// Rust releases as `DefaultHasher`'s may.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The CPU model name, or the architecture where the OS does not say.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// A link's fitted cost: `latency_s + bytes / bytes_per_s`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkCost {
    /// Fixed cost of one transfer (submit, wait, map), seconds.
    pub latency_s: f64,
    /// Bandwidth, bytes per second.
    pub bytes_per_s: f64,
}

impl LinkCost {
    /// Seconds to move `bytes` (zero for nothing).
    pub fn time(&self, bytes: u64) -> f64 {
        if bytes == 0 {
            0.0
        } else {
            self.latency_s + bytes as f64 / self.bytes_per_s
        }
    }
}

/// Measured host↔device transfers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransferProfile {
    /// Host to device.
    pub upload: LinkCost,
    /// Device to host.
    pub download: LinkCost,
    /// Smallest round trip measured: upload a few bytes, read them back.
    pub round_trip_s: f64,
}

/// Time of one kernel on one backend as a function of the size of a call,
/// measured on the kernel's [`Axis`] (elements, bytes or flops): measured points, joined piecewise as `a·n^b` (a straight line in log-log),
/// flat below the first point and proportional to `n` beyond the last.
///
/// Piecewise because the CPU backend switches from one thread to all of
/// them at [`PARALLEL_THRESHOLD`](crate::cpu::PARALLEL_THRESHOLD) (scaled
/// by the kernel's weight), and caches make throughput depend on size: no
/// single `latency + n / throughput` line fits both regimes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// `(size, seconds)`, by increasing size on the kernel's [`Axis`], times
    /// non-decreasing.
    pub points: Vec<(u64, f64)>,
}

impl Curve {
    /// A curve through measured `(elements, seconds)` points: sorted, and
    /// made non-decreasing by pooling adjacent violators (a larger call is
    /// never cheaper; a dip is noise). Points with non-finite or negative
    /// times are dropped.
    pub fn fit(mut points: Vec<(u64, f64)>) -> Curve {
        points.retain(|&(_, t)| t.is_finite() && t >= 0.0);
        points.sort_by_key(|p| p.0);
        points.dedup_by_key(|p| p.0);
        // Pool adjacent violators: blocks of (sum, count).
        let mut blocks: Vec<(f64, usize)> = Vec::new();
        for &(_, t) in &points {
            blocks.push((t, 1));
            while blocks.len() >= 2 {
                let (s1, c1) = blocks[blocks.len() - 1];
                let (s0, c0) = blocks[blocks.len() - 2];
                if s0 / c0 as f64 > s1 / c1 as f64 {
                    blocks.pop();
                    *blocks.last_mut().expect("two blocks") = (s0 + s1, c0 + c1);
                } else {
                    break;
                }
            }
        }
        let mut i = 0;
        for (sum, count) in blocks {
            for _ in 0..count {
                points[i].1 = sum / count as f64;
                i += 1;
            }
        }
        Curve { points }
    }

    /// Whether the curve has points and they are sane (sorted, finite, positive n).
    pub fn is_valid(&self) -> bool {
        !self.points.is_empty()
            && self
                .points
                .iter()
                .all(|&(n, t)| n > 0 && t.is_finite() && t >= 0.0)
            && self.points.windows(2).all(|w| w[0].0 < w[1].0)
    }

    /// Estimated seconds for a call of size `n` (on the curve's axis).
    pub fn eval(&self, n: u64) -> f64 {
        let Some(&(n0, t0)) = self.points.first() else {
            return f64::INFINITY;
        };
        if n <= n0 {
            return t0;
        }
        let &(nl, tl) = self.points.last().expect("non-empty");
        if n >= nl {
            return tl * n as f64 / nl as f64;
        }
        let i = self.points.partition_point(|p| p.0 <= n) - 1;
        let (na, ta) = self.points[i];
        let (nb, tb) = self.points[i + 1];
        if ta <= 0.0 || tb <= 0.0 {
            return ta + (tb - ta) * (n - na) as f64 / (nb - na) as f64;
        }
        let b = (tb / ta).ln() / (nb as f64 / na as f64).ln();
        ta * (n as f64 / na as f64).powf(b)
    }

    /// Fixed cost: the time at the smallest size measured.
    pub fn latency_s(&self) -> f64 {
        self.points.first().map_or(f64::NAN, |p| p.1)
    }

    /// Size units (elements, bytes or flops: the kernel's [`Axis`]) per
    /// second at the largest size measured.
    pub fn elements_per_s(&self) -> f64 {
        self.points
            .last()
            .map_or(f64::NAN, |&(n, t)| n as f64 / t.max(1e-12))
    }
}

/// One kernel's measured curves on both backends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelProfile {
    /// The family the kernel belongs to (`map`, `reduce`, ...).
    pub family: String,
    /// What the curves' x-axis measures of a call.
    pub axis: Axis,
    /// CPU backend, inputs and result on the host.
    pub cpu: Curve,
    /// GPU backend, inputs already on the device, result left there (a
    /// scalar result read back, as a reduction always does).
    pub gpu: Curve,
}

impl KernelProfile {
    /// Where a call of `work` sits on this kernel's curves.
    pub fn x(&self, work: &Work) -> u64 {
        self.axis.of(work)
    }
}

/// A machine's calibration: what [`Engine::calibrate`](crate::Engine::calibrate)
/// measures and saves, and what an engine loads at build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Always [`PROFILE_FORMAT`].
    pub format: String,
    /// [`PROFILE_VERSION`] when written.
    pub version: u32,
    /// What it was measured on.
    pub key: ProfileKey,
    /// When it was measured, seconds since the Unix epoch.
    pub created_unix_s: u64,
    /// How long the calibration took, seconds.
    pub calibration_s: f64,
    /// Host↔device transfers; `None` without a GPU.
    pub transfer: Option<TransferProfile>,
    /// Fallback for kernels the profile lacks: the CPU on all threads.
    pub cpu: BackendCost,
    /// Fallback: the CPU on one thread (small calls).
    pub cpu_serial: BackendCost,
    /// Fallback: the GPU with resident data; `None` without a GPU.
    pub gpu: Option<BackendCost>,
    /// Per kernel (by [`Kernel::name`](crate::Kernel::name)).
    pub kernels: BTreeMap<String, KernelProfile>,
}

/// Why a profile file was not used.
#[derive(Clone, Debug, PartialEq)]
pub enum ProfileRejection {
    /// The file does not exist (not worth a warning).
    Missing,
    /// It could not be read or parsed.
    Corrupt(String),
    /// It is of another format version.
    Version(u32),
    /// It was measured on another machine or adapter.
    Foreign(ProfileKey),
}

impl fmt::Display for ProfileRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileRejection::Missing => f.write_str("no such file"),
            ProfileRejection::Corrupt(why) => write!(f, "unreadable ({why})"),
            ProfileRejection::Version(v) => write!(
                f,
                "format version {v}, this build reads {PROFILE_VERSION}: recalibrate"
            ),
            ProfileRejection::Foreign(k) => write!(f, "measured on another machine ({k})"),
        }
    }
}

impl Profile {
    /// Writes the profile as pretty JSON to `path`, creating its directory,
    /// through a temporary file renamed into place (a crash never leaves a
    /// half-written profile).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, path)
    }

    /// Reads and checks a profile file: its format, version and sanity, and,
    /// given `expected`, that it was measured on that key.
    pub fn load(
        path: &Path,
        expected: Option<&ProfileKey>,
    ) -> std::result::Result<Profile, ProfileRejection> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProfileRejection::Missing);
            }
            Err(e) => return Err(ProfileRejection::Corrupt(e.to_string())),
        };
        // Check the header first, so an old version says so rather than
        // failing on a field it lacks.
        #[derive(Deserialize)]
        struct Header {
            format: String,
            version: u32,
        }
        let header: Header =
            serde_json::from_str(&text).map_err(|e| ProfileRejection::Corrupt(e.to_string()))?;
        if header.format != PROFILE_FORMAT {
            return Err(ProfileRejection::Corrupt(format!(
                "format {:?}, expected {PROFILE_FORMAT:?}",
                header.format
            )));
        }
        if header.version != PROFILE_VERSION {
            return Err(ProfileRejection::Version(header.version));
        }
        let profile: Profile =
            serde_json::from_str(&text).map_err(|e| ProfileRejection::Corrupt(e.to_string()))?;
        profile.check().map_err(ProfileRejection::Corrupt)?;
        if let Some(k) = expected
            && *k != profile.key
        {
            return Err(ProfileRejection::Foreign(profile.key));
        }
        Ok(profile)
    }

    /// Rejects numbers no measurement gives (negative, non-finite, zero
    /// bandwidths, unsorted curves), so a hand-edited file cannot steer the
    /// dispatcher into nonsense.
    pub fn check(&self) -> std::result::Result<(), String> {
        let cost_ok = |c: &BackendCost| {
            c.latency_s.is_finite()
                && c.latency_s >= 0.0
                && c.bytes_per_s.is_finite()
                && c.bytes_per_s > 0.0
                && c.flops_per_s.is_finite()
                && c.flops_per_s > 0.0
        };
        let link_ok = |l: &LinkCost| {
            l.latency_s.is_finite()
                && l.latency_s >= 0.0
                && l.bytes_per_s.is_finite()
                && l.bytes_per_s > 0.0
        };
        if !cost_ok(&self.cpu)
            || !cost_ok(&self.cpu_serial)
            || !self.gpu.as_ref().is_none_or(cost_ok)
        {
            return Err("a backend cost is not a positive finite number".into());
        }
        if let Some(t) = &self.transfer
            && (!link_ok(&t.upload) || !link_ok(&t.download) || !t.round_trip_s.is_finite())
        {
            return Err("a transfer cost is not a positive finite number".into());
        }
        for (name, k) in &self.kernels {
            if !k.cpu.is_valid() || (!k.gpu.points.is_empty() && !k.gpu.is_valid()) {
                return Err(format!("kernel {name:?} has an invalid curve"));
            }
        }
        Ok(())
    }

    /// A one-line description: where from and when.
    pub fn describe(&self, path: Option<&Path>) -> String {
        let when = format_unix_utc(self.created_unix_s);
        match path {
            Some(p) => format!("profile {} (calibrated {when})", p.display()),
            None => format!("profile (calibrated {when})"),
        }
    }
}

/// Where the profile for `key` lives by default: `$TANDEM_PROFILE`, else
/// `$XDG_CACHE_HOME/tandem/<file>`, else `$HOME/.cache/tandem/<file>`.
/// `None` when none of these is set.
pub fn default_path(key: &ProfileKey) -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = var(PROFILE_ENV) {
        return Some(p);
    }
    let dir = var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))?;
    Some(dir.join("tandem").join(key.file_name()))
}

/// Prints `message` to stderr, once per process for each distinct message.
pub(crate) fn warn_once(message: &str) {
    static SEEN: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen
        .get_or_insert_with(HashSet::new)
        .insert(message.to_string())
    {
        eprintln!("tandem: warning: {message}");
    }
}

/// `YYYY-MM-DD HH:MM UTC` from seconds since the epoch (civil-from-days).
pub(crate) fn format_unix_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_is_monotone_and_interpolates_between_points() {
        let c = Curve::fit(vec![
            (1024, 2e-6),
            (4096, 1e-6),
            (16384, 8e-6),
            (65536, 32e-6),
        ]);
        assert!(c.points.windows(2).all(|w| w[0].1 <= w[1].1), "{c:?}");
        assert_eq!(c.eval(1), c.points[0].1);
        let mid = c.eval(32768);
        assert!(mid > 8e-6 && mid < 32e-6, "{mid}");
        assert!((c.eval(1 << 20) - 32e-6 * 16.0).abs() < 1e-12);
    }

    #[test]
    fn dates_format_as_utc() {
        assert_eq!(format_unix_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_unix_utc(1_795_000_000), "2026-11-18 11:06 UTC");
        assert_eq!(format_unix_utc(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn file_names_are_safe_and_distinct() {
        let mut k = ProfileKey {
            cpu: "AMD EPYC 7B13 64-Core".into(),
            threads: 2,
            adapter: "llvmpipe (LLVM 19.1.7, 256 bits)".into(),
            driver: "Mesa 25".into(),
            backend: "Vulkan".into(),
        };
        let a = k.file_name();
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
            "{a}"
        );
        k.threads = 4;
        assert_ne!(a, k.file_name());
    }
}
