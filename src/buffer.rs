//! [`Buffer<T>`]: one logical array with a host copy, a device copy, or both.
//!
//! Coherency follows Kokkos' `DualView`: each copy is either current or
//! absent. Reading on the host downloads a missing host copy once; using the
//! buffer on the GPU uploads a missing device copy once; a kernel's output is
//! born with only the copy of the backend that computed it. A write through
//! [`Buffer::write`] replaces the host copy and drops the device copy.
//!
//! The host copy is either owned (a `Vec`) or borrowed: memory the buffer
//! does not own, kept alive by an owner it holds ([`Buffer::from_shared`],
//! [`Buffer::from_memory`] with any [`HostMemory`]; the Python package
//! wraps numpy arrays this way, without a copy). Borrowed memory is never
//! written: [`Buffer::write`] replaces it with a new owned copy (copy on
//! write), so the owner's data is never changed by tandem.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Result;
use crate::gpu::DeviceCopy;
use crate::kernel::InputState;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i32 {}
    impl Sealed for u32 {}
    impl Sealed for f64 {}
}

/// The scalar types a [`Buffer`] can hold: `f32`, `i32`, `u32` and `f64`.
///
/// Every CPU kernel takes `f64` where it takes `f32`; on the GPU, `f64`
/// needs an adapter with `SHADER_F64` (see
/// [`GpuFeatures::f64`](crate::GpuFeatures::f64)).
pub trait Element:
    bytemuck::Pod + Send + Sync + fmt::Debug + PartialEq + Default + sealed::Sealed + 'static
{
    /// The runtime tag of this type.
    const TYPE: ElementType;
}

impl Element for f32 {
    const TYPE: ElementType = ElementType::F32;
}
impl Element for i32 {
    const TYPE: ElementType = ElementType::I32;
}
impl Element for u32 {
    const TYPE: ElementType = ElementType::U32;
}
impl Element for f64 {
    const TYPE: ElementType = ElementType::F64;
}

/// Runtime tag of an [`Element`] type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ElementType {
    /// 32-bit IEEE float.
    F32,
    /// 32-bit two's-complement integer.
    I32,
    /// 32-bit unsigned integer.
    U32,
    /// 64-bit IEEE float (on the GPU only with `SHADER_F64`).
    F64,
}

impl ElementType {
    /// The WGSL spelling of the type.
    pub fn wgsl(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::I32 => "i32",
            ElementType::U32 => "u32",
            ElementType::F64 => "f64",
        }
    }

    /// Whether the type is a float.
    pub fn is_float(self) -> bool {
        matches!(self, ElementType::F32 | ElementType::F64)
    }

    /// Bytes of one element.
    pub fn size(self) -> usize {
        match self {
            ElementType::F64 => 8,
            _ => 4,
        }
    }

    /// The `KIND` override constant the shaders take: 0 float, 1 signed, 2 unsigned.
    pub fn kind_code(self) -> u32 {
        match self {
            ElementType::F32 | ElementType::F64 => 0,
            ElementType::I32 => 1,
            ElementType::U32 => 2,
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wgsl())
    }
}

/// Which copies of a buffer are current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Residency {
    /// Only the host copy.
    Host,
    /// Only the device copy.
    Device,
    /// Both copies, identical.
    Both,
}

/// Host memory a [`Buffer`] reads without owning it, kept alive as long as
/// the buffer (or a [`HostData`] view) holds this owner.
///
/// ```
/// use std::sync::Arc;
/// use tandem::{Buffer, HostMemory};
///
/// /// A static table, borrowed for the process' lifetime.
/// struct Table(&'static [f32]);
/// impl HostMemory<f32> for Table {
///     fn as_slice(&self) -> &[f32] {
///         self.0
///     }
/// }
/// static DATA: [f32; 3] = [1.0, 2.0, 3.0];
/// let b = Buffer::from_memory(Table(&DATA));
/// assert_eq!(b.to_vec().unwrap(), DATA);
/// let shared: Arc<[f32]> = Arc::from(vec![4.0f32, 5.0]);
/// let c = Buffer::from_shared(shared.clone()); // no copy
/// assert_eq!(c.host().unwrap().as_ptr(), shared.as_ptr());
/// ```
pub trait HostMemory<T>: Send + Sync + 'static {
    /// The elements; the same slice on every call.
    fn as_slice(&self) -> &[T];
}

impl<T: Element> HostMemory<T> for Arc<[T]> {
    fn as_slice(&self) -> &[T] {
        self
    }
}

/// A host copy: owned, or borrowed from an owner.
enum Host<T: 'static> {
    Owned(Vec<T>),
    Borrowed(Box<dyn HostMemory<T>>),
}

impl<T: 'static> Deref for Host<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Host::Owned(v) => v,
            Host::Borrowed(m) => m.as_slice(),
        }
    }
}

/// A read-only view of a buffer's host copy; cheap to clone, derefs to `[T]`.
#[derive(Clone)]
pub struct HostData<T: 'static>(Arc<Host<T>>);

impl<T: 'static> Deref for HostData<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: fmt::Debug + 'static> fmt::Debug for HostData<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0[..].fmt(f)
    }
}

struct State<T: 'static> {
    host: Option<Arc<Host<T>>>,
    device: Option<Arc<DeviceCopy>>,
}

struct Inner<T: Element> {
    len: usize,
    state: Mutex<State<T>>,
}

/// A cheap-to-clone handle to one array of `T` with a host copy, a device
/// copy, or both (see the [module docs](self)). Clones share the data.
pub struct Buffer<T: Element> {
    inner: Arc<Inner<T>>,
}

