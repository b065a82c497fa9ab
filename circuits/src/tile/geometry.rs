//! Where each tile's witness rows sit in the layer's input, for every tile.

use crate::gadgets::conv::ConvShape;
use crate::gadgets::linear::LinearShape;
use crate::gadgets::pool::PoolKind;
use crate::quant::QuantError;
use crate::spec::LayerSpec;
use serde::{Deserialize, Serialize};

/// A tiled layer: a convolution proven `rows` output rows (all channels, full width) per
/// step, by one circuit shared by all its tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TileSpec {
    /// The layer (a convolution without shortcut terms, pooled or not).
    pub layer: LayerSpec,
    /// Output rows per tile (divides the output height, at least two tiles).
    pub rows: usize,
}

/// The input rows of every tile, in input-row units (vertical geometry only: a tile always
/// spans the full width and every channel).
///
/// Tile `t` holds `rows()` witness rows. Its first `advance + halo` rows are input rows
/// `t·advance - top - gap + i` (virtual: negative or past the height means padding), of
/// which the last `band` feed the convolution (output rows `t·R .. t·R + R`). The first
/// `halo` of them were absorbed by the previous tile, which passes them on through a
/// commitment; the other `advance` are absorbed by this tile. The last `tail` witness rows
/// are the input rows past the last tile's window (read by no output), absorbed by the
/// last tile only. So, over the tiles in order, every input row is absorbed exactly once
/// and in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TileGeometry {
    /// Number of tiles.
    pub tiles: usize,
    /// Input rows each tile moves down: output rows per tile × stride.
    pub advance: usize,
    /// Input rows the convolution of one tile reads.
    pub band: usize,
    /// Input rows between two bands (stride > kernel), absorbed but never read.
    pub gap: usize,
    /// Input rows a band shares with the previous tile's.
    pub halo: usize,
    /// Input rows past the last band.
    pub tail: usize,
    /// Padding rows above the input.
    pub top: usize,
    /// Input height.
    pub height: usize,
    /// Per witness row before the tail: padding (or unused) in the first tile.
    pub pad_first: Vec<bool>,
    /// Per witness row before the tail: padding (or unused) in the last tile.
    pub pad_last: Vec<bool>,
    /// Convolution output rows a pooled tile computes (its pooling windows' band).
    pub mid_band: usize,
    /// Per convolution output row of the band: outside the image (pooling padding) in the
    /// first tile; such rows are set to 0, which no maximum can exceed.
    pub mid_pad_first: Vec<bool>,
    /// The same in the last tile.
    pub mid_pad_last: Vec<bool>,
}

impl TileSpec {
    /// The convolution tiled.
    pub fn conv(&self) -> Result<ConvShape, QuantError> {
        match self.layer.shape {
            LinearShape::Conv(c) => Ok(c),
            LinearShape::Dense(_) => Err(QuantError::BadSpec("only a convolution can be tiled".into())),
        }
    }

