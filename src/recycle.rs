//! Buffers that go back to a per-thread free list when dropped, for the large per-call
//! workspaces of the estimators.
//!
//! An estimate allocates a few vectors of the parameter count P (a weight draw, its
//! normal draws, the units gathered for the cost matrix). Freed at the end of the call,
//! such vectors go back to the operating system (they are above the allocator's
//! threshold for keeping memory), and the next call gets them back as fresh pages, one
//! page fault per 4 KiB. For a 784-30-10 posterior that was half the time of an
//! `InfoNce` estimate with two draws on the 2-core VM of the benchmarks (44 % of the
//! samples in the kernel's page-fault path). A [`Recycled`] buffer keeps its storage on
//! the dropping thread for the next call on that thread instead: at most
//! [`MAX_BUFFERS`] buffers and [`MAX_BYTES`] bytes per thread and element type.
//!
//! Recycling never changes a value: a buffer is handed out filled as asked.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

/// Buffers kept per thread and element type.
pub const MAX_BUFFERS: usize = 16;
/// Bytes kept per thread and element type.
pub const MAX_BYTES: usize = 256 << 20;

/// Element types with a per-thread free list.
pub trait Reusable: Copy + 'static {
    #[doc(hidden)]
    fn free_list() -> &'static std::thread::LocalKey<RefCell<Vec<Vec<Self>>>>;
}

macro_rules! reusable {
    ($($t:ty => $list:ident),*) => {$(
        thread_local! {
            static $list: RefCell<Vec<Vec<$t>>> = const { RefCell::new(Vec::new()) };
        }
        impl Reusable for $t {
            fn free_list() -> &'static std::thread::LocalKey<RefCell<Vec<Vec<Self>>>> {
                &$list
            }
        }
    )*};
}

reusable!(f64 => FREE_F64, usize => FREE_USIZE);

/// A `Vec<T>` whose storage is reused by the next [`Recycled::filled`] on the thread
/// that drops it.
pub struct Recycled<T: Reusable>(Vec<T>);

impl<T: Reusable> Recycled<T> {
    /// `len` copies of `value`, in a buffer from this thread's free list when one is
    /// large enough (the smallest such), else newly allocated.
    pub fn filled(len: usize, value: T) -> Self {
        let mut v = Self::take(len);
        v.resize(len, value);
        Recycled(v)
    }

    /// A copy of `values` (see [`Recycled::filled`]).
    pub fn from_slice(values: &[T]) -> Self {
        let mut v = Self::take(values.len());
        v.extend_from_slice(values);
        Recycled(v)
    }

    /// The vector that `build` appends to an empty buffer with capacity for
    /// `capacity` elements (see [`Recycled::filled`]).
    pub fn built(capacity: usize, build: impl FnOnce(&mut Vec<T>)) -> Self {
        let mut v = Self::take(capacity);
        build(&mut v);
        Recycled(v)
    }

    /// An empty vector with capacity for `len`: the smallest large enough on this
    /// thread's free list, else a new one.
    fn take(len: usize) -> Vec<T> {
        let reused = T::free_list()
            .try_with(|list| {
                let mut list = list.try_borrow_mut().ok()?;
                let best = list
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| v.capacity() >= len)
                    .min_by_key(|(_, v)| v.capacity())
                    .map(|(i, _)| i)?;
                Some(list.swap_remove(best))
            })
            .ok()
            .flatten();
        let mut v = reused.unwrap_or_else(|| Vec::with_capacity(len));
        v.clear();
        v
    }
}

impl<T: Reusable> Drop for Recycled<T> {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.0);
        let bytes = v.capacity() * std::mem::size_of::<T>();
        if bytes == 0 {
            return;
        }
        // During thread teardown the list may be gone: the buffer is then freed.
        let _ = T::free_list().try_with(|list| {
            let Ok(mut list) = list.try_borrow_mut() else {
                return;
            };
            let kept: usize = list
                .iter()
                .map(|b| b.capacity() * std::mem::size_of::<T>())
                .sum();
            if list.len() < MAX_BUFFERS && kept + bytes <= MAX_BYTES {
                list.push(v);
            }
        });
    }
}

impl<T: Reusable> Deref for Recycled<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Reusable> DerefMut for Recycled<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<'a, T: Reusable> IntoIterator for &'a Recycled<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'a, T: Reusable> IntoIterator for &'a mut Recycled<T> {
    type Item = &'a mut T;
    type IntoIter = std::slice::IterMut<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter_mut()
    }
}

impl<T: Reusable> Clone for Recycled<T> {
    fn clone(&self) -> Self {
        Recycled::from_slice(self)
    }
}

impl<T: Reusable + std::fmt::Debug> std::fmt::Debug for Recycled<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_buffer_is_reused_and_refilled() {
        let a = Recycled::filled(1000, 3.0_f64);
        let ptr = a.as_ptr();
        drop(a);
        // The same storage, every entry the new value.
        let b = Recycled::filled(600, -1.0_f64);
        assert_eq!(b.as_ptr(), ptr);
        assert_eq!(b.len(), 600);
        assert!(b.iter().all(|&x| x == -1.0));
        let c = b.clone();
        assert_eq!(&*c, &*b);
        assert_ne!(c.as_ptr(), b.as_ptr());
        let e = Recycled::<usize>::from_slice(&[]);
        assert!(e.is_empty());
        let f = Recycled::<usize>::built(2, |v| v.extend([4, 5, 6]));
        assert_eq!(&*f, &[4, 5, 6]);
    }

    #[test]
    fn the_free_list_is_bounded() {
        let many: Vec<_> = (0..2 * MAX_BUFFERS)
            .map(|_| Recycled::filled(10, 0usize))
            .collect();
        drop(many);
        let kept = FREE_USIZE.with(|l| l.borrow().len());
        assert!(kept <= MAX_BUFFERS, "{kept} buffers kept");
    }
}