impl<T: Element> Drop for Inner<T> {
    fn drop(&mut self) {
        // The last handle is gone: recycle the host copy unless a `HostData`
        // view still holds it.
        let state = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(host) = state.host.take()
            && let Ok(Host::Owned(v)) = Arc::try_unwrap(host)
        {
            crate::cpu::pool::give_back(v);
        }
    }
}

impl<T: Element> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        Buffer {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Element> From<Vec<T>> for Buffer<T> {
    fn from(data: Vec<T>) -> Self {
        Buffer::from_host(Arc::new(Host::Owned(data)))
    }
}

impl<T: Element> From<&[T]> for Buffer<T> {
    fn from(data: &[T]) -> Self {
        Buffer::from(data.to_vec())
    }
}

impl<T: Element> fmt::Debug for Buffer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("type", &T::TYPE)
            .field("len", &self.len())
            .field("residency", &self.residency())
            .finish()
    }
}

impl<T: Element> Buffer<T> {
    /// A buffer over shared memory, without a copy: it keeps `data` alive
    /// and never writes it ([`Buffer::write`] replaces it with an owned copy).
    pub fn from_shared(data: Arc<[T]>) -> Self {
        Buffer::from_memory(data)
    }

    /// A buffer over memory `owner` keeps alive, without a copy (see
    /// [`HostMemory`]); never written, as [`Buffer::from_shared`].
    pub fn from_memory(owner: impl HostMemory<T>) -> Self {
        Buffer::from_host(Arc::new(Host::Borrowed(Box::new(owner))))
    }

    fn from_host(data: Arc<Host<T>>) -> Self {
        Buffer {
            inner: Arc::new(Inner {
                len: data.len(),
                state: Mutex::new(State {
                    host: Some(data),
                    device: None,
                }),
            }),
        }
    }

    /// A buffer whose only copy is on the device (a GPU kernel's output).
    pub(crate) fn from_device(copy: Arc<DeviceCopy>, len: usize) -> Self {
        Buffer {
            inner: Arc::new(Inner {
                len,
                state: Mutex::new(State {
                    host: None,
                    device: Some(copy),
                }),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock cannot leave the state half-written
        // (each field is replaced whole), so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.inner.len
    }

    /// Whether the buffer has no elements.
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// Size in bytes.
    pub fn byte_len(&self) -> u64 {
        (self.inner.len * size_of::<T>()) as u64
    }

    /// Which copies are current.
    pub fn residency(&self) -> Residency {
        let state = self.state();
        match (state.host.is_some(), state.device.is_some()) {
            (true, true) => Residency::Both,
            (false, true) => Residency::Device,
            _ => Residency::Host,
        }
    }

    /// The host copy, downloaded from the device first if it is missing
    /// (once: the downloaded copy is kept).
    pub fn host(&self) -> Result<HostData<T>> {
        let device = {
            let state = self.state();
            if let Some(host) = &state.host {
                return Ok(HostData(Arc::clone(host)));
            }
            state.device.clone()
        };
        let device = device.expect("a buffer always has at least one current copy");
        let data = Arc::new(Host::Owned(device.download::<T>(self.len())?));
        let mut state = self.state();
        // Another thread may have downloaded meanwhile, or written new data:
        // only install ours if the device copy we read is still the current one.
        if state.host.is_none()
            && state
                .device
                .as_ref()
                .is_some_and(|d| Arc::ptr_eq(d, &device))
        {
            state.host = Some(Arc::clone(&data));
        }
        Ok(HostData(data))
    }

    /// The contents as a `Vec`, without a copy when this handle is the only
    /// one and holds an owned host copy (a kernel's CPU output, say); else
    /// copied (downloading once if needed).
    pub fn into_vec(self) -> Result<Vec<T>> {
        self.host()?;
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                let state = inner.state.get_mut().unwrap_or_else(|p| p.into_inner());
                let host = state.host.take().expect("read on the host above");
                match Arc::try_unwrap(host) {
                    Ok(Host::Owned(v)) => Ok(v),
                    Ok(borrowed) => Ok(borrowed.to_vec()),
                    Err(shared) => Ok(shared.to_vec()),
                }
            }
            Err(inner) => Buffer { inner }.to_vec(),
        }
    }

    /// Copies the contents to a `Vec`, downloading once if needed.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        Ok(self.host()?.to_vec())
    }

    /// Replaces the contents with `data` (same length): a new owned host
    /// copy becomes current and the device copy is dropped. Borrowed memory
    /// ([`Buffer::from_memory`]) is left as it was: this copies on write.
    pub fn write(&self, data: &[T]) -> Result<()> {
        crate::Error::check_same_len("Buffer::write", self.len(), data.len())?;
        let mut state = self.state();
        state.host = Some(Arc::new(Host::Owned(data.to_vec())));
        state.device = None;
        Ok(())
    }

    /// The current device copy, if any.
    pub(crate) fn device_copy(&self) -> Option<Arc<DeviceCopy>> {
        self.state().device.clone()
    }

    /// Records a freshly uploaded device copy, unless the buffer was written
    /// since `expected_host` was read.
    pub(crate) fn attach_device_copy(&self, copy: Arc<DeviceCopy>, expected_host: &HostData<T>) {
        let mut state = self.state();
        if state
            .host
            .as_ref()
            .is_some_and(|h| Arc::ptr_eq(h, &expected_host.0))
        {
            state.device = Some(copy);
        }
    }

    /// Residency as the dispatcher sees it.
    pub(crate) fn input_state(&self) -> InputState {
        let state = self.state();
        InputState {
            bytes: self.byte_len(),
            on_host: state.host.is_some(),
            on_device: state.device.as_ref().map(|d| d.context_id()),
            element: T::TYPE,
        }
    }
}
