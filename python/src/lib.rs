//! `tandem` for Python: numpy arrays in without a copy, the GIL released
//! around every kernel, errors as Python exceptions, an engine per process.
//!
//! Every function takes C-contiguous float32, int32 or uint32 arrays (read
//! in place: the buffer borrows the array's memory, kept alive by a
//! reference to it) and `device="auto"|"cpu"|"gpu"`. Any other dtype or
//! layout raises `TypeError`/`ValueError` naming what is accepted; nothing
//! is cast silently.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use numpy::prelude::*;
use numpy::{PyArray1, PyArrayDyn, PyUntypedArray, dtype};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt};
use tandem::expr::{Expr, Vars};
use tandem::kernels::{
    ArgMax, ArgMin, Args, Argsort, Border, Compact, CompactIf, Compare, Conv2d, Dot, Gemm,
    HistogramRange, Map, MapReduce, Max, Min, Reduced, Scalar, Scan, Sort, Sum, Transpose,
};
use tandem::{Backend, Buffer, Element, ElementType, Engine, Error, HostMemory};

// ---------- errors ----------

/// A tandem error as the Python exception its kind calls for.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::LengthMismatch { .. } | Error::InvalidArgument { .. } | Error::TooLarge { .. } => {
            PyValueError::new_err(msg)
        }
        Error::Unsupported { .. } => PyTypeError::new_err(msg),
        Error::HostOutOfMemory { .. } => PyMemoryError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// Runs `f` with the GIL released; a panic (a tandem bug) comes back as a
/// `RuntimeError`, never a `PanicException`.
fn release<T: Send>(py: Python<'_>, f: impl FnOnce() -> tandem::Result<T> + Send) -> PyResult<T> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f)))
        .map_err(|p| {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            PyRuntimeError::new_err(format!("tandem panicked (a bug; please report it): {what}"))
        })?
        .map_err(py_err)
}

// ---------- engines: one per process ----------

fn pid() -> u32 {
    std::process::id()
}

/// An engine and the process that built it. In a `fork`ed child the
/// parent's rayon pool has no threads (rayon-rs/rayon#708): the child
/// builds its own, and the parent's is leaked, never dropped there.
struct PerProcess {
    threads: usize,
    gpu: bool,
    built: Mutex<Option<(u32, Engine)>>,
}

impl PerProcess {
    const fn new(threads: usize, gpu: bool) -> PerProcess {
        PerProcess {
            threads,
            gpu,
            built: Mutex::new(None),
        }
    }

    fn get(&self) -> PyResult<Engine> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((p, e)) = built.as_ref()
            && *p == pid()
        {
            return Ok(e.clone());
        }
        if let Some(stale) = built.take() {
            std::mem::forget(stale);
        }
        let engine = Engine::builder()
            .threads(self.threads)
            .gpu(self.gpu)
            .build()
            .map_err(py_err)?;
        *built = Some((pid(), engine.clone()));
        Ok(engine)
    }
}

/// The module's engine: built on first use (never at import), rebuilt in a
/// child process.
static DEFAULT: PerProcess = PerProcess::new(0, true);

/// A tandem engine: a CPU thread pool and, when an adapter exists and `gpu`
/// is true, a GPU. Safe to share between threads; usable after `fork` (the
/// child builds its own).
#[pyclass(name = "Engine", module = "tandem", frozen)]
struct PyEngine {
    inner: PerProcess,
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (threads = 0, gpu = true))]
    fn new(threads: usize, gpu: bool) -> PyResult<PyEngine> {
        let e = PyEngine {
            inner: PerProcess::new(threads, gpu),
        };
        e.inner.get()?;
        Ok(e)
    }

    /// Calls per backend, bytes moved each way, pipelines compiled.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats(py, &self.inner.get()?)
    }

    /// The CPU (threads, SIMD width) and the GPU (adapter, limits) or why
    /// there is none.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        info(py, &self.inner.get()?)
    }

    /// Where a call would run and why: `engine.explain("sum", x)`,
    /// `engine.explain("map", "a*x + y", a=2.0, x=x, y=y)`.
    #[pyo3(signature = (function, *args, **kwargs))]
    fn explain(
        &self,
        function: &str,
        args: &Bound<'_, pyo3::types::PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        explain(&self.inner.get()?, function, args, kwargs)
    }

    fn __repr__(&self) -> PyResult<String> {
        let e = self.inner.get()?;
        let i = e.info();
        Ok(format!(
            "tandem.Engine(threads={}, gpu={})",
            i.cpu_threads,
            i.gpu
                .as_ref()
                .map_or("None".to_string(), |g| format!("{:?}", g.name))
        ))
    }
}

fn engine_of(engine: Option<&Bound<'_, PyEngine>>, device: &str) -> PyResult<Engine> {
    let backend = match device {
        "auto" => Backend::Auto,
        "cpu" => Backend::Cpu,
        "gpu" => Backend::Gpu,
        other => {
            return Err(PyValueError::new_err(format!(
                "device must be \"auto\", \"cpu\" or \"gpu\", not {other:?}"
            )));
        }
    };
    let e = match engine {
        Some(e) => e.get().inner.get()?,
        None => DEFAULT.get()?,
    };
    Ok(e.on(backend))
}

