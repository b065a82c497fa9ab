//! Tiled layers: a convolution (or a two-layer residual block) too large for one fold,
//! proven a band of output rows per Nova step by one circuit that all its tiles (and all
//! blocks of the same [`TileSpec`]) share, in bounded size whatever the layer's height.
//!
//! # The hand-off
//! Tensors next to a tiled layer are committed one row per link of a hash chain
//! ([`crate::commit::Layout::by_rows`]): the first link absorbs the layout's tag and a
//! blind, each later one the previous link; the last link is the commitment.
//!
//! A tile reads a window of input rows ([`TileGeometry`]) and:
//! - range-checks every value of them to 7 bits; the rows that are padding in this tile
//!   (above the input in the first tile, below it in the last, the tail outside the last
//!   tile, and, when a band is shorter than the padding's reach — one output row under a
//!   7×7 kernel and a padded pooling — above or below it in the inner bands the geometry
//!   lists, [`TileGeometry::pad_inner`]) are constrained to the zero point, selected by
//!   "band = k" flags of the tile index — padding is never the prover's choice;
//! - absorbs into `in_chain`, in order, the real rows it is the first to read; the first
//!   tile starts the chain at input row 0 from the tag and `blind_in`;
//! - takes the rows it shares with the previous tile (the halo) from the previous tile
//!   through the `halo` commitment (checked by every tile but the first, which absorbs
//!   its halo rows itself), and commits the rows it shares with the next tile;
//! - derives the model commitment from the one before the layer (`prev_model`) with its
//!   own range-checked weights; every tile but the first must arrive at the first tile's;
//! - computes its band's output rows (packed products, then the
//!   bit-decomposition requantization of [`crate::gadgets::requant`]; a pooled layer
//!   computes the convolution rows its pooling windows cover, sets those outside the image
//!   — in the bands the geometry lists — to 0, which no maximum exceeds, and pools) and
//!   absorbs them into `out_chain`, output row 0 starting from the output tag and
//!   `blind_out` — one link per row, or, when the output is committed in rows of groups
//!   of channels (for a grid or a pair reading it next), one link per group of each row,
//!   in the layout's order ([`crate::commit::Layout::link`]); the layout's tag starts the
//!   chain, so a chain cut one way never opens as the other;
//! - in the last tile, checks `in_chain` = the layer's input commitment and hands
//!   `out_chain` on as the next layer's input commitment.
//!
//! # Why it is sound
//! The tile index is a state slot that starts at 0 (a segment's first state is a boundary
//! state, fixed by the verifier), advances by one per step and returns to 0 exactly after
//! tile `tiles - 1`, so the tiles of a layer run in order, each once, and the circuit
//! derives "first" and "last" from it. The rows absorbed by tiles `0..tiles`, in order,
//! are every input row exactly once (the geometry checks this when it is built and the
//! tests re-derive it); the last tile's equality check then says, by collision resistance
//! of Poseidon, that the absorbed rows are the committed input. Every row a tile reads but
//! did not absorb is a halo row, equal (collision resistance again) to a row the previous
//! tile held, and by induction to the row some tile absorbed. So every value any tile
//! multiplies is the committed input (or the zero point where the layer pads). The
//! weights of every tile open the same model update as the first tile's, so the model
//! commitment absorbs the layer once, with the weights all tiles used. The output rows are
//! chained in order from output row 0 under a fresh blind, in the format the next layer
//! reads. A skipped or repeated tile therefore breaks the input chain or the halo, a tile
//! of another layer the weights, and a halo row from the wrong place the halo commitment.
//!
//! # Two-layer blocks
//! A tile of a two-layer block (ResNet's basic block: `conv → conv + shortcut`) computes
//! the rows of the first convolution's output that its second convolution reads — the
//! band of middle rows, recomputing the ones its neighbours also compute — sets the rows
//! of that band outside the image to the second layer's zero point (its padding value; the
//! band flags select them, as for input padding), applies the second convolution with the block's shortcut
//! (a residual or a projection) reading the tile's own witness rows from a fixed offset
//! (`shortcut_row`: the same rows in every tile, checked to be real input rows in every
//! tile when the geometry is built), and chains only the second layer's output rows. The
//! middle rows never leave the tile, so nothing new is committed: everything the second
//! layer reads is computed in the tile from opened input rows, or a constant. Both layers'
//! weights are range-checked and absorbed in every tile (two model updates, in the block's
//! order) and must land on the first tile's commitment; the layer counter advances by two
//! with the last tile, as the untiled block step's does.
//!
//! # A global average pooling
//! A block (or layer) whose last layer ends in a global average pooling (ResNet's last
//! block) is cut into tiles of the rows *before* the pooling ([`tiled_height`]). Instead
//! of chaining output rows, the tiles carry, in the `out_chain` slot, a commitment to the
//! per-channel sums of the rows computed so far (a Poseidon hash of a domain tag with the
//! channel count and one field element per channel). Every tile allocates the sums it
//! starts from: the first tile constrains them to 0, every other tile opens the previous
//! tile's commitment with them. It adds its own rows (requantized outputs, 7-bit by
//! construction) and commits the new sums for the next tile; in the last tile, the mean of
//! each channel is the averaging gadget's ([`crate::gadgets::pool::average_of_sum`]: a
//! 7-bit quotient and a remainder in `[0, n)`), and the means, chained as the block's one
//! output row under `blind_out`, become the next layer's input commitment. Soundness: the
//! tiles run in order, each once (the index argument above), so by induction and collision
//! resistance the sums the last tile holds are the integer sums of every output row of
//! the layer (each below `n·127`, far from wrapping), and its means are the pooled
//! output. A tile that claims other sums does not open the previous commitment; the first
//! tile cannot start from anything but zero. Cost per tile: two hashes of `C + 1` field
//! elements and `C` means — a few thousand constraints for 64 channels.
//!
//! # Channel tiles
//! A convolution (or a two-layer block, below) whose weights alone overflow a fold
//! (ResNet's 64-channel layers: 36,864 weights, ~10 constraints each to range-check and
//! absorb, in every row tile) is instead cut into groups of output channels
//! ([`GroupSpec`], [`GroupStep`]): tile `g` computes output channels `g·G .. (g+1)·G`, all
//! rows, with only those channels' weights (a dense layer alone — ResNet-18's 512→1000
//! classifier, 512,000 weights — is cut the same way into groups of output units). Its
//! output is committed one group per link ([`crate::commit::Layout::by_channels`]), so the
//! tiles write it in order; the next layer reads it whole (an untiled layer, or another
//! channel-tiled one). Every tile:
//! - reads the whole input, range-checks it to 7 bits (padding is structural, as in the
//!   untiled step) and checks that it opens the layer's input commitment, which the
//!   `activations` slot holds until the last tile;
//! - range-checks its group's weights and biases and applies their chunks of the layer's
//!   model-commitment update ([`crate::commit::Chunks`]: the group is whole chunks) to the
//!   `model` slot, which thus carries the chain over the layer's chunks from tile to tile;
//! - computes its channels (packed products, bit-decomposition requantization, pooling
//!   per channel, a global average included) and absorbs them as one link into
//!   `out_chain`, the first tile starting it from the output layout's tag and `blind_out`;
//! - in the last tile, hands `out_chain` on as the next layer's input commitment and
//!   advances the layer counter. The row tiles' other slots stay 0.
//!
//! Soundness: the tile index runs `0 .. tiles` in order, each once, as for row tiles. Every
//! tile opens the same input commitment, so (collision resistance) every tile computes on
//! the committed input. The model slot absorbs the layer's chunks in order, chunk `j`
//! from tile `j·k/G`, which computes exactly the channels chunk `j` holds with exactly the
//! weights it absorbed; after the last tile it is the canonical update of the whole layer
//! ([`crate::commit::model_update_native`]), the same value an untiled step or the
//! model's holder computes. The output chain holds the groups' links in order from a
//! fresh blind. A skipped or repeated tile therefore changes the model chain and the
//! output's links; a tile of another layer opens another input commitment; weights of
//! another group land on another model commitment.
//!
//! ## Two-layer blocks in two passes
//! A basic block (`conv → conv + shortcut`, optionally averaged globally) is channel-tiled
//! in two passes by one circuit that holds both layers' groups (one of them active,
//! selected by the tile index; the other computes on zero weights and is discarded):
//! tiles `0 .. T₁` compute the first layer's groups, tiles `T₁ .. T₁ + T₂` the second's.
//! - The first pass chains its groups (the *middle tensor*) starting from a hash of
//!   [`TAG_PAIR`], the middle layout's tag and the block input's commitment, which every
//!   first-pass tile opens (the activations slot holds it); its last tile puts the chain
//!   in the activations slot. This chain binds the block input and the middle tensor
//!   together, so the second pass needs no other state.
//! - Every second-pass tile reads the block input and the middle tensor whole (range
//!   checks), recomputes the input's commitment and the middle chain from it, and checks
//!   it against the activations slot: by collision resistance, both tensors are the ones
//!   the first pass used and produced. It computes its group of the second layer with the
//!   shortcut: a projection reads the whole input; a residual reads the input's channels
//!   of the group, selected by the second pass's tile flags (one product per input value).
//!   The groups chain into the block's output from its tag and `blind_out`; the last tile
//!   hands it on and advances the layer counter by two.
//! - The model slot absorbs the first layer's chunks (its digest as stage 0 of the block)
//!   during the first pass and the second's during the second, so after the block it holds
//!   the untiled block's update. The middle chain is unblinded: it lives only inside a
//!   block, where a segment never ends.
//!
//! # Grid tiles
//! A convolution too large for either cut alone (ResNet-18's 64-channel layers at 56×56:
//! one output row is ~2M multiply-accumulates, and a group of channels would read all
//! 200,704 input values) is proven one output row of one group of `G` output channels per
//! step ([`TileSpec::grid`]): tile `t = band·groups + group`, the bands of the row tiling
//! above (one output row each, pooled or not), within a band the groups in order. The
//! output is committed one row of a group per link
//! ([`crate::commit::Layout::by_row_groups`]), which is the order the tiles write it in; a
//! row- or grid-tiled layer reads such a tensor a row at a time (a row is its groups'
//! links in order), anything else reads it whole.
//! - The index: the group is a one-hot vector of `groups` bits, the band a range-checked
//!   integer, and `band·groups + group = tile`. The tile index runs `0 .. tiles` in order
//!   (as above), so this is the one decomposition; the band's first/last flags drive the
//!   padding and masking exactly as in a row tiling, the tile's first/last the chains.
//! - The input rows: the first group of a band reads and absorbs them as a row tile does
//!   (its halo rows opened from the previous band). Every tile hands on
//!   `H(tag, front, shared, chain)`, where `shared` hashes the rows the next band shares,
//!   `front` the others: the next group of the band must open it with its own window (so,
//!   by collision resistance, every group of a band reads the first group's rows), the
//!   next band's first group with its halo rows as `shared` and `front` as a hint (so its
//!   halo rows are the previous band's shared rows, by induction rows the input chain
//!   absorbed). The last tile checks the input chain against the layer's input
//!   commitment.
//! - The weights: `prev_model` holds the model commitment before the layer (taken from the
//!   model slot by tile 0). Each tile applies its group's chunks of the layer's update to
//!   the chain before its group (`prev_model` for a band's first group, else the previous
//!   tile's chain, opened from the hand-off). During the first band the model slot follows
//!   this chain, so after it the slot holds the canonical update of the whole layer (as in
//!   a channel tiling, positionally: chunk `j` from group `j·k/G`); in every later band
//!   the last group's chain must equal the model slot, so (collision resistance) every
//!   band computes each group with the first band's weights.
//! - The output: each tile absorbs its row of its group as one link, tile 0 from the
//!   output layout's tag and `blind_out`; the last tile hands the chain on as the next
//!   layer's input commitment and advances the layer counter.
//!
//! A skipped, repeated or reordered tile therefore lands on another model chain or output
//! chain, or fails a hand-off; a tile reading rows other than its band's fails the next
//! group's opening (or the input chain); a band computing other weights fails at its end.
//! Cost over a row tile of the same output row: the one-hot index, two more hashes of the
//! window and three of four elements; the window's input rows (a few) are range-checked
//! again in every group.
//!
//! ## Own links
//! A grid whose bands are its input's rows — stride 1, one output row per input row, the
//! input committed in rows of as many links as the grid has groups
//! ([`TileGeometry::own_links`]: a 3×3 "same" convolution reading rows of its own groups,
//! both passes of a shared pair, a pair's second pass) does not absorb whole rows in a
//! band's first group. Tile `(b, k)` absorbs exactly link `k` of input row `b` — its
//! window's witness row `top`, the group selected by the one-hot group flags (one product
//! per value of the row) — onto the chain the previous tile handed on. The chain thus runs
//! through every tile, row-major, which is the layout's link order, and the last tile's
//! check says that the links absorbed are the committed input. Every row a tile reads is
//! one that some tile absorbed: the groups of band `b` share one window (the same-band
//! opening), so its witness row `top` is input row `b`, whose links the band's tiles
//! absorbed; its witness row `top + d` is, through `|d|` next-band openings (band `b`'s
//! rows `1..window` are band `b + 1`'s rows `0..halo`), band `b + d`'s row `top`, absorbed
//! by that band, or padding, which the band flags fix. Cost: one hash of `G·W` values per
//! tile, where a band's first group hashed every link of the rows it was the first to read
//! and the other groups hashed them too (one circuit), to discard them.
//!
//! # Pairs of grids
//! A basic block whose layers are each too large for a row tile (ResNet-18's, and
//! ResNet-20's 32-channel blocks at CIFAR size: a one-row tile holds both layers' weights)
//! is proven as two grids by one circuit ([`PairSpec`], [`PairStep`]): tiles `0 .. T` are
//! a grid of the first convolution (the first pass), tiles `T .. 2T` a grid of the second
//! over the first's output (the second pass), each tile one output row of one group of
//! `G` channels; both passes have the same `T = rows × groups`.
//! - The index: `tile = p·T + l` with `p` a bit and `l`, `T - 1 - l` range-checked, which
//!   (the index being below `2T`) is the one decomposition. The circuit holds a tile of
//!   each pass: the active one runs at index `l`, the other at index 0 on blank values,
//!   where none of its checks reads the state (the first-tile checks are those a grid's
//!   first tile skips); the next state is the active pass's, selected by `p`, and the
//!   index moves to `tile + 1`, to 0 after the second pass's last tile.
//! - The first pass is a grid of the first convolution (above), but its output — the
//!   *middle tensor*, one row of a group per link — is chained from `H(TAG_PAIR, tag, X)`
//!   with `X` the block input's commitment (the activations slot during the first pass),
//!   unblinded. Its last tile checks the input chain against `X` and puts the middle chain
//!   `M` in the activations slot, and the layer counter moves by one.
//! - The second pass is a grid of the second convolution over the middle tensor whose
//!   input chain starts from `H(TAG_PAIR, tag, X')` with `X'` a witness of its first tile;
//!   its last tile checks that chain against `M`, so (collision resistance) `X' = X` and
//!   the middle rows every tile read are the ones the first pass wrote. Every tile also
//!   reads its band's block input rows (one, or the first convolution's stride of them
//!   for a projection block), range-checked, and chains them onto `x_before`: the first
//!   band from the input layout's tag and the input's blind. The grid hand-off carries
//!   `(x_before, x_after, X')` beside the window and model chain: the next group of the
//!   band opens it with the same three (so it read the same rows and claims the same `X'`),
//!   the next band's first group with its `x_before` as the previous band's `x_after`. The
//!   last tile checks `x_after = X'`: the rows the tiles read, band by band, are the
//!   committed block input, and all carry one `X'`, the one the middle chain binds. The
//!   shortcut reads them: a residual the group's channels of the row (selected by the
//!   one-hot group flags, one product per value), a projection all rows with its group's
//!   weights (absorbed with the layer's own in the model update, as chunks order them).
//!   A residual block whose input is committed in rows of the pair's groups streams it by
//!   own links instead (above): tile `(b, k)` reads only link `k` of row `b` (`G·W` values,
//!   range-checked, the residual itself), chains it onto the previous tile's `x_after`, and
//!   the hand-off carries `(x_after, X')`, which the next tile — same band or next — opens
//!   with `(x_before, X')`; the chain over the pass is then the input's links in order, and
//!   the last tile's check `x_after = X'` says the same.
//! - The model slot absorbs the first layer's chunks group by group through the first
//!   pass's first band and the second layer's through the second pass's (each pass checks
//!   its later bands against it, as a grid does), so after the block it holds the untiled
//!   block's update; the counter moves by two in all.
//!
//! A tile reading other middle rows fails its grid's openings or the middle chain; other
//! block input rows fail the hand-off (a later group), the input chain (the last tile) or,
//! with a forged chain, `X'`; a second pass of another input fails the middle chain's
//! start; a skipped, repeated or swapped tile lands on another index, chain or hand-off.
//! Cost: both passes' tiles in every fold (the inactive one on blank values) — about
//! twice a grid tile of either layer, plus the block input's rows (`C·W` range checks, a
//! hash and, for a residual, `C·W` products). The middle chain, like the grid's running
//! chains, lives only inside the block: segment boundaries are block boundaries.
//!
//! ## One tile for both passes
//! When the block's two convolutions have one geometry and the tensors one layout
//! (ResNet's identity blocks, the input committed in rows of the pair's groups:
//! [`PairSpec::shares`]), the two passes' tiles are the same circuit up to constants, so
//! one tile serves both and nothing runs on blank values. The pass bit `p` of the index
//! selects, linearly or with one product each: the padding value, the weights' spec
//! digest in the model update, the input's zero point and the requantization shift (two
//! constraints per output when the layers' shifts differ; both are requantized at the
//! wider accumulator width), where the input chain starts (the input's tag and blind, or
//! `H(TAG_PAIR, tag, X')`) and where the output chain starts (`H(TAG_PAIR, tag, X)`, or the
//! output's tag and blind). The block input row is streamed in both passes, and its
//! residual (its group flags times `p`), its last-tile check and the three values the
//! hand-off carries are multiplied by `p`: the first pass carries zeros. With `p` fixed
//! the tile is exactly the two-pass pair's active tile, so the argument above carries
//! over; a tile run at the other pass's index computes that pass on its own cells (which
//! its native twin mirrors) and fails the chains. Cost: about half the two-pass tile
//! (measured at 32 channels, 4×4, groups of 8: 36,808 constraints against 68,096).
//!
//! ## A pair averaged globally
//! An identity block that ends in a global average pooling (ResNet's last block) is a
//! shared pair whose second pass, instead of chaining its rows, carries in the `out_chain`
//! slot a commitment to the per-channel sums of the block output's rows so far,
//! `S = H(tag, pack(s₀ … s_{C-1}))` ([`pair_pool`]), the sums packed `⌊252/b⌋` per field
//! element with `2^b ≥ 128·H·W + 127·W`. Every tile allocates the sums before it, `s`; in
//! the second pass (`p = 1`) they must open the previous tile's `S`, or, in the pass's
//! first tile, the commitment to zeros (a constant). Channel `c` of group `k` then holds
//! `s'_c = s_c + (p·f_k)·Σ_x y_{c mod G, x}` — one product per channel, `f_k` the tile's
//! one-hot group flag, `y` its requantized row (7-bit) — and every tile averages every
//! `s'_c` ([`crate::gadgets::pool::average_of_sum`]: `s'_c + ⌊n/2⌋ = q·n + r`, `q` 7-bit,
//! `0 ≤ r < n`, `n = H·W`), chains the means as the block's one output row under
//! `blind_out` and commits `S' = H(tag, pack(s'))`. The pass bit selects what the slots
//! take: the middle chain in the first pass, `S'` (and, in the last tile, the means' chain
//! as the block's output) in the second.
//!
//! Why packing is sound here: the averaging bounds every `s'_c` to `(-n, 128·n)` and the
//! added row sum lies in `[0, 127·W]`, so if `s` opens the previous tile's `S`, which
//! (by induction) packs bounded sums `t`, then each `d_c = s_c - t_c` is an integer with
//! `|d_c| < 128·n + 127·W ≤ 2^b`, and `Σ d_c·2^{b·i} = 0` over at most `⌊252/b⌋` limbs
//! never wraps modulo the field's ~254-bit order: the lowest `d` is a multiple of `2^b`
//! smaller than it, hence 0, and so on up — `s = t`. With the tile index argument above,
//! the last tile's sums are the integer sums of every row of the block's output, and its
//! means are the pooled output. A tile that claims other sums fails the opening (or, with
//! the packed value preserved by moving a unit between limbs, the averaging's range), the
//! first tile cannot start from anything but zeros, and a skipped or repeated tile leaves
//! sums that do not open (or miss or double a row). Cost over the shared pair tile: `C`
//! products, `C` averages (~20 constraints each), three short hashes.
//!
//! Hiding: the running chains and the halo commitment are unblinded, but they live only
//! inside a layer: the state between layers (all that a statement reveals) carries the
//! blinded commitments only, and the tile slots are zero there.

mod channels;
mod geometry;
mod pair;
mod pair_pool;
mod state;
mod step;
pub(crate) mod terms;

pub use channels::{GroupSpec, GroupStep, TAG_PAIR};
pub use geometry::{pools_globally, tiled_height, InnerPad, TileGeometry, TileSpec};
pub use pair::{pair_output_links, pair_start_native, PairSpec, PairStep};
pub use pair_pool::TAG_PAIR_SUMS;
pub use state::{TileState, TILE_ARITY};
pub(crate) use step::{band_linear, band_second};
pub use step::{TileCache, TileStep, TileWitness, TAG_GRID_FRONT, TAG_GRID_HALO, TAG_HALO, TAG_POOL_SUMS};
