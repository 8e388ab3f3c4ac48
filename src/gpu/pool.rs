//! Device allocations reused across calls: freed buffers go back to a free
//! list keyed by size class, so repeated kernels do not grow device memory.

use std::collections::HashMap;

/// Smallest allocation: also keeps zero-length buffers bindable.
const MIN_CLASS_BYTES: u64 = 256;

/// Rounds `bytes` up to a size class: powers of two and 1.5x powers of two,
/// so at most a third of an allocation is slack.
pub(crate) fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(MIN_CLASS_BYTES);
    let p = bytes.next_power_of_two();
    let three_quarters = p / 2 + p / 4;
    if bytes <= three_quarters {
        three_quarters
    } else {
        p
    }
}

pub(crate) struct Pool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    /// Bytes sitting in the free lists.
    pub(crate) retained: u64,
    /// Most bytes the free lists may hold; past it, freed buffers are dropped.
    pub(crate) cap: u64,
    /// Bytes handed out and not yet returned.
    pub(crate) live: u64,
}

impl Pool {
    pub(crate) fn new(cap: u64) -> Self {
        Pool {
            free: HashMap::new(),
            retained: 0,
            cap,
            live: 0,
        }
    }

    /// A free buffer of exactly this class, if one is pooled.
    pub(crate) fn take(&mut self, class: u64) -> Option<wgpu::Buffer> {
        let buf = self.free.get_mut(&class)?.pop()?;
        self.retained -= class;
        self.live += class;
        Some(buf)
    }

    pub(crate) fn note_new(&mut self, class: u64) {
        self.live += class;
    }

    pub(crate) fn give_back(&mut self, class: u64, buf: wgpu::Buffer) {
        self.live = self.live.saturating_sub(class);
        if self.retained + class <= self.cap {
            self.retained += class;
            self.free.entry(class).or_default().push(buf);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.free.clear();
        self.retained = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_and_bound_slack() {
        assert_eq!(size_class(0), 256);
        assert_eq!(size_class(256), 256);
        assert_eq!(size_class(257), 384);
        assert_eq!(size_class(384), 384);
        assert_eq!(size_class(385), 512);
        for bytes in [1u64, 1000, 4096, 4097, 1 << 20, (1 << 20) + 1, 3 << 30] {
            let c = size_class(bytes);
            assert!(c >= bytes);
            assert!(c <= bytes.max(256) * 3 / 2 + 1, "{bytes} -> {c}");
        }
    }
}
