//! The case harness: what a case is (a kernel at one element type over one
//! size axis), its inputs and how a timed call ends.

use std::any::Any;
use std::hint::black_box;

use tandem::kernels::HistogramCounts;
use tandem::kernels::catalogue::{Call, CallInput, CallKernel, Probe};
use tandem::{Buffer, Element, Engine, Explanation, Gpu, HostData, Kernel, Residency};

use crate::cli::{Options, pow2_sizes};
use crate::report::size_label;
use crate::timing::Column;

/// What a case's size counts, and the default sweep over it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Axis {
    /// The size column's header: `n` for vectors, `n×n` for squares.
    pub(crate) label: &'static str,
    /// The axis' name in CSV and JSON (ASCII): `n` or `side`.
    pub(crate) key: &'static str,
    /// A size as printed: `2^20` for vectors, `1024²` for squares.
    pub(crate) show: fn(usize) -> String,
    /// Input data elements at a size (what `--max` and `--quick` cap).
    pub(crate) elements: fn(usize) -> usize,
    /// The default sizes with at most `max` data elements.
    pub(crate) sweep: fn(usize) -> Vec<usize>,
}

/// A vector of `n` elements; sizes 2^10, 2^12, ... up to the cap.
pub(crate) const ELEMENTS: Axis = Axis {
    label: "n",
    key: "n",
    show: size_label,
    elements: |n| n,
    sweep: |max| pow2_sizes(max.max(1).ilog2()),
};

/// An `n×n` matrix (or image) of side `n`: `n²` elements per input; sides
/// 32, 64, ... up to the cap. For SGEMM (`m = n = k`), convolution or
/// transpose.
pub(crate) const SQUARE: Axis = Axis {
    label: "n×n",
    key: "side",
    show: |n| format!("{n}²"),
    elements: |n| n * n,
    sweep: |max| {
        (5..16)
            .map(|k| 1usize << k)
            .filter(|n| n * n <= max)
            .collect()
    },
};

/// On a software GPU driver (lavapipe) the GPU columns run only up to this
/// many data elements unless a case asks for more
/// ([`Case::software_gpu_max`]): its calls take up to a second at 2^24, and
/// would take most of the default run's time. `--no-caps` lifts it.
pub(crate) const SOFTWARE_GPU_MAX_ELEMENTS: usize = 1 << 20;

/// One kernel at one element type over one size axis.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) family: &'static str,
    /// Element types of the inputs, e.g. `f32` or `u32,f32`.
    pub(crate) element: String,
    pub(crate) axis: Axis,
    /// The default sweep's cap in data elements, when this case needs a
    /// lower one than `--max` (a slow serial reference, say).
    pub(crate) default_max: Option<usize>,
    /// The serial column runs only up to this many data elements, and why
    /// (an O(n³) loop, say); `--no-caps` lifts it.
    pub(crate) serial_max: Option<(usize, &'static str)>,
    /// The GPU columns' cap on a software driver.
    pub(crate) software_gpu_max: usize,
    /// A line printed under the case's title: what its figures mean where
    /// that is not the usual.
    pub(crate) note: Option<&'static str>,
    pub(crate) setup: Box<dyn Fn(usize) -> Box<dyn Instance>>,
}

impl Case {
    pub(crate) fn new<D: HostArgs>(
        name: &'static str,
        family: &'static str,
        axis: Axis,
        setup: impl Fn(usize) -> Bench<D> + 'static,
    ) -> Case {
        Case {
            name,
            family,
            element: D::types(),
            axis,
            default_max: None,
            serial_max: None,
            software_gpu_max: SOFTWARE_GPU_MAX_ELEMENTS,
            note: None,
            setup: Box::new(move |n| Box::new(setup(n))),
        }
    }

    /// The generic case of a library catalogue entry ([`Probe`]): its call
    /// on the entry's inputs through the engine, against the entry's scalar
    /// oracle as the serial column, with no Rust peer. Its size axis is
    /// elements (a square kernel's side is about `√n`).
    pub(crate) fn entry(family: &'static str, probe: &'static Probe) -> Case {
        Case {
            name: probe.kernel,
            family,
            element: {
                // The element types of the entry's inputs, in order.
                let mut types: Vec<String> = Vec::new();
                probe.call(1).inputs(&mut |s| {
                    let t = s.element.to_string();
                    if !types.contains(&t) {
                        types.push(t);
                    }
                });
                types.join(",")
            },
            axis: ELEMENTS,
            default_max: Some(probe.max_n),
            serial_max: None,
            software_gpu_max: SOFTWARE_GPU_MAX_ELEMENTS.min(probe.max_n),
            note: None,
            setup: Box::new(|n| Box::new(Entry(probe.call(n)))),
        }
    }

