//! Where each tile's witness rows sit in the layer's input, for every tile.

use crate::gadgets::conv::ConvShape;
use crate::gadgets::linear::LinearShape;
use crate::gadgets::pool::PoolKind;
use crate::quant::QuantError;
use crate::spec::{BlockSpec, LayerSpec, Links};
use serde::{Deserialize, Serialize};

/// A tiled layer or two-layer block: proven `rows` output rows (all channels, full width)
/// per step, by one circuit shared by all its tiles; or a convolution proven one output row
/// of one group of `channels` output channels per step (a grid of tiles, row by row and,
/// within a row, group by group).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TileSpec {
    /// The (first) layer: a convolution without shortcut terms; pooled or not when it is
    /// the only one.
    pub layer: LayerSpec,
    /// A two-layer block's second layer: a convolution of the first one's output, not
    /// pooled, with the block's shortcut (a residual of the block input, or a projection
    /// whose vertical stride is the block's), computed in the same tile.
    pub second: Option<LayerSpec>,
    /// Output rows per tile (divides the output height, at least two tiles; 1 in a grid).
    pub rows: usize,
    /// A grid: output channels per tile (whole model-commitment chunks, at least two
    /// groups); `None`: every channel.
    pub channels: Option<usize>,
    /// How the input is committed: one row per link, or one row of a group of channels.
    pub input: Links,
    /// How the output is committed: one row per link, or one row of a group of channels —
    /// a grid's own groups; a band of rows may write its rows in groups too, for a grid or
    /// a pair reading them next.
    pub output: Links,
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
    /// Rows of the first convolution's output a pooled or two-layer tile computes (the
    /// band its pooling windows or its second convolution read).
    pub mid_band: usize,
    /// Per row of that band: outside the image (padding of the pooling or of the second
    /// convolution) in the first tile; such rows are set to 0 under pooling (below every
    /// real cell) and to the second layer's zero point in a block (its padding value).
    pub mid_pad_first: Vec<bool>,
    /// The same in the last tile.
    pub mid_pad_last: Vec<bool>,
    /// The bands between the first and the last that reach padding too (a band shorter
    /// than the padding's reach: few rows per tile under a tall kernel or pooling window),
    /// in band order; empty for most tilings.
    pub pad_inner: Vec<InnerPad>,
    /// A two-layer block with a shortcut: the witness row where the rows it reads start
    /// (output row `r` of a residual reads witness row `shortcut_row + r`; a projection
    /// reads `shortcut_row + r·stride + ky`), the same in every tile.
    pub shortcut_row: usize,
    /// How many witness rows the shortcut reads from `shortcut_row` (0: no shortcut).
    pub shortcut_len: usize,
    /// A grid whose bands are the input's rows (stride 1, one output row per input row,
    /// nothing between or past the bands) read one link per group: tile `(b, k)` absorbs
    /// only link `k` of input row `b`, its window's witness row `top` (see [`super`], "Own
    /// links"); otherwise a band's first group absorbs the rows it is the first to read.
    pub own_links: bool,
}

/// A band between the first and the last whose rows reach padding: which of its witness
/// rows (before the tail) and of its middle rows are outside the image, as
/// [`TileGeometry::pad_first`] and [`TileGeometry::mid_pad_first`] say for the first band.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InnerPad {
    /// The band.
    pub band: usize,
    /// Per witness row before the tail: padding in this band.
    pub rows: Vec<bool>,
    /// Per middle row (empty without a middle band): outside the image in this band.
    pub mid: Vec<bool>,
}

/// Whether `layer` ends in a global average pooling (one window over its whole output:
/// ONNX's `GlobalAveragePool`), which a tiled layer accumulates over its tiles.
pub fn pools_globally(layer: &LayerSpec) -> bool {
    match (layer.pool, layer.shape) {
        (Some(p), LinearShape::Conv(c)) => {
            let (h, w) = c.out_size();
            p.kind == PoolKind::Average && p.pads == [0; 4] && p.kernel == [h, w]
        }
        _ => false,
    }
}