    /// Checks the layer and the tiling, and places every tile's rows.
    pub fn geometry(&self) -> Result<TileGeometry, QuantError> {
        let bad = |m: String| Err(QuantError::BadSpec(m));
        self.layer.check()?;
        let c = self.conv()?;
        if self.layer.skip != 0 || self.layer.projection.is_some() {
            return bad("tiling a layer with shortcut terms is not supported".into());
        }
        let (height, k, s) = (c.height, c.kernel[0], c.stride[0]);
        let mid_height = c.out_size().0;
        // the pooling window over the convolution's output rows (none: a 1-row window)
        let (pk, ps, ptop, out) = match self.layer.pool {
            Some(p) if p.kind == PoolKind::Average && (p.pads[0], p.pads[2]) != (0, 0) => {
                return bad("tiling an average pooling padded above or below is not supported".into());
            }
            Some(p) => (p.kernel[0], p.stride[0], p.pads[0], self.layer.output_dims()[1]),
            None => (1, 1, 0, mid_height),
        };
        let r = self.rows;
        if r == 0 || out % r != 0 || out / r < 2 {
            return bad(format!("{r} rows per tile do not cut {out} output rows into two or more tiles"));
        }
        let tiles = out / r;
        // tile t pools convolution rows t·mid_advance - ptop + [0, mid_band), which read
        // input rows t·advance - top + [0, band)
        let (mid_advance, mid_band) = (r * ps, (r - 1) * ps + pk);
        let (advance, band, top) = (mid_advance * s, (mid_band - 1) * s + k, ptop * s + c.pads[0]);
        let (gap, halo) = (advance.saturating_sub(band), band.saturating_sub(advance));
        let end = (tiles - 1) * advance + band; // past the last band, counting the top padding
        let tail = (height + top).saturating_sub(end);
        let window = advance + halo;
        let virtual_row = |t: usize, i: usize| (t * advance + i) as i64 - (top + gap) as i64;
        let real = |t: usize, i: usize| {
            if i < window {
                (0..height as i64).contains(&virtual_row(t, i))
            } else {
                t == tiles - 1
            }
        };
        let n = window + tail;
        let pad_first: Vec<bool> = (0..window).map(|i| !real(0, i)).collect();
        let pad_last: Vec<bool> = (0..window).map(|i| !real(tiles - 1, i)).collect();
        let mid_real =
            |t: usize, i: usize| (0..mid_height as i64).contains(&((t * mid_advance + i) as i64 - ptop as i64));
        let (mid_pad_first, mid_pad_last) = match self.layer.pool {
            Some(_) => (
                (0..mid_band).map(|i| !mid_real(0, i)).collect(),
                (0..mid_band).map(|i| !mid_real(tiles - 1, i)).collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        let mut geometry =
            TileGeometry::place(tiles, [advance, band, gap, halo, tail, top, height], pad_first, pad_last);
        (geometry.mid_band, geometry.mid_pad_first, geometry.mid_pad_last) = (mid_band, mid_pad_first, mid_pad_last);
        for t in 0..tiles {
            for i in (0..mid_band).filter(|_| self.layer.pool.is_some()) {
                if mid_real(t, i) != geometry.mid_is_real(t, i) {
                    return bad(format!("tiles of {r} rows place pooling padding in a middle tile; use more rows"));
                }
            }
        }
        // The circuit knows only "first" and "last": every tile in between must read real
        // rows only, the first none of the last's padding, halo rows must be real
        // wherever they are carried, and the input's row 0 must sit in the first tile.
        for t in 0..tiles {
            for i in 0..n {
                if real(t, i) != geometry.is_real(t, i) {
                    return bad(format!("tiles of {r} rows place padding in a middle tile; use more rows per tile"));
                }
            }
        }
        if geometry.first_row() >= window {
            return bad(format!("tiles of {r} rows leave the first tile without input; use more rows per tile"));
        }
        Ok(geometry)
    }
}

impl TileGeometry {
    fn place(tiles: usize, dims: [usize; 7], pad_first: Vec<bool>, pad_last: Vec<bool>) -> Self {
        let [advance, band, gap, halo, tail, top, height] = dims;
        let (mid_band, mid_pad_first, mid_pad_last) = (0, Vec::new(), Vec::new());
        Self {
            tiles,
            advance,
            band,
            gap,
            halo,
            tail,
            top,
            height,
            pad_first,
            pad_last,
            mid_band,
            mid_pad_first,
            mid_pad_last,
        }
    }

    /// Whether convolution output row `i` of a pooled tile `t`'s band is in the image.
    pub fn mid_is_real(&self, t: usize, i: usize) -> bool {
        !((t == 0 && self.mid_pad_first[i]) || (t + 1 == self.tiles && self.mid_pad_last[i]))
    }

    /// Witness rows per tile.
    pub fn rows(&self) -> usize {
        self.advance + self.halo + self.tail
    }

    /// Witness rows before the tail.
    pub fn window(&self) -> usize {
        self.advance + self.halo
    }

    /// Whether witness row `i` of tile `t` is an input row (not padding, not unused).
    pub fn is_real(&self, t: usize, i: usize) -> bool {
        if i >= self.window() {
            return t + 1 == self.tiles;
        }
        !((t == 0 && self.pad_first[i]) || (t + 1 == self.tiles && self.pad_last[i]))
    }

    /// Whether tile `t` absorbs witness row `i` into the input chain: a real row it is the
    /// first to read (the first tile also absorbs its halo rows: nobody did before).
    pub fn absorbs(&self, t: usize, i: usize) -> bool {
        self.is_real(t, i) && (i >= self.halo || t == 0)
    }

    /// The input row witness row `i` of tile `t` holds, if it is real.
    pub fn input_row(&self, t: usize, i: usize) -> Option<usize> {
        if !self.is_real(t, i) {
            return None;
        }
        Some(if i < self.window() {
            t * self.advance + i - self.top - self.gap
        } else {
            (self.tiles - 1) * self.advance + self.band + (i - self.window()) - self.top
        })
    }

    /// The witness row of the first tile holding input row 0 (where the chain starts).
    pub fn first_row(&self) -> usize {
        self.top + self.gap
    }
}
