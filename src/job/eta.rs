//! How long a job has left. A fold of a large tile costs many times one of a small layer
//! (ResNet-18's folds run from 0.4M to 1.6M constraints), so layers per second says little
//! inside a tiled network: the time left is the folds still to do, each weighed by its
//! step's constraints, at the constraints per second the latest run measured, plus the
//! compressions still to do (estimated by the cost model, [`crate::prove::plan`]). Each run
//! logs its plan ([`PlannedSegment`]s in a `planned` event) so that `status` needs nothing
//! but the job's files.

use super::events::{JobEvent, Logged};
use crate::model::Architecture;
use serde::{Deserialize, Serialize};

/// One segment of a run's plan, as logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedSegment {
    /// Model layers before it.
    pub offset: usize,
    /// Its layers.
    pub layers: usize,
    /// Layers per Nova step.
    pub layers_per_step: usize,
    /// Folds per step (its tiles; 1 when not tiled).
    pub tiles: usize,
    /// Constraints per fold: the step circuit's with Nova's (primary), and the secondary
    /// circuit's.
    pub constraints: (usize, usize),
}

impl PlannedSegment {
    /// The plan of `layers` layers of `arch` after `offset` others, with its parameters'
    /// constraint counts.
    pub fn of(arch: &Architecture, offset: usize, layers: usize, constraints: (usize, usize)) -> Self {
        Self { offset, layers, layers_per_step: arch.layers_per_step.max(1), tiles: arch.tiles(), constraints }
    }

    /// Its folds.
    pub fn folds(&self) -> usize {
        self.layers.div_ceil(self.layers_per_step.max(1)) * self.tiles
    }

    /// Its folds done when `done` layers of the model are, and `tile` folds of the step
    /// under way (a tile count runs over the whole step, both passes of a pair).
    pub fn folds_done(&self, done: usize, tile: usize) -> usize {
        if done < self.offset {
            0
        } else if done >= self.offset + self.layers {
            self.folds()
        } else {
            ((done - self.offset) / self.layers_per_step.max(1)) * self.tiles + tile
        }
    }

    fn work(&self) -> f64 {
        (self.constraints.0 + self.constraints.1) as f64
    }
}

/// Folding work done at a position: constraints folded, and folds.
fn work_at(plan: &[PlannedSegment], (done, tile): (usize, usize)) -> (f64, usize) {
    plan.iter().fold((0.0, 0), |(w, f), s| {
        let n = s.folds_done(done, tile);
        (w + n as f64 * s.work(), f + n)
    })
}

/// Where a job stands against its logged plan, and the time left.
#[derive(Clone, Debug, PartialEq)]
pub struct Eta {
    /// Folds done, and the plan's folds.
    pub folds: [usize; 2],
    /// Constraints folded per second by the latest run's last [`RATE_FOLDS`] folds (key
    /// loading and compression between them excluded); `None` before it folded twice.
    pub constraints_per_s: Option<f64>,
    /// Seconds of folding left at that rate.
    pub folding_s: Option<f64>,
    /// Segments still to compress, and the cost model's seconds for them.
    pub compressions: (usize, f64),
}

impl Eta {
    /// Seconds left: folding at the measured rate plus the estimated compressions.
    pub fn seconds(&self) -> Option<f64> {
        self.folding_s.map(|f| f + self.compressions.1)
    }
}

/// Folds (pairs of consecutive folds) the rate is measured over: the latest ones.
pub const RATE_FOLDS: usize = 100;

/// Where a fold event left the job: layers done, and tiles of the next layer.
pub(crate) fn position(e: &Logged) -> Option<(usize, usize)> {
    match e.event {
        JobEvent::Folded { done, tile, .. } => Some((done, tile.map_or(0, |t| t[0]))),
        _ => None,
    }
}