/// `[C, H, W]` of the rows tiles of a block ending in `last` compute: its output, or, when
/// it ends in a global average pooling, the convolution output the pooling averages.
fn tiled_dims_of(last: &LayerSpec) -> [usize; 3] {
    match (pools_globally(last), last.shape) {
        (true, LinearShape::Conv(c)) => c.output_dims().into(),
        _ => last.output_dims(),
    }
}

/// The height of the rows a tiled `block` is cut into ([`TileSpec::tiled_dims`]).
pub fn tiled_height(block: &BlockSpec) -> usize {
    block.stages.last().map_or(0, |last| tiled_dims_of(last)[1])
}

fn conv_of(layer: &LayerSpec) -> Result<ConvShape, QuantError> {
    match layer.shape {
        LinearShape::Conv(c) => Ok(c),
        LinearShape::Dense(_) => Err(QuantError::BadSpec("only a convolution can be tiled".into())),
    }
}

impl TileSpec {
    /// A block of one or two layers tiled `rows` output rows (every channel) per tile, its
    /// input committed one row per link.
    pub fn new(layer: LayerSpec, second: Option<LayerSpec>, rows: usize) -> Self {
        Self { layer, second, rows, channels: None, input: Links::Rows, output: Links::Rows }
    }

    /// A convolution tiled one output row of `channels` output channels per tile, its
    /// input committed as given.
    pub fn grid(layer: LayerSpec, channels: usize, input: Links) -> Self {
        Self { layer, second: None, rows: 1, channels: Some(channels), input, output: Links::RowGroups(channels) }
    }

    /// Groups of output channels per band of rows (1 unless a grid).
    pub fn groups(&self) -> usize {
        self.channels.map_or(1, |g| self.layer.shape.num_biases() / g.max(1))
    }

    /// Tiles per block: bands of rows times groups of channels.
    pub fn tiles(&self) -> usize {
        tiled_height(&self.block()) / self.rows.max(1) * self.groups()
    }

    /// The (first) layer restricted to the output channels one tile computes.
    pub fn tile_layer(&self) -> LayerSpec {
        let mut layer = self.layer;
        if let (Some(g), LinearShape::Conv(c)) = (self.channels, &mut layer.shape) {
            c.channels_out = g;
        }
        layer
    }

    /// How the output is committed: one row per link, or one row of a group.
    pub fn output_links(&self) -> Links {
        self.output
    }

    /// The (first) convolution tiled.
    pub fn conv(&self) -> Result<ConvShape, QuantError> {
        conv_of(&self.layer)
    }

    /// The tiled block, its tensors committed as the tiles read and write them.
    pub fn block(&self) -> BlockSpec {
        BlockSpec::new(std::iter::once(self.layer).chain(self.second).collect())
            .with_links([self.input, self.output_links()])
    }

    /// Whether the block ends in a global average pooling, accumulated over the tiles
    /// (see [`super`]).
    pub fn pools_globally(&self) -> bool {
        pools_globally(&self.second.unwrap_or(self.layer))
    }

    /// The pooling applied inside each tile's band (none when it is global).
    pub fn band_pool(&self) -> Option<crate::gadgets::pool::Pool> {
        self.layer.pool.filter(|_| !self.pools_globally())
    }

    /// `[C, H, W]` of the rows the tiles compute: the block's output, before a global
    /// pooling.
    pub fn tiled_dims(&self) -> [usize; 3] {
        tiled_dims_of(&self.second.unwrap_or(self.layer))
    }

    /// Layers per tiled block (1 or 2).
    pub fn num_stages(&self) -> usize {
        1 + usize::from(self.second.is_some())
    }

    /// `[C, H, W]` of the block's input.
    pub fn input_dims(&self) -> [usize; 3] {
        self.layer.input_dims()
    }

    /// `[C, H, W]` of the block's output.
    pub fn output_dims(&self) -> [usize; 3] {
        self.second.unwrap_or(self.layer).output_dims()
    }

