//! `ndarray` interop (cargo feature `ndarray`): `ArrayView1`/`ArrayView2`
//! in, owned `Array1`/`Array2` out. A view borrows memory for a lifetime a
//! [`Buffer`] cannot hold, so it is copied (once, in row-major order); for
//! memory without a copy, use [`Buffer::from_shared`] or
//! [`Buffer::from_memory`].

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::buffer::{Buffer, Element};
use crate::error::{Error, Result};

impl<T: Element> From<ArrayView1<'_, T>> for Buffer<T> {
    fn from(a: ArrayView1<'_, T>) -> Buffer<T> {
        match a.as_slice() {
            Some(s) => Buffer::from(s),
            None => Buffer::from(a.iter().copied().collect::<Vec<T>>()),
        }
    }
}

impl<T: Element> From<ArrayView2<'_, T>> for Buffer<T> {
    /// The elements in row-major order (a transposed or strided view is
    /// copied in its logical order).
    fn from(a: ArrayView2<'_, T>) -> Buffer<T> {
        match a.as_slice() {
            Some(s) => Buffer::from(s),
            None => Buffer::from(a.iter().copied().collect::<Vec<T>>()),
        }
    }
}

impl<T: Element> Buffer<T> {
    /// The contents as an owned 1-D array (downloading once if needed).
    pub fn to_array1(&self) -> Result<Array1<T>> {
        Ok(Array1::from(self.to_vec()?))
    }

    /// The contents as an owned `rows × cols` row-major array; an error
    /// when the buffer does not hold `rows·cols` elements.
    pub fn to_array2(&self, rows: usize, cols: usize) -> Result<Array2<T>> {
        let want = rows.checked_mul(cols);
        if want != Some(self.len()) {
            return Err(Error::InvalidArgument {
                kernel: "Buffer::to_array2",
                message: format!("{} elements are not {rows} × {cols}", self.len()),
            });
        }
        Array2::from_shape_vec((rows, cols), self.to_vec()?).map_err(|e| Error::InvalidArgument {
            kernel: "Buffer::to_array2",
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, array};

    use crate::Buffer;

    #[test]
    fn views_in_owned_arrays_out_in_row_major_order() {
        let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let b = Buffer::from(a.view());
        assert_eq!(b.to_vec().unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(b.to_array2(2, 3).unwrap(), a);
        let t = Buffer::from(a.t());
        assert_eq!(t.to_array2(3, 2).unwrap(), a.t().to_owned());
        let col = Buffer::from(a.column(1));
        assert_eq!(col.to_array1().unwrap(), array![2.0f32, 5.0]);
        assert!(b.to_array2(4, 2).is_err());
        assert!(b.to_array2(usize::MAX, 2).is_err());
        let _: Array2<f32> = b.to_array2(6, 1).unwrap();
    }
}