    /// Caps this case's default sweep at `elements` data elements (for a
    /// slow serial reference, say); `--max`, `--max-log2` and `--quick`
    /// override it.
    pub(crate) fn max_elements(mut self, elements: usize) -> Case {
        self.default_max = Some(elements);
        self
    }

    /// Prints `note` under the case's title.
    pub(crate) fn note(mut self, note: &'static str) -> Case {
        self.note = Some(note);
        self
    }

    /// Runs the serial column only up to `elements` data elements, for the
    /// reason given; `--no-caps` lifts it.
    pub(crate) fn serial_max(mut self, elements: usize, why: &'static str) -> Case {
        self.serial_max = Some((elements, why));
        self
    }

    /// Runs the GPU columns up to `elements` data elements on a software
    /// driver (default [`SOFTWARE_GPU_MAX_ELEMENTS`]).
    pub(crate) fn software_gpu_max(mut self, elements: usize) -> Case {
        self.software_gpu_max = elements;
        self
    }

    /// The largest size `column` runs at, in data elements, and why; `None`
    /// when it runs at every size.
    pub(crate) fn column_cap(
        &self,
        column: Column,
        software_gpu: bool,
    ) -> Option<(usize, &'static str)> {
        match column {
            Column::Serial => self.serial_max,
            Column::GpuHost | Column::GpuRes if software_gpu => Some((
                self.software_gpu_max,
                "a software GPU driver is slow at large sizes",
            )),
            _ => None,
        }
    }

    /// The sizes to run: `--sizes` as given up to `--max` data elements
    /// (a side of 2^20 is 2^40 elements), else the axis' sweep under the
    /// caps.
    pub(crate) fn sizes(&self, opts: &Options) -> Vec<usize> {
        if let Some(s) = &opts.sizes {
            let mut s = s.clone();
            s.retain(|&n| (self.axis.elements)(n) <= opts.max_elements);
            return s;
        }
        let mut max = opts.max_elements;
        if let Some(m) = self.default_max.filter(|_| !opts.max_given) {
            max = max.min(m);
        }
        let mut sizes = (self.axis.sweep)(max);
        sizes.retain(|&n| (self.axis.elements)(n) <= max);
        sizes
    }
}

/// Host data a case starts from: a `Vec<T>` or a tuple of them. Each call of
/// [`HostArgs::buffers`] makes new host-only `Buffer`s holding a copy.
pub(crate) trait HostArgs: 'static {
    type Bufs: DevArgs;
    fn buffers(&self) -> Self::Bufs;
    fn types() -> String;
}

/// The buffers a kernel takes, as owned values.
pub(crate) trait DevArgs: 'static {
    /// The kernel's input type borrowed from them: `&Buffer<T>` or a tuple.
    type In<'a>: tandem::Inputs + Clone;
    fn input(&self) -> Self::In<'_>;
    /// Whether a call left a device copy on any of them.
    fn touched(&self) -> bool;
    /// Uploads them (a resident copy on `gpu`).
    fn upload(&self, gpu: &Gpu) -> tandem::Result<()>;
}

impl<T: Element> HostArgs for Vec<T> {
    type Bufs = Buffer<T>;
    fn buffers(&self) -> Buffer<T> {
        Buffer::from(self.clone())
    }
    fn types() -> String {
        T::TYPE.wgsl().to_string()
    }
}

impl<T: Element> DevArgs for Buffer<T> {
    type In<'a> = &'a Buffer<T>;
    fn input(&self) -> &Buffer<T> {
        self
    }
    fn touched(&self) -> bool {
        self.residency() != Residency::Host
    }
    fn upload(&self, gpu: &Gpu) -> tandem::Result<()> {
        gpu.resident("compare", self).map(drop)
    }
}

impl<A: HostArgs, B: HostArgs> HostArgs for (A, B) {
    type Bufs = (A::Bufs, B::Bufs);
    fn buffers(&self) -> Self::Bufs {
        (self.0.buffers(), self.1.buffers())
    }
    fn types() -> String {
        let (a, b) = (A::types(), B::types());
        if a == b { a } else { format!("{a},{b}") }
    }
}

impl<A: DevArgs, B: DevArgs> DevArgs for (A, B) {
    type In<'a> = (A::In<'a>, B::In<'a>);
    fn input(&self) -> Self::In<'_> {
        (self.0.input(), self.1.input())
    }
    fn touched(&self) -> bool {
        self.0.touched() || self.1.touched()
    }
    fn upload(&self, gpu: &Gpu) -> tandem::Result<()> {
        self.0.upload(gpu)?;
        self.1.upload(gpu)
    }
}