fn stats<'py>(py: Python<'py>, e: &Engine) -> PyResult<Bound<'py, PyDict>> {
    let s = e.stats();
    let d = PyDict::new(py);
    d.set_item("cpu_runs", s.cpu_runs)?;
    d.set_item("gpu_runs", s.gpu_runs)?;
    d.set_item("gpu_dispatches", s.gpu_dispatches)?;
    d.set_item("uploads", s.uploads)?;
    d.set_item("bytes_uploaded", s.bytes_uploaded)?;
    d.set_item("downloads", s.downloads)?;
    d.set_item("bytes_downloaded", s.bytes_downloaded)?;
    d.set_item("pipelines_compiled", s.pipelines_compiled)?;
    d.set_item("fallbacks", s.fallbacks)?;
    d.set_item("device_bytes_live", s.device_bytes_live)?;
    Ok(d)
}

fn info<'py>(py: Python<'py>, e: &Engine) -> PyResult<Bound<'py, PyDict>> {
    let i = e.info();
    let d = PyDict::new(py);
    d.set_item("threads", i.cpu_threads)?;
    d.set_item("simd", i.simd.to_string())?;
    d.set_item("simd_detected", i.cpu_simd.to_string())?;
    d.set_item("backend", i.backend.to_string())?;
    d.set_item("cost_model", i.cost_model.clone())?;
    match &i.gpu {
        Some(g) => {
            d.set_item("gpu", g.name.clone())?;
            d.set_item("gpu_backend", g.backend.clone())?;
            d.set_item("gpu_software", g.is_software)?;
        }
        None => {
            d.set_item("gpu", py.None())?;
            d.set_item("gpu_unavailable", i.gpu_unavailable.clone())?;
        }
    }
    d.set_item("pid", pid())?;
    Ok(d)
}

// ---------- numpy arrays in, without a copy ----------

/// A numpy array's memory, kept alive by a reference to the array.
struct NumpyMemory<T> {
    _array: Py<PyAny>,
    ptr: *const T,
    len: usize,
}

// SAFETY: the pointer is to the data of a numpy array that `_array` keeps
// alive (numpy never moves or frees the data of a live array that another
// object references: `resize` refuses), and tandem only reads it. Python
// code writing the array while a call runs with the GIL released is a data
// race the caller owns, as with any numpy function that releases the GIL.
unsafe impl<T: Sync> Send for NumpyMemory<T> {}
// SAFETY: as above; shared reads only.
unsafe impl<T: Sync> Sync for NumpyMemory<T> {}

