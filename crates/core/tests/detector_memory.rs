//! The steady-state memory of one series' anomaly detector, measured by the allocator: live
//! heap bytes per detector (its own struct included) after every part has filled its windows
//! and trained. Issue 22's bound is 10 KB per watched series.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use swarmpilot_core::analytics::anomaly::{Detector, DetectorConfig};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A noisy daily-like wave, different for each series.
fn value(series: usize, i: usize) -> f64 {
    let noise = ((i * 7919 + series * 104_729) % 101) as f64 / 101.0 - 0.5;
    50.0 + 20.0 * (i as f64 * std::f64::consts::TAU / 288.0 + series as f64).sin() + 3.0 * noise
}

#[test]
fn a_detector_in_steady_state_holds_at_most_10_kb() {
    const SERIES: usize = 100;
    const POINTS: usize = 3_000;
    // The first training creates the thread's inline rayon pool: not a per-series cost.
    let mut warm = Detector::new(DetectorConfig::default());
    for i in 0..POINTS {
        warm.update(value(SERIES, i));
    }
    let before = LIVE.load(Ordering::Relaxed);
    let mut detectors: Vec<Detector> = Vec::with_capacity(SERIES);
    for series in 0..SERIES {
        let mut detector = Detector::new(DetectorConfig::default());
        for i in 0..POINTS {
            detector.update(value(series, i));
        }
        assert!(detector.kmeans_model().is_some(), "trained");
        detectors.push(detector);
    }
    let per_series = (LIVE.load(Ordering::Relaxed) - before) as f64 / SERIES as f64;
    println!("{per_series:.0} bytes per series");
    assert!(per_series <= 10_240.0, "{per_series:.0} bytes per series");
    assert!(
        per_series >= 1_000.0,
        "the count sees the detectors: {per_series:.0}"
    );
    drop(detectors);
}