/// One case at one size, ready to time.
pub(crate) trait Instance {
    fn explain(&self, engine: &Engine) -> Explanation;
    /// The serial scalar reference, once.
    fn serial(&mut self) -> Kept;
    /// The Rust peer's name, when the case has one.
    fn peer_name(&self) -> Option<&'static str>;
    /// The Rust peer, once (`None` when the case has none).
    fn peer(&mut self) -> Option<Kept>;
    /// Makes the inputs host-only again if a call left device copies
    /// (untimed: a user's data starts on the host).
    fn reset(&mut self);
    /// One call on the inputs as they are.
    fn call(&self, engine: &Engine, how: Finish) -> tandem::Result<Kept>;
    fn upload(&self, gpu: &Gpu) -> tandem::Result<()>;
}

/// A kernel, its inputs and its serial reference: what [`Case::new`]'s
/// setup returns, built with [`bench`].
pub(crate) struct Bench<D: HostArgs> {
    pub(crate) data: D,
    pub(crate) bufs: D::Bufs,
    pub(crate) call: CallFn<D::Bufs>,
    pub(crate) explain: ExplainFn<D::Bufs>,
    pub(crate) serial: RefFn<D>,
    /// The best Rust crate (or rayon idiom) for the same job, and its call.
    pub(crate) peer: Option<(&'static str, RefFn<D>)>,
}

/// A timed call on a case's host data.
pub(crate) type RefFn<D> = Box<dyn FnMut(&D) -> Kept>;
pub(crate) type CallFn<B> = Box<dyn Fn(&Engine, &B, Finish) -> tandem::Result<Kept>>;
pub(crate) type ExplainFn<B> = Box<dyn Fn(&Engine, &B) -> Explanation>;

/// Times `kernel` on `data` against `serial`, the plain loop a user would
/// write (its result is passed to `black_box`).
pub(crate) fn bench<D, K, O, R>(
    data: D,
    kernel: K,
    mut serial: impl FnMut(&D) -> R + 'static,
) -> Bench<D>
where
    D: HostArgs,
    K: for<'a> Kernel<<D::Bufs as DevArgs>::In<'a>, Out = O> + Clone + 'static,
    O: Output,
{
    let k = kernel.clone();
    Bench {
        bufs: data.buffers(),
        data,
        call: Box::new(move |e, b, how| e.run(&kernel, b.input())?.finish(e, how)),
        explain: Box::new(move |e, b| e.explain(&k, b.input())),
        serial: Box::new(move |d| {
            black_box(serial(d));
            Box::new(())
        }),
        peer: None,
    }
}

impl<D: HostArgs> Bench<D> {
    /// Times `call` as the `rust peer` column: the best Rust crate for the
    /// job, or the rayon idiom a Rust user would write where no crate does
    /// better. Its result is passed to `black_box` and dropped untimed.
    pub(crate) fn peer<R: 'static>(
        mut self,
        name: &'static str,
        mut call: impl FnMut(&D) -> R + 'static,
    ) -> Self {
        self.peer = Some((name, Box::new(move |d| Box::new(black_box(call(d))))));
        self
    }
}

impl<D: HostArgs> Instance for Bench<D> {
    fn explain(&self, engine: &Engine) -> Explanation {
        (self.explain)(engine, &self.bufs)
    }
    fn serial(&mut self) -> Kept {
        (self.serial)(&self.data)
    }
    fn peer_name(&self) -> Option<&'static str> {
        self.peer.as_ref().map(|p| p.0)
    }
    fn peer(&mut self) -> Option<Kept> {
        let (_, call) = self.peer.as_mut()?;
        Some(call(&self.data))
    }
    fn reset(&mut self) {
        if self.bufs.touched() {
            self.bufs = self.data.buffers();
        }
    }
    fn call(&self, engine: &Engine, how: Finish) -> tandem::Result<Kept> {
        (self.call)(engine, &self.bufs, how)
    }
    fn upload(&self, gpu: &Gpu) -> tandem::Result<()> {
        self.bufs.upload(gpu)
    }
}

/// A catalogue entry's call at one size ([`Case::entry`]).
struct Entry(Box<dyn Call>);

impl Entry {
    fn input(&self, to_host: bool) -> CallInput<'_> {
        CallInput {
            call: &*self.0,
            to_host,
        }
    }
}