    /// The second convolution and its checks (shortcut and pooling rules of a tiled block).
    fn second_conv(&self) -> Result<Option<ConvShape>, QuantError> {
        let bad = |m: &str| Err(QuantError::BadSpec(m.into()));
        let Some(second) = self.second else { return Ok(None) };
        self.block().check()?;
        if self.layer.pool.is_some() || (second.pool.is_some() && !pools_globally(&second)) {
            return bad("tiling a two-layer block with pooling is not supported (but for a global average)");
        }
        if second.skip != 0 && second.projection.is_some() {
            return bad("tiling a block with both a residual and a projection is not supported");
        }
        conv_of(&second).map(Some)
    }

    /// Checks the layer and the tiling, and places every tile's rows.
    pub fn geometry(&self) -> Result<TileGeometry, QuantError> {
        let bad = |m: String| Err(QuantError::BadSpec(m));
        self.layer.check()?;
        let c = self.conv()?;
        if self.layer.skip != 0 || self.layer.projection.is_some() {
            return bad("tiling a layer with shortcut terms is not supported (only the second layer of a block \
                        may read the block input)"
                .into());
        }
        let second = self.second_conv()?;
        self.check_links()?;
        let (height, k, s) = (c.height, c.kernel[0], c.stride[0]);
        let mid_height = c.out_size().0;
        // the window over the first convolution's output rows: the pooling's, the second
        // convolution's, or none (a 1-row window)
        let pool = self.band_pool();
        let (pk, ps, ptop, out) = match (pool, second) {
            (Some(p), _) if p.kind == PoolKind::Average && (p.pads[0], p.pads[2]) != (0, 0) => {
                return bad("tiling an average pooling padded above or below is not supported".into());
            }
            (Some(p), _) => (p.kernel[0], p.stride[0], p.pads[0], self.layer.output_dims()[1]),
            (None, Some(c2)) => (c2.kernel[0], c2.stride[0], c2.pads[0], c2.out_size().0),
            (None, None) => (1, 1, 0, mid_height),
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
        let pad_first: Vec<bool> = (0..window).map(|i| !real(0, i)).collect();
        let pad_last: Vec<bool> = (0..window).map(|i| !real(tiles - 1, i)).collect();
        let mid_real =
            |t: usize, i: usize| (0..mid_height as i64).contains(&((t * mid_advance + i) as i64 - ptop as i64));
        let has_mid = pool.is_some() || second.is_some();
        let (mid_pad_first, mid_pad_last) = match has_mid {
            true => (
                (0..mid_band).map(|i| !mid_real(0, i)).collect(),
                (0..mid_band).map(|i| !mid_real(tiles - 1, i)).collect(),
            ),
            false => (Vec::new(), Vec::new()),
        };
        let mut geometry =
            TileGeometry::place(tiles, [advance, band, gap, halo, tail, top, height], pad_first, pad_last);
        (geometry.mid_band, geometry.mid_pad_first, geometry.mid_pad_last) = (mid_band, mid_pad_first, mid_pad_last);
        geometry.pad_inner = (1..tiles.saturating_sub(1))
            .map(|t| InnerPad {
                band: t,
                rows: (0..window).map(|i| !real(t, i)).collect(),
                mid: (0..mid_band).filter(|_| has_mid).map(|i| !mid_real(t, i)).collect(),
            })
            .filter(|p| p.rows.iter().chain(&p.mid).any(|&pad| pad))
            .collect();
        geometry.shortcut_row = top + gap;
        if let Some(offsets) = self.shortcut_rows(advance)? {
            geometry.shortcut_len = offsets.len();
            let shortcut = top + gap + offsets.start..top + gap + offsets.end;
            if shortcut.end > window || (0..tiles).any(|t| shortcut.clone().any(|i| !geometry.is_real(t, i))) {
                return bad(format!("tiles of {r} rows cannot read the block's shortcut rows from their window"));
            }
        }
        // the input's row 0 must sit in the first tile (where the input chain starts)
        if geometry.first_row() >= window {
            return bad(format!("tiles of {r} rows leave the first tile without input; use more rows per tile"));
        }
        let layout = self.block().input_layout();
        geometry.own_links = self.channels.is_some()
            && (advance, gap, tail, tiles) == (1, 0, 0, height)
            && layout.link_rows == 1
            && layout.links() == height * self.groups()
            && (0..tiles).all(|t| geometry.input_row(t, top) == Some(t));
        Ok(geometry)
    }
}

impl TileSpec {
    /// Checks the links (input and output: rows of every channel or of groups; a grid
    /// writes its own groups, a global average one row) and a grid's groups.
    fn check_links(&self) -> Result<(), QuantError> {
        let bad = |m: String| Err(QuantError::BadSpec(m));
        if !matches!(self.input, Links::Rows | Links::RowGroups(_)) {
            return bad("a tiled layer reads its input one row per link".into());
        }
        let own = self
            .channels
            .map_or(matches!(self.output, Links::Rows | Links::RowGroups(_)), |g| self.output == Links::RowGroups(g));
        if !own || (self.pools_globally() && self.output != Links::Rows) {
            return bad(format!("tiles cannot write their output as {:?}", self.output));
        }
        self.block().check()?;
        let Some(groups) = self.group_spec() else { return Ok(()) };
        if self.second.is_some() || self.pools_globally() || self.rows != 1 {
            return bad("a grid of tiles computes one row of one convolution, not averaged globally".into());
        }
        // the groups are those of a channel tiling of the layer (whole chunks, two or more)
        groups.check()
    }

