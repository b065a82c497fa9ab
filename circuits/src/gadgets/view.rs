//! Matrix views of slices: transpose, reshape, head slicing and broadcast as index
//! arithmetic, so that the wiring of a transformer block (`Kᵀ`, the heads of a projection,
//! a bias repeated over rows) costs no constraint. A view only decides which element (a
//! linear combination in a circuit, an integer in a native twin) a gadget reads where; it
//! never copies, allocates or constrains anything, and every element it names lies inside
//! its slice (checked once, when it is made).

use thiserror::Error;

/// Errors of a view that would read outside its slice.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ViewError {
    /// A view with an element past the end of its slice.
    #[error(
        "a {rows}×{cols} view with strides {stride:?} from offset {offset} reaches past the {len} values it views"
    )]
    OutOfBounds {
        /// Rows of the view.
        rows: usize,
        /// Columns of the view.
        cols: usize,
        /// Row and column strides.
        stride: [usize; 2],
        /// Index of element `(0, 0)`.
        offset: usize,
        /// Length of the slice.
        len: usize,
    },
    /// A row-major matrix whose slice is not exactly its size.
    #[error("a row-major {rows}×{cols} matrix needs {} values, got {len}", rows.saturating_mul(*cols))]
    WrongLength {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Length of the slice.
        len: usize,
    },
    /// A block of columns that the view does not have.
    #[error("columns {start}..{} of a view with {cols} columns", start.saturating_add(*len))]
    ColumnsOutOfRange {
        /// First column.
        start: usize,
        /// Number of columns.
        len: usize,
        /// Columns of the view.
        cols: usize,
    },
}

/// A read-only matrix view of a slice: element `(i, j)` is
/// `data[offset + i·stride[0] + j·stride[1]]`, every one of them inside the slice.
#[derive(Debug)]
pub struct View<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    stride: [usize; 2],
    offset: usize,
}

impl<T> Clone for View<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for View<'_, T> {}