/// The time left by the latest `planned` event of `events`, from the position `at` (layers
/// done, tiles of the next: the latest fold, or the newest checkpoint); `None` when no run
/// logged a plan (jobs started by older versions).
pub fn eta(events: &[Logged], at: (usize, usize)) -> Option<Eta> {
    let p = events.iter().rposition(|e| matches!(e.event, JobEvent::Planned { .. }))?;
    let JobEvent::Planned { segments: plan } = &events[p].event else { unreachable!("found above") };
    let (done_work, done_folds) = work_at(plan, at);
    // every segment done
    let total = work_at(plan, (usize::MAX, 0));
    // The rate over pairs of consecutive folds of this run (checkpoints between them count
    // as folding time; any other event, such as a compression, breaks the pair).
    // Only the latest RATE_FOLDS pairs count: a machine shared for a while, hours ago, says
    // little about the hours left.
    let mut pairs: Vec<(f64, f64)> = Vec::new();
    let mut previous: Option<(f64, f64)> = None;
    for e in &events[p..] {
        previous = match (position(e), &e.event) {
            (Some(b), _) => {
                let w = work_at(plan, b).0;
                if let Some((t, w0)) = previous.filter(|&(t, w0)| w > w0 && e.t > t) {
                    pairs.push((w - w0, e.t - t));
                }
                Some((e.t, w))
            }
            (None, JobEvent::Checkpoint { .. }) => previous,
            (None, _) => None,
        };
    }
    let recent = &pairs[pairs.len().saturating_sub(RATE_FOLDS)..];
    let (work, seconds) = recent.iter().fold((0.0, 0.0), |(w, s), &(dw, dt)| (w + dw, s + dt));
    let constraints_per_s = (seconds > 0.0).then(|| work / seconds);
    // Segments with folds left still compress; so does a finished one when no compression
    // was logged after the fold that finished it.
    let last_fold = events.iter().rposition(|e| position(e).is_some());
    let compressed_since = last_fold
        .is_some_and(|i| events[i + 1..].iter().any(|e| matches!(e.event, JobEvent::SegmentCompressed { .. })));
    let pending = plan.iter().filter(|s| {
        let n = s.folds_done(at.0, at.1);
        n < s.folds() || (n > 0 && at == (s.offset + s.layers, 0) && !compressed_since)
    });
    let compressions = pending
        .fold((0, 0.0), |(k, t), s| (k + 1, t + crate::prove::plan::estimate_steps(s.constraints.0, 0).compress_s));
    Some(Eta {
        folds: [done_folds, total.1],
        constraints_per_s,
        folding_s: constraints_per_s.map(|r| (total.0 - done_work).max(0.0) / r),
        compressions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: f64, event: JobEvent) -> Logged {
        Logged { t, event }
    }

    fn folded(t: f64, done: usize, tile: Option<[usize; 2]>) -> Logged {
        at(t, JobEvent::Folded { done, total: 5, tile })
    }

    /// A one-layer segment of 4 tiles of 100k constraints, then two blocks (two layers per
    /// step) of 2 tiles of 400k each: 4 + 4 folds, 400k + 1,600k constraints.
    fn plan() -> Vec<PlannedSegment> {
        vec![
            PlannedSegment { offset: 0, layers: 1, layers_per_step: 1, tiles: 4, constraints: (90_000, 10_000) },
            PlannedSegment { offset: 1, layers: 4, layers_per_step: 2, tiles: 2, constraints: (390_000, 10_000) },
        ]
    }

    #[test]
    fn folds_are_counted_through_tiles_and_stacked_layers() {
        let [a, b] = plan()[..] else { panic!() };
        assert_eq!((a.folds(), b.folds()), (4, 4));
        assert_eq!(a.folds_done(0, 3), 3);
        assert_eq!((a.folds_done(1, 0), b.folds_done(1, 0)), (4, 0));
        // Inside the second block, whichever pass: the tile counts from the block's start.
        assert_eq!(b.folds_done(3, 1), 3);
        assert_eq!(b.folds_done(4, 1), 3);
        assert_eq!(b.folds_done(5, 0), 4);
        assert_eq!(work_at(&plan(), (3, 1)), (4.0 * 100_000.0 + 3.0 * 400_000.0, 7));
    }

    #[test]
    fn the_time_left_weighs_folds_by_their_size() {
        let events = [
            at(0.0, JobEvent::Planned { segments: plan() }),
            folded(10.0, 0, Some([1, 4])),
            folded(11.0, 0, Some([2, 4])),
            folded(12.0, 0, Some([3, 4])),
            at(12.5, JobEvent::Checkpoint { layers: 0, tiles: 3, bytes: 1, seconds: 0.5, file: None }),
            folded(13.0, 1, None),
            // 100 s of compression and key loading: not folding.
            at(113.0, JobEvent::SegmentCompressed { segment: 0, seconds: 100.0 }),
            folded(117.0, 1, Some([1, 2])),
        ];
        let e = eta(&events, (1, 1)).expect("planned");
        assert_eq!(e.folds, [5, 8]);
        // 300k constraints in 3 s between the first segment's folds (a checkpoint between
        // two of them included); the fold after the compression has no previous fold next
        // to it.
        assert_eq!(e.constraints_per_s, Some(100_000.0));
        // Left: 3 folds of 400k = 1.2M constraints, 12 s; one compression.
        assert_eq!(e.folding_s, Some(12.0));
        assert_eq!(e.compressions.0, 1);
        assert!(e.seconds().unwrap() > 12.0);
    }

    #[test]
    fn the_rate_is_the_latest_folds() {
        // 300 folds of 100k constraints in the first segment's place: one per second, then
        // one every 10 s for the last RATE_FOLDS (a neighbour took the machine).
        let plan = [PlannedSegment { offset: 0, layers: 1, layers_per_step: 1, tiles: 400, constraints: (100_000, 0) }];
        let mut events = vec![at(0.0, JobEvent::Planned { segments: plan.to_vec() })];
        let mut t = 0.0;
        for k in 1..=300 {
            t += if k > 300 - RATE_FOLDS { 10.0 } else { 1.0 };
            events.push(at(t, JobEvent::Folded { done: 0, total: 1, tile: Some([k, 400]) }));
        }
        assert_eq!(eta(&events, (0, 300)).unwrap().constraints_per_s, Some(10_000.0));
    }

    #[test]
    fn a_finished_segment_compresses_until_it_is_logged() {
        let events =
            [at(0.0, JobEvent::Planned { segments: plan() }), folded(1.0, 0, Some([3, 4])), folded(2.0, 1, None)];
        assert_eq!(eta(&events, (1, 0)).unwrap().compressions.0, 2);
        let mut logged = events.to_vec();
        logged.push(at(3.0, JobEvent::SegmentCompressed { segment: 0, seconds: 1.0 }));
        assert_eq!(eta(&logged, (1, 0)).unwrap().compressions.0, 1);
        // No plan logged (a job of an older version): no estimate.
        assert_eq!(eta(&events[1..], (1, 0)), None);
    }
}