impl Instance for Entry {
    fn explain(&self, engine: &Engine) -> Explanation {
        engine.explain(&CallKernel(self.0.name()), self.input(true))
    }
    fn serial(&mut self) -> Kept {
        Box::new(black_box(self.0.oracle()))
    }
    fn peer_name(&self) -> Option<&'static str> {
        None
    }
    fn peer(&mut self) -> Option<Kept> {
        None
    }
    fn reset(&mut self) {
        if !self.0.on_host_only() {
            self.0 = self.0.fresh();
        }
    }
    fn call(&self, engine: &Engine, how: Finish) -> tandem::Result<Kept> {
        // The result is dropped inside the call (type-erased), so its free
        // is timed: a few microseconds against the kernel's time.
        let to_host = how == Finish::Host;
        engine.run(&CallKernel(self.0.name()), self.input(to_host))?;
        if let (Finish::Device, Some(g)) = (how, engine.gpu()) {
            g.wait("compare")?;
        }
        Ok(Box::new(()))
    }
    fn upload(&self, gpu: &Gpu) -> tandem::Result<()> {
        self.0.make_resident(gpu)
    }
}

/// A result kept alive until the clock has stopped, so freeing it is not timed.
pub(crate) type Kept = Box<dyn Any>;

/// How a timed call ends for a buffer result.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Bring it to host memory (`Buffer::host`: a download when it is on
    /// the device, nothing when it is already on the host).
    Host,
    /// Leave it where it is, but wait until the GPU has finished.
    Device,
}

/// A kernel result the harness knows how to finish.
pub(crate) trait Output {
    fn finish(self, engine: &Engine, how: Finish) -> tandem::Result<Kept>;
}

impl<T: Element> Output for Buffer<T> {
    fn finish(self, engine: &Engine, how: Finish) -> tandem::Result<Kept> {
        match how {
            // The host view first: tuple fields drop in order, and a `Buffer`
            // whose host copy is no longer shared gives that memory back to
            // tandem's host pool (as in user code, where the view goes first).
            Finish::Host => {
                let host: HostData<T> = self.host()?;
                Ok(Box::new((host, self)))
            }
            Finish::Device => {
                if let Some(g) = engine.gpu() {
                    g.wait("compare")?;
                }
                Ok(Box::new(self))
            }
        }
    }
}

impl<A: Output, B: Output> Output for (A, B) {
    fn finish(self, engine: &Engine, how: Finish) -> tandem::Result<Kept> {
        let a = self.0.finish(engine, how)?;
        Ok(Box::new((a, self.1.finish(engine, how)?)))
    }
}

impl Output for tandem::kernels::Outputs {
    fn finish(self, engine: &Engine, how: Finish) -> tandem::Result<Kept> {
        let mut kept = Vec::new();
        for a in self.0 {
            kept.push(match a {
                tandem::kernels::Array::F32(b) => b.finish(engine, how)?,
                tandem::kernels::Array::I32(b) => b.finish(engine, how)?,
                tandem::kernels::Array::U32(b) => b.finish(engine, how)?,
                other => unreachable!("an array type compare does not know: {other:?}"),
            });
        }
        Ok(Box::new(kept))
    }
}

macro_rules! scalar_output {
    ($($t:ty),*) => {$(
        impl Output for $t {
            fn finish(self, _: &Engine, _: Finish) -> tandem::Result<Kept> {
                Ok(Box::new(black_box(self)))
            }
        }
    )*};
}
scalar_output!(
    f32,
    f64,
    Option<f64>,
    Option<(usize, f64)>,
    u32,
    i32,
    u64,
    usize,
    Option<f32>,
    Option<u32>,
    Option<(usize, f32)>,
    Option<(usize, u32)>,
    Option<tandem::kernels::Reduced>,
    HistogramCounts
);

// Inputs

/// Seeds of the first and second input arrays.
pub(crate) const SEED_X: u64 = 0x9E37_79B9_7F4A_7C15;
pub(crate) const SEED_Y: u64 = 0xD1B5_4A32_D192_ED03;

/// `n` u32 keys with all 32 bits random (a radix sort cannot skip a pass).
pub(crate) fn random_keys(n: usize, seed: u64) -> Vec<u32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u32
        })
        .collect()
}

/// Values from a xorshift64* generator: the top 24 bits of each step.
pub(crate) fn xorshift(n: usize, seed: u64) -> impl Iterator<Item = u32> {
    let mut state = seed | 1;
    (0..n).map(move |_| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as u32
    })
}

/// `n` integers in `[0, below)` (`below` at most 2^24 for every value to be
/// reachable).
pub(crate) fn random_u32(n: usize, seed: u64, below: u32) -> Vec<u32> {
    xorshift(n, seed)
        .map(|bits| ((u64::from(bits) * u64::from(below)) >> 24) as u32)
        .collect()
}

/// `n` floats in `[0.5, 2.0)`.
pub(crate) fn random_f32(n: usize, seed: u64) -> Vec<f32> {
    xorshift(n, seed)
        .map(|bits| 0.5 + 1.5 * (bits as f32 / (1u32 << 24) as f32))
        .collect()
}