impl<T: Element> HostMemory<T> for NumpyMemory<T> {
    fn as_slice(&self) -> &[T] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` points at `len` initialized, aligned `T`s of a
        // C-contiguous array that `_array` keeps alive (checked when made).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A buffer of one of the element types.
#[derive(Clone)]
enum Arr {
    F32(Buffer<f32>),
    I32(Buffer<i32>),
    U32(Buffer<u32>),
    F64(Buffer<f64>),
}

/// A numpy array as a buffer, with its shape.
struct Np {
    arr: Arr,
    shape: Vec<usize>,
}

const ACCEPTED: &str = "C-contiguous float32, float64, int32 or uint32";

fn borrow<T: Element + numpy::Element>(obj: &Bound<'_, PyAny>) -> PyResult<Buffer<T>> {
    let a = obj.cast::<PyArrayDyn<T>>()?;
    Ok(Buffer::from_memory(NumpyMemory {
        _array: obj.clone().unbind(),
        ptr: a.data().cast_const(),
        len: a.len(),
    }))
}

/// `obj` as a buffer over its memory: a C-contiguous float32/int32/uint32
/// numpy array, else a `TypeError`/`ValueError` saying how to convert.
fn array(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Np> {
    let py = obj.py();
    let Ok(u) = obj.cast::<PyUntypedArray>() else {
        return Err(PyTypeError::new_err(format!(
            "{name} must be a numpy array ({ACCEPTED}), not {}: use np.asarray({name}, dtype=np.float32)",
            obj.get_type().name()?
        )));
    };
    let dt = u.dtype();
    let shape = u.shape().to_vec();
    if !u.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{name} is not C-contiguous (a strided view or a transpose): pass np.ascontiguousarray({name})"
        )));
    }
    if !u.is_aligned() {
        return Err(PyValueError::new_err(format!(
            "{name} is not aligned: pass {name}.copy()"
        )));
    }
    let arr = if dt.is_equiv_to(&dtype::<f32>(py)) {
        Arr::F32(borrow::<f32>(obj)?)
    } else if dt.is_equiv_to(&dtype::<i32>(py)) {
        Arr::I32(borrow::<i32>(obj)?)
    } else if dt.is_equiv_to(&dtype::<u32>(py)) {
        Arr::U32(borrow::<u32>(obj)?)
    } else if dt.is_equiv_to(&dtype::<f64>(py)) {
        Arr::F64(borrow::<f64>(obj)?)
    } else {
        let hint = format!(
            "{name}.astype(np.float64), .astype(np.float32), .astype(np.int32) or .astype(np.uint32)"
        );
        return Err(PyTypeError::new_err(format!(
            "{name} has dtype {dt}; tandem takes {ACCEPTED} arrays: use {hint}"
        )));
    };
    Ok(Np { arr, shape })
}

fn one_d(np: &Np, name: &str, function: &str) -> PyResult<()> {
    if np.shape.len() != 1 {
        return Err(PyValueError::new_err(format!(
            "{function}: {name} must be 1-D, got shape {:?} (use {name}.ravel())",
            np.shape
        )));
    }
    Ok(())
}

/// Applies a generic expression to the buffer, whatever its type.
macro_rules! each {
    ($arr:expr, |$b:ident| $body:expr) => {
        match $arr {
            Arr::F32($b) => $body,
            Arr::I32($b) => $body,
            Arr::U32($b) => $body,
            Arr::F64($b) => $body,
        }
    };
}

// ---------- results out ----------

/// A buffer's contents as a new numpy array of `shape` (the vector moves
/// into numpy when tandem holds the only copy).
fn to_numpy<'py, T: Owns>(
    py: Python<'py>,
    b: Buffer<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let v = release(py, || b.into_vec())?;
    let owner = Bound::new(py, Owner(T::wrap(numpy::ndarray::Array1::from_vec(v))))?;
    let base = owner.clone().into_any();
    let data = T::of(&owner.get().0);
    // SAFETY: `owner` becomes the array's base object, so it lives as long
    // as the array; its data is never reallocated (it is only taken out in
    // `Owner`'s drop, when no array refers to it any more).
    let a = unsafe { PyArray1::borrow_from_array(data, base) };
    Ok(a.reshape(shape.to_vec())?.into_any())
}

/// A result's memory, owned by the numpy array made over it (its base
/// object). Dropped with the array, it goes back to tandem's host pool as a
/// buffer does, so the next result of that size reuses it instead of
/// faulting in fresh pages (which cost more than the kernel for outputs of
/// 32 MiB and up, where the allocator maps memory anew each time).
#[pyclass(frozen)]
struct Owner(Owned);

enum Owned {
    F32(numpy::ndarray::Array1<f32>),
    I32(numpy::ndarray::Array1<i32>),
    U32(numpy::ndarray::Array1<u32>),
    F64(numpy::ndarray::Array1<f64>),
}

impl Drop for Owner {
    fn drop(&mut self) {
        fn give<T: Element>(a: &mut numpy::ndarray::Array1<T>) {
            let a = std::mem::replace(a, numpy::ndarray::Array1::from_vec(Vec::new()));
            // Dropping the only handle of an owned buffer recycles its memory.
            drop(Buffer::from(a.into_raw_vec_and_offset().0));
        }
        match &mut self.0 {
            Owned::F32(a) => give(a),
            Owned::I32(a) => give(a),
            Owned::U32(a) => give(a),
            Owned::F64(a) => give(a),
        }
    }
}

/// The element types a result array can own.
trait Owns: Element + numpy::Element {
    fn wrap(a: numpy::ndarray::Array1<Self>) -> Owned;
    fn of(o: &Owned) -> &numpy::ndarray::Array1<Self>;
}

macro_rules! owns {
    ($($t:ty => $v:ident),*) => {$(
        impl Owns for $t {
            fn wrap(a: numpy::ndarray::Array1<$t>) -> Owned {
                Owned::$v(a)
            }
            fn of(o: &Owned) -> &numpy::ndarray::Array1<$t> {
                match o {
                    Owned::$v(a) => a,
                    _ => unreachable!("wrapped as this type"),
                }
            }
        }
    )*};
}
owns!(f32 => F32, i32 => I32, u32 => U32, f64 => F64);

fn arr_to_numpy<'py>(py: Python<'py>, a: Arr, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    each!(a, |b| to_numpy(py, b, shape))
}

fn scalar<'py>(py: Python<'py>, s: Scalar) -> PyResult<Bound<'py, PyAny>> {
    Ok(match s {
        Scalar::F32(v) => PyFloat::new(py, f64::from(v)).into_any(),
        Scalar::I32(v) => v.into_pyobject(py)?.into_any(),
        Scalar::U32(v) => v.into_pyobject(py)?.into_any(),
        Scalar::F64(v) => PyFloat::new(py, v).into_any(),
        other => {
            return Err(PyValueError::new_err(format!(
                "unexpected result {other:?}"
            )));
        }
    })
}

fn empty(function: &str) -> PyErr {
    PyValueError::new_err(format!(
        "{function}: zero-size array (or all NaN) has no {function}, as numpy"
    ))
}

// ---------- functions of one array ----------

/// A module function of one array `x`, `device` and `engine`: `$body` sees
/// the engine as `$e` and the array (a buffer over it) as `$x`.
macro_rules! one_array {
    ($(#[doc = $doc:literal])* $name:ident -> $ret:ty, |$py:ident, $e:ident, $x:ident| $body:expr) => {
        $(#[doc = $doc])*
        #[pyfunction]
        #[pyo3(signature = (x, device = "auto", engine = None))]
        fn $name<'py>(
            $py: Python<'py>,
            x: &Bound<'py, PyAny>,
            device: &str,
            engine: Option<&Bound<'py, PyEngine>>,
        ) -> PyResult<$ret> {
            let $e = engine_of(engine, device)?;
            let $x = array(x, "x")?;
            $body
        }
    };
}

/// A 1-D array function whose kernel returns a buffer of the input's shape.
macro_rules! array_out {
    ($(#[doc = $doc:literal])* $name:ident, $kernel:expr) => {
        one_array!($(#[doc = $doc])* $name -> Bound<'py, PyAny>, |py, e, x| {
            one_d(&x, "x", stringify!($name))?;
            Ok(each!(x.arr, |b| {
                let r = release(py, || e.run(&$kernel, &b))?;
                to_numpy(py, r, &x.shape)?
            }))
        });
    };
}

/// A reduction to an optional value (`Some(index)` for arg-reductions).
macro_rules! extreme {
    ($(#[doc = $doc:literal])* $name:ident -> $ret:ty, $kernel:ident, |$v:ident| $pick:expr) => {
        one_array!($(#[doc = $doc])* $name -> $ret, |py, e, x| {
            let r = each!(x.arr, |b| release(py, || e.run(&$kernel, &b))?.map(|$v| $pick));
            let r = r.ok_or_else(|| empty(stringify!($name)))?;
            Ok(r.into_pyobject(py)?.into_any())
        });
    };
}

one_array!(
    /// The sum of `x` (f32 sums are pairwise; integer sums wrap at 32 bits,
    /// where numpy widens to int64).
    sum -> Bound<'py, PyAny>, |py, e, x| {
        let s = each!(x.arr, |b| Scalar::from(release(py, || e.run(&Sum, &b))?));
        scalar(py, s)
    }
);
extreme!(
    /// The smallest element (NaN ignored; ValueError when empty or all NaN).
    min -> Bound<'py, PyAny>, Min, |v| ScalarOut(Scalar::from(v))
);
extreme!(
    /// The largest element (NaN ignored; ValueError when empty or all NaN).
    max -> Bound<'py, PyAny>, Max, |v| ScalarOut(Scalar::from(v))
);
extreme!(
    /// Index of the first smallest element (NaN ignored).
    argmin -> Bound<'py, PyAny>, ArgMin, |v| v.0
);
extreme!(
    /// Index of the first largest element (NaN ignored).
    argmax -> Bound<'py, PyAny>, ArgMax, |v| v.0
);
array_out!(
    /// The inclusive prefix sum of a 1-D array, same dtype (integers wrap).
    cumsum, Scan::inclusive()
);
array_out!(
    /// A sorted copy of a 1-D array (radix sort; floats in IEEE total order
    /// with NaNs last).
    sort, Sort
);
one_array!(
    /// The stable sorting permutation of a 1-D array, as int64 (numpy's
    /// index type; `np.argsort(x, kind="stable")`).
    argsort -> Bound<'py, PyAny>, |py, e, x| {
        one_d(&x, "x", "argsort")?;
        let idx = each!(x.arr, |b| release(py, || e.run(&Argsort, &b))?);
        let v = release(py, || idx.into_vec())?;
        let wide: Vec<i64> = v.into_iter().map(i64::from).collect();
        Ok(PyArray1::from_vec(py, wide).into_any())
    }
);
one_array!(
    /// The transpose of a 2-D array, as a new C-contiguous array.
    transpose -> Bound<'py, PyAny>, |py, e, x| {
        let (rows, cols) = two_d(&x, "a", "transpose")?;
        let t = Transpose { rows, cols };
        Ok(each!(x.arr, |b| {
            let r = release(py, || e.run(&t, &b))?;
            to_numpy(py, r, &[cols, rows])?
        }))
    }
);

/// A reduction's value as the Python number of its type.
struct ScalarOut(Scalar);

impl<'py> IntoPyObject<'py> for ScalarOut {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        scalar(py, self.0)
    }
}

/// `Σ x·y` of two 1-D arrays of one dtype.
#[pyfunction]
#[pyo3(signature = (x, y, device = "auto", engine = None))]
fn dot<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    device: &str,
    engine: Option<&Bound<'py, PyEngine>>,
) -> PyResult<Bound<'py, PyAny>> {
    let e = engine_of(engine, device)?;
    let (x, y) = (array(x, "x")?, array(y, "y")?);
    let s = match (x.arr, y.arr) {
        (Arr::F32(a), Arr::F32(b)) => Scalar::from(release(py, || e.run(&Dot, (&a, &b)))?),
        (Arr::I32(a), Arr::I32(b)) => Scalar::from(release(py, || e.run(&Dot, (&a, &b)))?),
        (Arr::U32(a), Arr::U32(b)) => Scalar::from(release(py, || e.run(&Dot, (&a, &b)))?),
        (Arr::F64(a), Arr::F64(b)) => Scalar::from(release(py, || e.run(&Dot, (&a, &b)))?),
        _ => {
            return Err(PyTypeError::new_err(
                "dot: x and y must have the same dtype",
            ));
        }
    };
    scalar(py, s)
}

/// The mask a condition array gives: uint32/int32 used in place; bool
/// converted to uint32 (one copy, documented).
fn mask(obj: &Bound<'_, PyAny>, n: usize, function: &str) -> PyResult<Buffer<u32>> {
    let py = obj.py();
    if let Ok(u) = obj.cast::<PyUntypedArray>()
        && u.dtype().is_equiv_to(&dtype::<bool>(py))
    {
        let a = obj.cast::<PyArrayDyn<bool>>()?;
        let ro = a.try_readonly()?;
        let s = ro.as_slice().map_err(|_| {
            PyValueError::new_err(format!(
                "{function}: condition is not C-contiguous: pass np.ascontiguousarray(condition)"
            ))
        })?;
        return Ok(Buffer::from(
            s.iter().map(|&b| u32::from(b)).collect::<Vec<u32>>(),
        ));
    }
    let m = array(obj, "condition")?;
    let b = match m.arr {
        Arr::U32(b) => b,
        Arr::I32(b) => {
            // The same bits: nonzero is nonzero.
            let v = release(py, || b.to_vec())?;
            Buffer::from(v.into_iter().map(|x| x as u32).collect::<Vec<u32>>())
        }
        Arr::F32(_) | Arr::F64(_) => {
            return Err(PyTypeError::new_err(format!(
                "{function}: condition must be bool, uint32 or int32, not a float array (compare first: x > 0)"
            )));
        }
    };
    if b.len() != n {
        return Err(PyValueError::new_err(format!(
            "{function}: condition has {} elements, the array {n}",
            b.len()
        )));
    }
    Ok(b)
}

/// The elements of `arr` where `condition` is nonzero, in order
/// (`np.extract`).
#[pyfunction]
#[pyo3(signature = (condition, arr, device = "auto", engine = None))]
fn extract<'py>(
    py: Python<'py>,
    condition: &Bound<'py, PyAny>,
    arr: &Bound<'py, PyAny>,
    device: &str,
    engine: Option<&Bound<'py, PyEngine>>,
) -> PyResult<Bound<'py, PyAny>> {
    let e = engine_of(engine, device)?;
    let x = array(arr, "arr")?;
    one_d(&x, "arr", "extract")?;
    let n = x.shape[0];
    let m = mask(condition, n, "extract")?;
    Ok(each!(x.arr, |b| {
        let r = release(py, || e.run(&Compact, (&b, &m)))?;
        let len = r.len();
        to_numpy(py, r, &[len])?
    }))
}

/// `np.compress(condition, a)` for 1-D arrays: as [`extract`].
#[pyfunction]
#[pyo3(signature = (condition, a, device = "auto", engine = None))]
fn compress<'py>(
    py: Python<'py>,
    condition: &Bound<'py, PyAny>,
    a: &Bound<'py, PyAny>,
    device: &str,
    engine: Option<&Bound<'py, PyEngine>>,
) -> PyResult<Bound<'py, PyAny>> {
    extract(py, condition, a, device, engine)
}

/// `(counts, edges)` of a float32 array over `bins` equal bins of `range`
/// (default: the data's min and max), as `np.histogram`: the last bin
/// includes its right edge; values outside the range are not counted.
/// Bins are computed in float32, so a value within an ulp of an edge may
/// land in the neighbouring bin of numpy's float64 computation.
#[pyfunction]
#[pyo3(signature = (x, bins = 10, range = None, device = "auto", engine = None))]
fn histogram<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    bins: u32,
    range: Option<(f64, f64)>,
    device: &str,
    engine: Option<&Bound<'py, PyEngine>>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let e = engine_of(engine, device)?;
    let x = array(x, "x")?;
    let (lo, hi, counts, top) = match x.arr {
        Arr::F32(b) => range_counts(py, &e, &b, range, bins, |v| v as f32)?,
        Arr::F64(b) => range_counts(py, &e, &b, range, bins, |v| v)?,
        _ => {
            return Err(PyTypeError::new_err(
                "histogram: x must be float32 or float64",
            ));
        }
    };
    let mut c: Vec<i64> = counts.counts.iter().map(|&v| i64::from(v)).collect();
    if let Some(last) = c.last_mut() {
        *last += i64::from(top);
    }
    let step = (hi - lo) / f64::from(bins.max(1));
    let edges: Vec<f64> = (0..=bins).map(|i| lo + step * f64::from(i)).collect();
    Ok((
        PyArray1::from_vec(py, c).into_any(),
        PyArray1::from_vec(py, edges).into_any(),
    ))
}

/// `np.histogram`'s parts for float data `b`: the edges (`range` as `T`, or
/// the data's min and max), the counts over `[lo, hi)` and how many equal
/// `hi` (numpy's last bin includes it).
fn range_counts<T>(
    py: Python<'_>,
    e: &Engine,
    b: &Buffer<T>,
    range: Option<(f64, f64)>,
    bins: u32,
    narrow: fn(f64) -> T,
) -> PyResult<(f64, f64, tandem::kernels::HistogramCounts, u32)>
where
    T: tandem::kernels::histogram::RangeFloat
        + Into<f64>
        + std::ops::Add<Output = T>
        + std::ops::Sub<Output = T>,
    Min: for<'a> tandem::Kernel<&'a Buffer<T>, Out = Option<T>>,
    Max: for<'a> tandem::Kernel<&'a Buffer<T>, Out = Option<T>>,
    CompactIf<T>: for<'a> tandem::Kernel<&'a Buffer<T>, Out = Buffer<T>>,
{
    let (lo, hi) = match range {
        Some((lo, hi)) => (narrow(lo), narrow(hi)),
        None => {
            let (lo, hi) = release(py, || Ok((e.run(&Min, b)?, e.run(&Max, b)?)))?;
            let half = narrow(0.5);
            match (lo, hi) {
                (Some(lo), Some(hi)) if lo < hi => (lo, hi),
                (Some(v), Some(_)) => (v - half, v + half),
                _ => (narrow(0.0), narrow(1.0)),
            }
        }
    };
    let (lo64, hi64): (f64, f64) = (lo.into(), hi.into());
    let h = HistogramRange {
        lo: lo64,
        hi: hi64,
        bins,
    };
    let eq = CompactIf {
        cmp: Compare::Eq,
        threshold: hi,
    };
    let (counts, top) = release(py, || Ok((e.run(&h, b)?, e.run(&eq, b)?.len() as u32)))?;
    Ok((lo64, hi64, counts, top))
}

// ---------- matrices and images ----------

fn two_d(np: &Np, name: &str, function: &str) -> PyResult<(usize, usize)> {
    match np.shape[..] {
        [r, c] => Ok((r, c)),
        _ => Err(PyValueError::new_err(format!(
            "{function}: {name} must be 2-D, got shape {:?}",
            np.shape
        ))),
    }
}

/// `a @ b` for 2-D float32 arrays (SGEMM).
#[pyfunction]
#[pyo3(signature = (a, b, device = "auto", engine = None))]
fn matmul<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    device: &str,
    engine: Option<&Bound<'py, PyEngine>>,
) -> PyResult<Bound<'py, PyAny>> {
    let e = engine_of(engine, device)?;
    let (a, b) = (array(a, "a")?, array(b, "b")?);
    let ((m, k), (k2, n)) = (two_d(&a, "a", "matmul")?, two_d(&b, "b", "matmul")?);
    if k != k2 {
        return Err(PyValueError::new_err(format!(
            "matmul: shapes ({m}, {k}) and ({k2}, {n}) do not align ({k} != {k2})"
        )));
    }
    let g = Gemm::new(m, n, k);
    match (a.arr, b.arr) {
        (Arr::F32(x), Arr::F32(y)) => to_numpy(py, release(py, || e.run(&g, (&x, &y)))?, &[m, n]),
        (Arr::F64(x), Arr::F64(y)) => to_numpy(py, release(py, || e.run(&g, (&x, &y)))?, &[m, n]),
        _ => Err(PyTypeError::new_err(
            "matmul: a and b must both be float32 or both float64",
        )),
    }
}

/// `scipy.signal.correlate2d(image, filter, mode="same", boundary=...)` for
/// float32 arrays and an odd-sized filter; `boundary="fill"` pads with zeros,
/// `"nearest"` repeats the edge pixel.
#[pyfunction]
#[pyo3(signature = (image, filter, mode = "same", boundary = "fill", device = "auto", engine = None))]
#[allow(
    clippy::too_many_arguments,
    reason = "scipy's signature plus device and engine"
)]
fn correlate2d<'py>(
    py: Python<'py>,
    image: &Bound<'py, PyAny>,
    filter: &Bound<'py, PyAny>,
    mode: &str,
    boundary: &str,
    device: &str,
    engine: Option<&Bound<'py, PyEngine>>,
) -> PyResult<Bound<'py, PyAny>> {
    let e = engine_of(engine, device)?;
    if mode != "same" {
        return Err(PyValueError::new_err(format!(
            "correlate2d: mode must be \"same\", not {mode:?}"
        )));
    }
    let border = match boundary {
        "fill" => Border::Zero,
        "nearest" => Border::Clamp,
        other => {
            return Err(PyValueError::new_err(format!(
                "correlate2d: boundary must be \"fill\" or \"nearest\", not {other:?}"
            )));
        }
    };
    let (img, f) = (array(image, "image")?, array(filter, "filter")?);
    let (height, width) = two_d(&img, "image", "correlate2d")?;
    let (filter_height, filter_width) = two_d(&f, "filter", "correlate2d")?;
    let conv = Conv2d {
        height,
        width,
        filter_height,
        filter_width,
        border,
    };
    match (img.arr, f.arr) {
        (Arr::F32(x), Arr::F32(w)) => to_numpy(
            py,
            release(py, || e.run(&conv, (&x, &w)))?,
            &[height, width],
        ),
        (Arr::F64(x), Arr::F64(w)) => to_numpy(
            py,
            release(py, || e.run(&conv, (&x, &w)))?,
            &[height, width],
        ),
        _ => Err(PyTypeError::new_err(
            "correlate2d: image and filter must both be float32 or both float64",
        )),
    }
}

// ---------- expressions ----------

/// An expression's names and types, its arrays and its scalars.
type Named = (Vars, Vec<(String, Np)>, Vec<(String, Scalar)>);

/// The arrays and scalars of `kwargs`: numpy arrays in place; numpy
/// scalars as their type; Python ints as i32, and Python floats as the
/// arrays' float type (f64 when an array is float64, else f32), as numpy
/// treats Python scalars (NEP 50).
fn expr_args(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Named> {
    let (mut vars, mut arrays, mut scalars) = (Vars::new(), Vec::new(), Vec::new());
    let Some(kwargs) = kwargs else {
        return Ok((vars, arrays, scalars));
    };
    let mut numbers = Vec::new();
    for (k, v) in kwargs.iter() {
        let name: String = k.extract()?;
        if v.cast::<PyUntypedArray>().is_ok() {
            let np = array(&v, &name)?;
            let t = each!(&np.arr, |b| element_type(b));
            vars = vars.typed(&name, true, t);
            arrays.push((name, np));
        } else {
            numbers.push((name, v));
        }
    }
    let wide = arrays.iter().any(|(_, np)| matches!(np.arr, Arr::F64(_)));
    for (name, v) in numbers {
        let s = if v.is_instance_of::<PyBool>() {
            return Err(PyTypeError::new_err(format!(
                "{name}: a bool scalar; pass 1 or 0, or compare inside the expression"
            )));
        } else if let Ok(n) = v.getattr("dtype") {
            let py = v.py();
            let d = n.cast::<numpy::PyArrayDescr>()?;
            if d.is_equiv_to(&dtype::<f32>(py)) {
                Scalar::F32(v.extract::<f32>()?)
            } else if d.is_equiv_to(&dtype::<f64>(py)) {
                Scalar::F64(v.extract::<f64>()?)
            } else if d.is_equiv_to(&dtype::<i32>(py)) {
                Scalar::I32(v.extract::<i32>()?)
            } else if d.is_equiv_to(&dtype::<u32>(py)) {
                Scalar::U32(v.extract::<u32>()?)
            } else {
                return Err(PyTypeError::new_err(format!(
                    "{name}: scalar of dtype {d}; pass a float32, float64, int32 or uint32 (or a Python float or int)"
                )));
            }
        } else if v.is_instance_of::<PyFloat>() && wide {
            Scalar::F64(v.extract::<f64>()?)
        } else if v.is_instance_of::<PyFloat>() {
            Scalar::F32(v.extract::<f64>()? as f32)
        } else if v.is_instance_of::<PyInt>() {
            Scalar::I32(v.extract::<i32>().map_err(|_| {
                PyValueError::new_err(format!(
                    "{name}: int does not fit int32; pass np.uint32(...) for unsigned"
                ))
            })?)
        } else {
            return Err(PyTypeError::new_err(format!(
                "{name}: expected a numpy array or a number, not {}",
                v.get_type().name()?
            )));
        };
        vars = vars.typed(&name, false, s.element_type());
        scalars.push((name, s));
    }
    Ok((vars, arrays, scalars))
}

fn element_type<T: Element>(_: &Buffer<T>) -> ElementType {
    T::TYPE
}

fn bind<'a>(arrays: &'a [(String, Np)], scalars: &[(String, Scalar)]) -> Args<'a> {
    let mut args = Args::new();
    for (name, np) in arrays {
        args = each!(&np.arr, |b| args.array(name, b));
    }
    for (name, s) in scalars {
        args = args.scalar(name, *s);
    }
    args
}

/// `expr` evaluated elementwise over the keyword arrays, in one pass:
/// `tandem.map("a*x + y", a=3.0, x=x, y=y)`. A list of expressions gives a
/// tuple of arrays, computed together.
#[pyfunction]
#[pyo3(signature = (expr, device = "auto", engine = None, **kwargs))]
fn map<'py>(
    py: Python<'py>,
    expr: &Bound<'py, PyAny>,
    device: &str,
    engine: Option<&Bound<'py, PyEngine>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let e = engine_of(engine, device)?;
    let (vars, arrays, scalars) = expr_args(kwargs)?;
    let (texts, single): (Vec<String>, bool) = match expr.extract::<String>() {
        Ok(t) => (vec![t], true),
        Err(_) => (expr.extract::<Vec<String>>()?, false),
    };
    let exprs = texts
        .iter()
        .map(|t| Expr::parse(t, &vars))
        .collect::<tandem::Result<Vec<_>>>()
        .map_err(py_err)?;
    let kernel = Map::with_outputs(exprs).map_err(py_err)?;
    let args = unused_checked(
        &kernel.arrays(),
        &kernel.scalars(),
        &arrays,
        &scalars,
        |a, s| bind(a, s),
    )?;
    let shape = arrays
        .first()
        .map(|(_, np)| np.shape.clone())
        .unwrap_or_default();
    let outs = release(py, || e.run(&kernel, &args))?;
    let mut items = Vec::new();
    for a in outs.0 {
        let a = match a {
            tandem::kernels::Array::F32(b) => Arr::F32(b),
            tandem::kernels::Array::I32(b) => Arr::I32(b),
            tandem::kernels::Array::U32(b) => Arr::U32(b),
            tandem::kernels::Array::F64(b) => Arr::F64(b),
            other => return Err(PyTypeError::new_err(format!("unexpected output {other:?}"))),
        };
        items.push(arr_to_numpy(py, a, &shape)?);
    }
    if single {
        Ok(items.remove(0))
    } else {
        Ok(pyo3::types::PyTuple::new(py, items)?.into_any())
    }
}

/// Every array of an expression must have one shape; keyword names the
/// expression does not read are an error (a typo would otherwise pass).
fn unused_checked<'a>(
    read_arrays: &[&str],
    read_scalars: &[&str],
    arrays: &'a [(String, Np)],
    scalars: &[(String, Scalar)],
    make: impl FnOnce(&'a [(String, Np)], &[(String, Scalar)]) -> Args<'a>,
) -> PyResult<Args<'a>> {
    for (n, _) in arrays {
        if !read_arrays.contains(&n.as_str()) {
            return Err(PyValueError::new_err(format!(
                "{n} is not used by the expression"
            )));
        }
    }
    for (n, _) in scalars {
        if !read_scalars.contains(&n.as_str()) {
            return Err(PyValueError::new_err(format!(
                "{n} is not used by the expression"
            )));
        }
    }
    if let Some((first, np)) = arrays.first() {
        for (n, other) in arrays {
            if other.shape != np.shape {
                return Err(PyValueError::new_err(format!(
                    "{n} has shape {:?}, {first} {:?}: expression arrays must have one shape",
                    other.shape, np.shape
                )));
            }
        }
    }
    Ok(make(arrays, scalars))
}

/// A fused reduction of an expression: `tandem.reduce("sum", "x*y", x=x,
/// y=y)`; `op` is `sum`, `min`, `max` (a number) or `argmin`, `argmax` (an
/// index).
#[pyfunction]
#[pyo3(signature = (op, expr, device = "auto", engine = None, **kwargs))]
fn reduce<'py>(
    py: Python<'py>,
    op: &str,
    expr: &str,
    device: &str,
    engine: Option<&Bound<'py, PyEngine>>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let e = engine_of(engine, device)?;
    let (vars, arrays, scalars) = expr_args(kwargs)?;
    let ex = Expr::parse(expr, &vars).map_err(py_err)?;
    let kernel = match op {
        "sum" => MapReduce::sum(ex),
        "min" => MapReduce::min(ex),
        "max" => MapReduce::max(ex),
        "argmin" => MapReduce::argmin(ex),
        "argmax" => MapReduce::argmax(ex),
        other => {
            return Err(PyValueError::new_err(format!(
                "reduce: op must be sum, min, max, argmin or argmax, not {other:?}"
            )));
        }
    }
    .map_err(py_err)?;
    let args = unused_checked(
        &kernel.arrays(),
        &kernel.scalars(),
        &arrays,
        &scalars,
        |a, s| bind(a, s),
    )?;
    let r: Option<Reduced> = release(py, || e.run(&kernel, &args))?;
    let r = r.ok_or_else(|| empty(op))?;
    match r.index {
        Some(i) if op.starts_with("arg") => Ok(i.into_pyobject(py)?.into_any()),
        _ => scalar(py, r.value),
    }
}

// ---------- explain ----------

fn explain(
    e: &Engine,
    function: &str,
    args: &Bound<'_, pyo3::types::PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<String> {
    let arg = |i: usize| -> PyResult<Np> {
        let a = args.get_item(i).map_err(|_| {
            PyValueError::new_err(format!(
                "explain(\"{function}\", ...): argument {} missing",
                i + 1
            ))
        })?;
        array(&a, "x")
    };
    macro_rules! one {
        ($k:expr) => {{
            let x = arg(0)?;
            each!(x.arr, |b| e.explain(&$k, &b).to_string())
        }};
    }
    Ok(match function {
        "sum" => one!(Sum),
        "min" => one!(Min),
        "max" => one!(Max),
        "argmin" => one!(ArgMin),
        "argmax" => one!(ArgMax),
        "cumsum" => one!(Scan::inclusive()),
        "sort" => one!(Sort),
        "argsort" => one!(Argsort),
        "dot" => match (arg(0)?.arr, arg(1)?.arr) {
            (Arr::F32(a), Arr::F32(b)) => e.explain(&Dot, (&a, &b)).to_string(),
            (Arr::F64(a), Arr::F64(b)) => e.explain(&Dot, (&a, &b)).to_string(),
            _ => {
                return Err(PyTypeError::new_err(
                    "explain(\"dot\"): two float32 or two float64 arrays",
                ));
            }
        },
        "matmul" => {
            let (a, b) = (arg(0)?, arg(1)?);
            let ((m, k), (_, n)) = (two_d(&a, "a", "matmul")?, two_d(&b, "b", "matmul")?);
            match (a.arr, b.arr) {
                (Arr::F32(x), Arr::F32(y)) => e.explain(&Gemm::new(m, n, k), (&x, &y)).to_string(),
                (Arr::F64(x), Arr::F64(y)) => e.explain(&Gemm::new(m, n, k), (&x, &y)).to_string(),
                _ => {
                    return Err(PyTypeError::new_err(
                        "explain(\"matmul\"): float32 or float64 arrays",
                    ));
                }
            }
        }
        "map" => {
            let text: String = args.get_item(0)?.extract()?;
            let (vars, arrays, scalars) = expr_args(kwargs)?;
            let kernel = Map::new(Expr::parse(&text, &vars).map_err(py_err)?).map_err(py_err)?;
            let a = bind(&arrays, &scalars);
            e.explain(&kernel, &a).to_string()
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "explain: unknown function {other:?} (sum, dot, min, max, argmin, argmax, cumsum, sort, argsort, matmul, map)"
            )));
        }
    })
}

