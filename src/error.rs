//! The one error type: every fallible call in tandem returns [`Result`].

use std::fmt;

use crate::kernel::Backend;

/// Result alias used throughout tandem.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a tandem call, with the kernel and sizes
/// that were involved. Nothing in tandem panics on user input.
///
/// `Debug` prints the variant's name and then the same message as
/// `Display` (as `anyhow` does), so `fn main() -> tandem::Result<()>` shows
/// the whole message, install advice included.
#[derive(Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two inputs that must have the same length do not.
    #[error("{kernel}: input lengths differ ({left} vs {right} elements)")]
    LengthMismatch {
        /// Kernel that rejected the inputs.
        kernel: &'static str,
        /// Length of the first input.
        left: usize,
        /// Length of the second input.
        right: usize,
    },
    /// A parameter or shape the kernel cannot accept.
    #[error("{kernel}: invalid argument: {message}")]
    InvalidArgument {
        /// Kernel that rejected the argument.
        kernel: &'static str,
        /// What was wrong, with the values involved.
        message: String,
    },
    /// The kernel does not implement this element type or feature on this backend.
    /// Under [`Backend::Auto`] the engine tries the other backend.
    #[error("{kernel}: not supported on the {backend} backend: {reason}")]
    Unsupported {
        /// Kernel that declined.
        kernel: &'static str,
        /// Backend that declined.
        backend: Backend,
        /// Why, e.g. `sqrt of i32`.
        reason: String,
    },
    /// The GPU backend was requested but there is none.
    #[error(
        "{kernel}: no GPU backend: {reason}. Install a Vulkan driver for your GPU, or \
         `apt-get install mesa-vulkan-drivers` for a software one (lavapipe); \
         run on Backend::Cpu or Backend::Auto to use the CPU instead"
    )]
    NoGpu {
        /// Kernel that needed the GPU (or `engine` when no kernel was involved).
        kernel: &'static str,
        /// Why no adapter or device is available.
        reason: String,
    },
    /// The data does not fit a device limit (one buffer, or indices past `u32`).
    #[error("{kernel}: {bytes} bytes exceed the device limit of {limit} bytes ({what})")]
    TooLarge {
        /// Kernel that hit the limit.
        kernel: &'static str,
        /// Bytes asked for.
        bytes: u64,
        /// The limit that applies.
        limit: u64,
        /// Which limit it is.
        what: &'static str,
    },
    /// The device ran out of memory.
    #[error("{kernel}: GPU out of memory allocating {bytes} bytes")]
    OutOfMemory {
        /// Kernel whose allocation failed.
        kernel: &'static str,
        /// Bytes that were being allocated.
        bytes: u64,
    },
    /// A host allocation sized by a kernel's parameters (a histogram's bins,
    /// a gemm output from `m·n` with empty inputs) could not be made. The
    /// allocation is attempted fallibly, so the process does not abort.
    #[error("{kernel}: host out of memory allocating {bytes} bytes ({what})")]
    HostOutOfMemory {
        /// Kernel whose allocation failed.
        kernel: &'static str,
        /// Bytes that were being allocated.
        bytes: u64,
        /// What the allocation was for.
        what: &'static str,
    },
    /// wgpu reported a validation or internal error for this call.
    #[error("{kernel}: GPU error: {message}")]
    Gpu {
        /// Kernel whose GPU work failed.
        kernel: &'static str,
        /// wgpu's message.
        message: String,
    },
    /// The GPU device was lost (driver reset, device destroyed).
    #[error("{kernel}: GPU device lost: {reason}")]
    DeviceLost {
        /// Kernel that found the device gone.
        kernel: &'static str,
        /// The driver's or wgpu's reason.
        reason: String,
    },
    /// Waiting on the GPU took longer than the engine's timeout.
    #[error("{kernel}: GPU did not finish within {seconds:.1} s")]
    Timeout {
        /// Kernel that was waiting.
        kernel: &'static str,
        /// The timeout that expired.
        seconds: f64,
    },
    /// The CPU thread pool could not be built.
    #[error("cpu backend: cannot build thread pool: {0}")]
    ThreadPool(String),
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {self}", self.variant())
    }
}

impl Error {
    /// The variant's name, as written in the source (`"NoGpu"`, say).
    pub fn variant(&self) -> &'static str {
        match self {
            Error::LengthMismatch { .. } => "LengthMismatch",
            Error::InvalidArgument { .. } => "InvalidArgument",
            Error::Unsupported { .. } => "Unsupported",
            Error::NoGpu { .. } => "NoGpu",
            Error::TooLarge { .. } => "TooLarge",
            Error::OutOfMemory { .. } => "OutOfMemory",
            Error::HostOutOfMemory { .. } => "HostOutOfMemory",
            Error::Gpu { .. } => "Gpu",
            Error::DeviceLost { .. } => "DeviceLost",
            Error::Timeout { .. } => "Timeout",
            Error::ThreadPool(_) => "ThreadPool",
        }
    }

    /// Whether [`Backend::Auto`] should retry this call on the other backend.
    pub(crate) fn is_fallback(&self) -> bool {
        matches!(
            self,
            Error::Unsupported { .. }
                | Error::TooLarge { .. }
                | Error::OutOfMemory { .. }
                | Error::NoGpu { .. }
                | Error::DeviceLost { .. }
        )
    }

    /// Checks that two inputs have the same length.
    pub fn check_same_len(kernel: &'static str, left: usize, right: usize) -> Result<()> {
        if left == right {
            Ok(())
        } else {
            Err(Error::LengthMismatch {
                kernel,
                left,
                right,
            })
        }
    }
}