    /// A grid's groups of output channels, as a channel tiling of its layer cuts them
    /// (their weights and model-commitment chunks); `None` unless a grid.
    pub fn group_spec(&self) -> Option<super::GroupSpec> {
        let channels = self.channels?;
        Some(super::GroupSpec { layer: self.layer, second: None, input: self.input, channels })
    }

    /// The block input rows a tile's shortcut reads, as witness-row offsets from
    /// `shortcut_row` (`None`: no shortcut). A residual needs the block's total vertical
    /// stride to be 1; a projection, its own stride to be the block's and no vertical
    /// padding — then every tile reads the same witness rows.
    fn shortcut_rows(&self, advance: usize) -> Result<Option<std::ops::Range<usize>>, QuantError> {
        let bad = |m: String| Err(QuantError::BadSpec(m));
        let Some(second) = self.second else { return Ok(None) };
        let r = self.rows;
        let rows = if second.skip != 0 {
            if advance != r {
                return bad("a tiled block's residual needs a total vertical stride of 1".into());
            }
            r
        } else if let Some(p) = second.projection {
            if p.stride[0] * r != advance || (p.pads[0], p.pads[2]) != (0, 0) {
                return bad(
                    "a tiled block's projection must have the block's vertical stride and no vertical padding".into()
                );
            }
            (r - 1) * p.stride[0] + p.kernel[0]
        } else {
            return Ok(None);
        };
        Ok(Some(0..rows))
    }
}

impl TileGeometry {
    fn place(tiles: usize, dims: [usize; 7], pad_first: Vec<bool>, pad_last: Vec<bool>) -> Self {
        let [advance, band, gap, halo, tail, top, height] = dims;
        let (mid_band, mid_pad_first, mid_pad_last, shortcut_row, shortcut_len) = (0, Vec::new(), Vec::new(), 0, 0);
        let pad_inner = Vec::new();
        let own_links = false;
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
            pad_inner,
            shortcut_row,
            shortcut_len,
            own_links,
        }
    }

    /// Whether convolution output row `i` of a pooled tile `t`'s band is in the image.
    pub fn mid_is_real(&self, t: usize, i: usize) -> bool {
        !((t == 0 && self.mid_pad_first[i])
            || (t + 1 == self.tiles && self.mid_pad_last[i])
            || self.inner(t).is_some_and(|p| p.mid[i]))
    }

    /// Band `t`'s padding when it is an inner band that reaches padding.
    pub fn inner(&self, t: usize) -> Option<&InnerPad> {
        self.pad_inner.iter().find(|p| p.band == t)
    }

    /// Whether witness row `i` (before the tail) is padding in some band; a row that never
    /// is needs no padding constraint.
    pub fn may_pad(&self, i: usize) -> bool {
        self.pad_first[i] || self.pad_last[i] || self.pad_inner.iter().any(|p| p.rows[i])
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
        !((t == 0 && self.pad_first[i])
            || (t + 1 == self.tiles && self.pad_last[i])
            || self.inner(t).is_some_and(|p| p.rows[i]))
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
