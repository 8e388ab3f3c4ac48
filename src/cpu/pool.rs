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

/// Most bytes the pool keeps. A vector given back when the pool is full
/// takes the place of the oldest ones: a program whose sizes change keeps
/// reusing memory for the sizes it uses now, instead of faulting in fresh
/// pages on every call while the pool holds the sizes of an earlier phase
/// (in `compare`'s full sweep, neg_f64 at 2^22 took 8.58 ms a call that
/// way and 1.39 ms once its outputs were pooled).
pub const HOST_POOL_BYTES: usize = 1 << 30;

/// Vectors smaller than this are not pooled: the allocator serves them well.
const MIN_POOLED_LEN: usize = 1 << 14;

/// Pooled vectors of one length, oldest first, each with the stamp of
/// when it was given back.
type Lists<S> = BTreeMap<usize, Vec<(u64, Vec<S>)>>;

struct Pool {
    /// 4-byte elements, by length.
    by_len: Lists<u32>,
    /// 8-byte elements, by length.
    by_len8: Lists<u64>,
    bytes: usize,
    /// The next vector's stamp: give-backs in order.
    stamp: u64,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    by_len: BTreeMap::new(),
    by_len8: BTreeMap::new(),
    bytes: 0,
    stamp: 0,
});

/// A vector in the pool's storage type of its width.
trait Stored: bytemuck::Pod {
    fn lists(p: &mut Pool) -> &mut Lists<Self>;
}

impl Stored for u32 {
    fn lists(p: &mut Pool) -> &mut Lists<u32> {
        &mut p.by_len
    }
}

impl Stored for u64 {
    fn lists(p: &mut Pool) -> &mut Lists<u64> {
        &mut p.by_len8
    }
}

/// A vector taken out of the pool to be freed, after the lock is released.
enum Evicted {
    Four(Vec<u32>),
    Eight(Vec<u64>),
}

impl Pool {
    /// The stamp and length of the oldest vector in `lists`.
    fn oldest<S>(lists: &Lists<S>) -> Option<(u64, usize)> {
        lists
            .iter()
            .filter_map(|(&len, list)| list.first().map(|(stamp, _)| (*stamp, len)))
            .min()
    }

    /// Takes the oldest pooled vector out; `None` when the pool is empty.
    fn evict_oldest(&mut self) -> Option<Evicted> {
        fn remove<S: Stored>(lists: &mut Lists<S>, len: usize) -> Vec<S> {
            let list = lists.get_mut(&len).expect("found by `oldest`");
            let (_, v) = list.remove(0);
            if list.is_empty() {
                lists.remove(&len);
            }
            v
        }
        let four = Pool::oldest(&self.by_len);
        let eight = Pool::oldest(&self.by_len8);
        let evicted = match (four, eight) {
            (Some(f), Some(e)) if e < f => Evicted::Eight(remove(&mut self.by_len8, e.1)),
            (Some(f), _) => Evicted::Four(remove(&mut self.by_len, f.1)),
            (None, Some(e)) => Evicted::Eight(remove(&mut self.by_len8, e.1)),
            (None, None) => return None,
        };
        self.bytes -= match &evicted {
            Evicted::Four(v) => v.len() * 4,
            Evicted::Eight(v) => v.len() * 8,
        };
        Some(evicted)
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
    let (_, v) = list.pop().expect("lists are never left empty");
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
    let mut evicted = Vec::new();
    let mut p = pool();
    while p.bytes + bytes > HOST_POOL_BYTES {
        match p.evict_oldest() {
            Some(e) => evicted.push(e),
            None => break,
        }
    }
    p.bytes += bytes;
    let stamp = p.stamp;
    p.stamp += 1;
    S::lists(&mut p)
        .entry(len)
        .or_default()
        .push((stamp, bytemuck::allocation::cast_vec(v)));
    drop(p);
    // Freed outside the lock: unmapping a large vector takes a while.
    drop(evicted);
}

/// Bytes the host pool holds.
pub fn pooled_bytes() -> usize {
    pool().bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool is global: its tests take turns.
    static TURN: Mutex<()> = Mutex::new(());

    fn turn() -> std::sync::MutexGuard<'static, ()> {
        TURN.lock().unwrap_or_else(|p| p.into_inner())
    }

    #[test]
    fn dropped_vectors_are_reused_truncated_and_bounded() {
        let _turn = turn();
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

    #[test]
    fn a_full_pool_frees_its_oldest_vectors_for_a_new_size() {
        let _turn = turn();
        // Nine vectors of an eighth of the pool each (zeroed by the
        // allocator, so their pages are never touched): the ninth takes
        // the place of the first.
        let eighth = HOST_POOL_BYTES / 8 / size_of::<u32>();
        let first = vec![0u32; eighth];
        let first_ptr = first.as_ptr();
        give_back(first);
        for _ in 0..8 {
            give_back(vec![0u32; eighth]);
            assert!(pooled_bytes() <= HOST_POOL_BYTES);
        }
        // Another size given back to the full pool is kept, in place of
        // the oldest vector left, and reused.
        let len = MIN_POOLED_LEN * 5 + 1;
        let v = vec![3.0f64; len];
        let ptr = v.as_ptr();
        give_back(v);
        assert!(pooled_bytes() <= HOST_POOL_BYTES);
        let w: Vec<f64> = take(len);
        assert_eq!(w.as_ptr(), ptr, "the new size was not kept");
        // The survivors are the newest: the first vector was freed.
        let mut left = Vec::new();
        while let Some(v) = take_pooled::<u32>(eighth) {
            assert_ne!(v.as_ptr(), first_ptr, "the oldest vector was kept");
            left.push(v);
        }
        // 8 of the 9 fit, and one of those made room for the f64s (fewer
        // if another test's buffers came back meanwhile).
        assert!(left.len() <= 7, "{} kept", left.len());
    }
}
