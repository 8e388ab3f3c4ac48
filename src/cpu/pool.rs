//! Host allocations reused across calls. A kernel's output `Vec` comes from
//! here when a buffer of a fitting length was dropped before, so repeated
//! calls do not pay the operating system's page faults for fresh memory
//! again (on the development machine those cost more than the kernel: a new
//! 64 MiB output took 50 ms to fault in, the axpy that fills it 14 ms).
//!
//! Pooled vectors keep their initialized length and are only ever
//! truncated, so reuse needs no `unsafe`. Elements are stored as `u32`
//! (every [`Element`] is 4 bytes), cast back on the way out.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::buffer::Element;
use crate::error::{Error, Result};

/// Most bytes the pool keeps; past it, dropped vectors are freed.
pub const HOST_POOL_BYTES: usize = 1 << 30;

/// Vectors smaller than this are not pooled: the allocator serves them well.
const MIN_POOLED_LEN: usize = 1 << 14;

struct Pool {
    by_len: BTreeMap<usize, Vec<Vec<u32>>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    by_len: BTreeMap::new(),
    bytes: 0,
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A vector of `len` elements with unspecified (but initialized) contents:
/// the caller overwrites every element.
pub(crate) fn take<T: Element>(len: usize) -> Vec<T> {
    take_pooled(len).unwrap_or_else(|| vec![T::zeroed(); len])
}

/// A pooled vector of `len` elements (unspecified contents), if the pool
/// holds one that fits: the shortest that is long enough and not much longer.
fn take_pooled<T: Element>(len: usize) -> Option<Vec<T>> {
    if len < MIN_POOLED_LEN {
        return None;
    }
    let mut p = pool();
    let l = *p.by_len.range(len..=len + len / 4).next()?.0;
    let list = p.by_len.get_mut(&l).expect("key just found");
    let v = list.pop().expect("lists are never left empty");
    if list.is_empty() {
        p.by_len.remove(&l);
    }
    p.bytes -= l * 4;
    drop(p);
    let mut v: Vec<T> = bytemuck::allocation::cast_vec(v);
    v.truncate(len);
    Some(v)
}

/// Like [`take`], but a fresh allocation is made fallibly: for lengths set
/// by a kernel's parameters rather than by its inputs, where an allocation
/// failure must come back as [`Error::HostOutOfMemory`] instead of aborting
/// the process. The vector is zeroed.
pub(crate) fn try_take_zeroed<T: Element>(
    kernel: &'static str,
    what: &'static str,
    len: usize,
) -> Result<Vec<T>> {
    let oom = || Error::HostOutOfMemory {
        kernel,
        bytes: (len as u64).saturating_mul(size_of::<T>() as u64),
        what,
    };
    if len
        .checked_mul(size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(oom());
    }
    if let Some(mut v) = take_pooled::<T>(len) {
        v.fill(T::zeroed());
        return Ok(v);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| oom())?;
    v.resize(len, T::zeroed());
    Ok(v)
}

/// Returns a vector no longer needed to the pool.
pub(crate) fn give_back<T: Element>(v: Vec<T>) {
    let len = v.len();
    if len < MIN_POOLED_LEN || len * 4 > HOST_POOL_BYTES {
        return;
    }
    let mut p = pool();
    if p.bytes + len * 4 > HOST_POOL_BYTES {
        return;
    }
    p.bytes += len * 4;
    p.by_len
        .entry(len)
        .or_default()
        .push(bytemuck::allocation::cast_vec(v));
}

/// Bytes the host pool holds.
pub fn pooled_bytes() -> usize {
    pool().bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_vectors_are_reused_truncated_and_bounded() {
        let len = MIN_POOLED_LEN * 3 + 5;
        let v = vec![7u32; len];
        let ptr = v.as_ptr();
        give_back(v);
        // A slightly shorter request reuses the same allocation, truncated.
        let w: Vec<f32> = take(len - 3);
        assert_eq!(w.len(), len - 3);
        assert_eq!(w.as_ptr().cast::<u32>(), ptr);
        // Small vectors are not pooled; requests far shorter do not take big ones.
        give_back(vec![1i32; 10]);
        give_back(w);
        let small: Vec<u32> = take(MIN_POOLED_LEN);
        assert!(
            small.iter().all(|&x| x == 0),
            "fresh, zeroed allocation expected"
        );
        assert!(pooled_bytes() <= HOST_POOL_BYTES);
    }
}
