//! Constraints of tiled convolutions and basic blocks against the same block in one step:
//! what tiling costs. For each ResNet-20 convolution and basic block (CIFAR-size input) and
//! a fold budget, the whole step is synthesized, the block is tiled in the most rows whose
//! tile fits (the least overhead), in the most output channels whose tile fits (a
//! block's two passes), (a convolution) in one output row of the most channels whose
//! tile fits, and (a residual block) in a pair of such grids, and the tiles' totals are
//! compared; the last column is the tiling
//! `prove` picks (by estimated time) for a segment of one such block.
//!
//! `cargo run --release --example tile_overhead [BUDGET...]` (default: 262144 524288).

use fold_ml::prove::plan::{tiling, Groups};
use fold_ml_circuits::cost::StepCost;
use fold_ml_circuits::gadgets::{conv::ConvShape, linear::LinearShape};
use fold_ml_circuits::layer::{BlockSpec, LayerSpec, Links};
use fold_ml_circuits::quant::RequantSpec;
use fold_ml_circuits::step::{grid_spec, group_spec, pair_spec, tile_spec, Tiling};

/// ResNet's basic block on a `c×s×s` input: conv3x3(stride) → conv3x3 + shortcut (a
/// residual, or a 1×1 stride-2 projection to `2c` channels when `down`).
fn basic_block(c: usize, s: usize, down: bool, rq: RequantSpec) -> BlockSpec {
    let (co, stride) = if down { (2 * c, 2) } else { (c, 1) };
    let conv1 = ConvShape { stride: [stride; 2], ..ConvShape::same(c, co, s, s, 3) };
    let (_, oh, ow) = conv1.output_dims();
    let projection = down.then_some(ConvShape { stride: [2, 2], ..ConvShape::same(c, co, s, s, 1) });
    let second = LayerSpec {
        skip: if down { 0 } else { 1 },
        projection,
        ..LayerSpec::new(LinearShape::Conv(ConvShape::same(co, co, oh, ow, 3)), rq)
    };
    BlockSpec::new(vec![LayerSpec::new(LinearShape::Conv(conv1), rq), second])
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn main() {
    let budgets: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let budgets = if budgets.is_empty() { vec![1 << 18, 1 << 19] } else { budgets };
    let rq = RequantSpec::new(8, 24).expect("valid");
    let conv = |c: ConvShape| BlockSpec::layer(LayerSpec::new(LinearShape::Conv(c), rq));
    let blocks = [
        ("stem 3→16, 32×32", conv(ConvShape::same(3, 16, 32, 32, 3))),
        ("conv 16→16, 32×32", conv(ConvShape::same(16, 16, 32, 32, 3))),
        ("conv 32→32, 16×16", conv(ConvShape::same(32, 32, 16, 16, 3))),
        ("conv 64→64, 8×8", conv(ConvShape::same(64, 64, 8, 8, 3))),
        ("block 16, 32×32 (residual)", basic_block(16, 32, false, rq)),
        ("block 16→32 stride 2 (projection)", basic_block(16, 32, true, rq)),
        ("block 32, 16×16 (residual)", basic_block(32, 16, false, rq)),
        ("block 32→64 stride 2 (projection)", basic_block(32, 16, true, rq)),
        ("block 64, 8×8 (residual)", basic_block(64, 8, false, rq)),
    ];
    println!(
        "| layer or block | MACs | one step | budget | tile | tiles | per tile | all tiles | tiled / whole | planner's tiling (1 block) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, block) in blocks {
        let whole = StepCost::of_step(&block, block.num_stages());
        let linked = block.clone().with_row_links([true, true]);
        let height = linked.stages.last().expect("a block has layers").output_dims()[1];
        // every valid tiling, the largest tiles first, with its tile's size
        let rows: Vec<(String, usize, usize)> = (1..height)
            .rev()
            .filter(|&r| height.is_multiple_of(r))
            .filter_map(|r| tile_spec(&linked, r).ok())
            .map(|spec| {
                let tile = StepCost::of_tile(&spec).expect("a valid tiling synthesizes");
                (
                    format!("{} row{}", spec.rows, plural(spec.rows)),
                    spec.geometry().expect("valid").tiles,
                    tile.constraints,
                )
            })
            .collect();
        let outputs = block.stages[0].shape.num_biases();
        let channels: Vec<(String, usize, usize)> = (1..outputs)
            .rev()
            .filter(|&g| outputs.is_multiple_of(g))
            .filter_map(|g| {
                let linked = block.clone().with_links([Links::Whole, Links::Channels(g)]);
                let spec = group_spec(&linked, g).ok()?;
                let tile = StepCost::of_group(&spec).expect("a valid tiling synthesizes");
                Some((format!("{g} channels"), spec.tiles(), tile.constraints))
            })
            .collect();
        let grids: Vec<(String, usize, usize)> = (1..outputs)
            .rev()
            .filter(|&g| outputs.is_multiple_of(g))
            .filter_map(|g| {
                let linked = block.clone().with_links([Links::Rows, Links::RowGroups(g)]);
                let spec = grid_spec(&linked, g).ok()?;
                let tile = StepCost::of_tile(&spec).expect("a valid tiling synthesizes");
                Some((format!("1 row x {g} channels"), spec.tiles(), tile.constraints))
            })
            .collect();
        let pairs: Vec<(String, usize, usize)> = (1..outputs)
            .rev()
            .filter(|&g| outputs.is_multiple_of(g))
            .filter_map(|g| {
                let linked = block.clone().with_links([Links::Rows, Links::RowGroups(g)]);
                let spec = pair_spec(&linked, g).ok()?;
                let tile = StepCost::of_pair(&spec).expect("a valid tiling synthesizes");
                Some((format!("1 row x {g} channels, two passes"), spec.tiles(), tile.constraints))
            })
            .collect();
        for &budget in &budgets {
            let planner = match tiling(&block, whole.constraints, (budget, Groups::Any), (1, Links::Rows)) {
                None => "whole".into(),
                Some(Tiling::Rows(r)) => format!("{r} row{}", plural(r)),
                Some(Tiling::Channels(g)) => format!("{g} channel{}", plural(g)),
                Some(Tiling::Grid(g)) => format!("1 row x {g} channel{}", plural(g)),
                Some(Tiling::Pair(g)) => format!("1 row x {g} channel{}, two passes", plural(g)),
            };
            // the least overhead of each kind: the largest tiles that fit (the smallest
            // when none does)
            for tilings in [&rows, &channels, &grids, &pairs] {
                let Some((tile, tiles, per_tile)) = tilings.iter().find(|t| t.2 <= budget).or(tilings.last()) else {
                    continue;
                };
                let all = per_tile * tiles;
                println!(
                    "| {name} | {} | {} | {budget} | {tile} | {tiles} | {per_tile} | {all} | {:.3} | {planner} |",
                    whole.macs,
                    whole.constraints,
                    all as f64 / whole.constraints as f64
                );
            }
        }
    }
}
