//! Host allocations reused across calls. A kernel's output `Vec` comes from
//! here when a buffer of a fitting length was dropped before, so repeated
//! calls do not pay the operating system's page faults for fresh memory
//! again (on the development machine those cost more than the kernel: a new
//! 64 MiB output took 50 ms to fault in, the axpy that fills it 14 ms).
//!
//! Pooled vectors keep their initialized length and are only ever
//! truncated, so reuse needs no `unsafe`. Elements are stored as `u32`
//! (the 4-byte [`Element`]s) or `u64` (f64), in one pool per width (an
//! allocation must be freed with the alignment it was made with), and cast
//! back on the way out.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::buffer::Element;
use crate::error::{Error, Result};

/// Most bytes the pool keeps; past it, dropped vectors are freed.
pub const HOST_POOL_BYTES: usize = 1 << 30;

/// Vectors smaller than this are not pooled: the allocator serves them well.
const MIN_POOLED_LEN: usize = 1 << 14;

struct Pool {
    /// 4-byte elements, by length.
    by_len: BTreeMap<usize, Vec<Vec<u32>>>,
    /// 8-byte elements, by length.
    by_len8: BTreeMap<usize, Vec<Vec<u64>>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    by_len: BTreeMap::new(),
    by_len8: BTreeMap::new(),
    bytes: 0,
});

/// A vector in the pool's storage type of its width.
trait Stored: bytemuck::Pod {
    fn lists(p: &mut Pool) -> &mut BTreeMap<usize, Vec<Vec<Self>>>;
}

impl Stored for u32 {
    fn lists(p: &mut Pool) -> &mut BTreeMap<usize, Vec<Vec<u32>>> {
        &mut p.by_len
    }
}

impl Stored for u64 {
    fn lists(p: &mut Pool) -> &mut BTreeMap<usize, Vec<Vec<u64>>> {
        &mut p.by_len8
    }
}

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
    if size_of::<T>() == 8 {
        take_stored::<u64, T>(len)
    } else {
        take_stored::<u32, T>(len)
    }
}

fn take_stored<S: Stored, T: Element>(len: usize) -> Option<Vec<T>> {
    if len < MIN_POOLED_LEN {
        return None;
    }
    let mut p = pool();
    let lists = S::lists(&mut p);
    let l = *lists.range(len..=len + len / 4).next()?.0;
    let list = lists.get_mut(&l).expect("key just found");
    let v = list.pop().expect("lists are never left empty");
    if list.is_empty() {
        lists.remove(&l);
    }
    p.bytes -= l * size_of::<S>();
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
    try_take_inner(kernel, what, len, true)
}

/// Like [`try_take_zeroed`], but a pooled vector keeps its (initialized,
/// unspecified) contents: for outputs the kernel overwrites whole, which
/// then skip the zeroing pass.
pub(crate) fn try_take<T: Element>(
    kernel: &'static str,
    what: &'static str,
    len: usize,
) -> Result<Vec<T>> {
    try_take_inner(kernel, what, len, false)
}

fn try_take_inner<T: Element>(
    kernel: &'static str,
    what: &'static str,
    len: usize,
    zeroed: bool,
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
        if zeroed {
            v.fill(T::zeroed());
        }
        return Ok(v);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| oom())?;
    v.resize(len, T::zeroed());
    Ok(v)
}

/// Returns a vector no longer needed to the pool.
pub(crate) fn give_back<T: Element>(v: Vec<T>) {
    if size_of::<T>() == 8 {
        give_back_stored::<u64, T>(v)
    } else {
        give_back_stored::<u32, T>(v)
    }
}

fn give_back_stored<S: Stored, T: Element>(v: Vec<T>) {
    let len = v.len();
    let bytes = len * size_of::<S>();
    if len < MIN_POOLED_LEN || bytes > HOST_POOL_BYTES {
        return;
    }
    let mut p = pool();
    if p.bytes + bytes > HOST_POOL_BYTES {
        return;
    }
    p.bytes += bytes;
    S::lists(&mut p)
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
        // f64 vectors go to their own pool, never to a 4-byte request.
        let d = vec![1.5f64; len];
        let dptr = d.as_ptr();
        give_back(d);
        let e: Vec<f64> = take(len);
        assert_eq!(e.as_ptr(), dptr);
    }
}