impl<'a, T> View<'a, T> {
    /// The `rows×cols` matrix stored row by row in `data`, which holds exactly that many
    /// values (a reshape is another call on the same slice).
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self, ViewError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(ViewError::WrongLength { rows, cols, len: data.len() });
        }
        Ok(Self { data, rows, cols, stride: [cols, 1], offset: 0 })
    }

    /// A view of any strides (0 repeats a row or a column: a broadcast), checked to stay
    /// inside `data`.
    pub fn strided(
        data: &'a [T],
        (rows, cols): (usize, usize),
        stride: [usize; 2],
        offset: usize,
    ) -> Result<Self, ViewError> {
        let last = || {
            let down = (rows - 1).checked_mul(stride[0])?;
            let across = (cols - 1).checked_mul(stride[1])?;
            down.checked_add(across)?.checked_add(offset)
        };
        let empty = rows == 0 || cols == 0;
        if !empty && last().is_none_or(|i| i >= data.len()) {
            return Err(ViewError::OutOfBounds { rows, cols, stride, offset, len: data.len() });
        }
        Ok(Self { data, rows, cols, stride, offset })
    }

    /// The transpose (strides swapped).
    pub fn transpose(self) -> Self {
        let [down, across] = self.stride;
        Self { rows: self.cols, cols: self.rows, stride: [across, down], ..self }
    }

    /// Columns `start..start + len` (one head of a multi-head projection; rows are the
    /// columns of the transpose).
    pub fn columns(self, start: usize, len: usize) -> Result<Self, ViewError> {
        if start.checked_add(len).is_none_or(|end| end > self.cols) {
            return Err(ViewError::ColumnsOutOfRange { start, len, cols: self.cols });
        }
        Ok(Self { cols: len, offset: self.offset + start * self.stride[1], ..self })
    }

    /// `(rows, columns)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Element `(i, j)`, or `None` outside the view.
    pub fn get(&self, i: usize, j: usize) -> Option<&'a T> {
        (i < self.rows && j < self.cols).then(|| self.at(i, j))
    }

    /// Element `(i, j)` for `i < rows` and `j < cols`, which lies inside the slice by
    /// construction: for the loops of a gadget that has checked the view's shape.
    pub(crate) fn at(&self, i: usize, j: usize) -> &'a T {
        &self.data[self.offset + i * self.stride[0] + j * self.stride[1]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn elements<T: Copy>(v: &View<'_, T>) -> Vec<Vec<T>> {
        let (rows, cols) = v.shape();
        (0..rows).map(|i| (0..cols).map(|j| *v.get(i, j).unwrap()).collect()).collect()
    }

    #[test]
    fn transpose_reshape_heads_and_broadcast() {
        let data: Vec<u32> = (0..12).collect();
        let m = View::row_major(&data, 3, 4).unwrap();
        assert_eq!(elements(&m), vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9, 10, 11]]);
        assert_eq!(elements(&m.transpose()), vec![vec![0, 4, 8], vec![1, 5, 9], vec![2, 6, 10], vec![3, 7, 11]]);
        // two heads of width 2, the second transposed (a head of K, read as Kᵀ)
        assert_eq!(elements(&m.columns(2, 2).unwrap().transpose()), vec![vec![2, 6, 10], vec![3, 7, 11]]);
        // a reshape of the same slice, and a row of it broadcast over three rows
        assert_eq!(elements(&View::row_major(&data, 6, 2).unwrap())[5], vec![10, 11]);
        let bias = View::strided(&data, (3, 4), [0, 1], 4).unwrap();
        assert_eq!(elements(&bias), vec![vec![4, 5, 6, 7]; 3]);
        assert_eq!(m.get(3, 0), None);
        assert_eq!(m.get(0, 4), None);
    }

    #[test]
    fn views_that_reach_outside_are_refused() {
        let data = [0u8; 12];
        assert_eq!(View::row_major(&data, 3, 5).unwrap_err(), ViewError::WrongLength { rows: 3, cols: 5, len: 12 });
        assert!(View::row_major(&data, usize::MAX, 2).is_err());
        assert!(View::strided(&data, (3, 4), [4, 1], 0).is_ok());
        assert!(View::strided(&data, (3, 4), [4, 1], 1).is_err());
        assert!(View::strided(&data, (2, 2), [usize::MAX, 1], 0).is_err());
        assert!(View::strided(&data, (0, 7), [100, 100], 100).is_ok(), "an empty view reads nothing");
        let m = View::row_major(&data, 3, 4).unwrap();
        assert!(m.columns(3, 1).is_ok());
        assert_eq!(m.columns(3, 2).unwrap_err(), ViewError::ColumnsOutOfRange { start: 3, len: 2, cols: 4 });
        assert!(m.columns(usize::MAX, 2).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(41), ..ProptestConfig::default() })]
        /// Every element a valid strided view names is the one its formula says, and lies
        /// inside the slice.
        #[test]
        fn strided_views_read_their_formula(rows in 1usize..6, cols in 1usize..6, s0 in 0usize..8, s1 in 0usize..8, offset in 0usize..10, len in 0usize..60) {
            let data: Vec<usize> = (0..len).collect();
            match View::strided(&data, (rows, cols), [s0, s1], offset) {
                Ok(v) => {
                    for (i, row) in elements(&v).iter().enumerate() {
                        for (j, &x) in row.iter().enumerate() {
                            prop_assert_eq!(x, offset + i * s0 + j * s1);
                        }
                    }
                    let t = v.transpose();
                    prop_assert_eq!(t.shape(), (cols, rows));
                    prop_assert_eq!(t.get(cols - 1, rows - 1), v.get(rows - 1, cols - 1));
                }
                Err(_) => prop_assert!(offset + (rows - 1) * s0 + (cols - 1) * s1 >= len),
            }
        }
    }
}