/// `explain` with the module's default engine.
#[pyfunction(name = "explain")]
#[pyo3(signature = (function, *args, **kwargs))]
fn explain_default(
    function: &str,
    args: &Bound<'_, pyo3::types::PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<String> {
    explain(&DEFAULT.get()?, function, args, kwargs)
}

/// The default engine's counters.
#[pyfunction(name = "stats")]
fn stats_default(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    stats(py, &DEFAULT.get()?)
}

/// The default engine's CPU and GPU.
#[pyfunction(name = "info")]
fn info_default(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    info(py, &DEFAULT.get()?)
}

/// The address of the memory a kernel reads for `x`: a test hook that shows
/// an accepted array is read in place (it equals `x.ctypes.data`).
#[pyfunction]
fn _read_address(x: &Bound<'_, PyAny>) -> PyResult<usize> {
    fn address<T: Element>(b: &Buffer<T>) -> PyResult<usize> {
        Ok(b.host().map_err(py_err)?.as_ptr() as usize)
    }
    match array(x, "x")?.arr {
        Arr::F32(b) => address(&b),
        Arr::I32(b) => address(&b),
        Arr::U32(b) => address(&b),
        Arr::F64(b) => address(&b),
    }
}

#[pymodule]
fn _tandem(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEngine>()?;
    m.add_function(wrap_pyfunction!(sum, m)?)?;
    m.add_function(wrap_pyfunction!(dot, m)?)?;
    m.add_function(wrap_pyfunction!(min, m)?)?;
    m.add_function(wrap_pyfunction!(max, m)?)?;
    m.add_function(wrap_pyfunction!(argmin, m)?)?;
    m.add_function(wrap_pyfunction!(argmax, m)?)?;
    m.add_function(wrap_pyfunction!(cumsum, m)?)?;
    m.add_function(wrap_pyfunction!(sort, m)?)?;
    m.add_function(wrap_pyfunction!(argsort, m)?)?;
    m.add_function(wrap_pyfunction!(extract, m)?)?;
    m.add_function(wrap_pyfunction!(compress, m)?)?;
    m.add_function(wrap_pyfunction!(histogram, m)?)?;
    m.add_function(wrap_pyfunction!(matmul, m)?)?;
    m.add_function(wrap_pyfunction!(transpose, m)?)?;
    m.add_function(wrap_pyfunction!(correlate2d, m)?)?;
    m.add_function(wrap_pyfunction!(map, m)?)?;
    m.add_function(wrap_pyfunction!(reduce, m)?)?;
    m.add_function(wrap_pyfunction!(explain_default, m)?)?;
    m.add_function(wrap_pyfunction!(stats_default, m)?)?;
    m.add_function(wrap_pyfunction!(info_default, m)?)?;
    m.add_function(wrap_pyfunction!(_read_address, m)?)?;
    Ok(())
}
