use super::codec::decimal;
use super::*;

/// What a ring gives back for `value`: itself when it has at most six decimal places, else
/// the nearest `f32`.
fn stored(value: f64) -> f64 {
    if decimal(value).is_some() {
        value
    } else {
        f64::from(value as f32)
    }
}

/// Pushes `points` into a ring of `capacity` and checks it answers the last ones as stored.
fn check(points: &[(i64, f64)], capacity: usize) {
    let mut ring = SeriesRing::default();
    for &(ts, value) in points {
        ring.push(ts, value, capacity);
    }
    let kept = &points[points.len().saturating_sub(capacity)..];
    let expected: Vec<(i64, f64)> = kept.iter().map(|&(ts, v)| (ts, stored(v))).collect();
    assert_eq!(ring.points(), expected, "capacity {capacity}");
    assert_eq!(ring.len(), kept.len());
    assert_eq!(ring.last(), expected.last().copied());
}

/// Timestamps every `step` ms from `start`, with `jitter(i)` added, and a varied value.
fn series(n: usize, start: i64, step: i64, jitter: impl Fn(usize) -> i64) -> Vec<(i64, f64)> {
    (0..n)
        .map(|i| {
            let ts = start + i as i64 * step + jitter(i);
            (ts, 30.0 + (i as f64 * 0.37).sin() * 12.345_678)
        })
        .collect()
}

#[test]
fn answers_exactly_the_last_points_whatever_the_capacity() {
    let regular = series(1_000, 1_700_000_000_000, 2_000, |_| 0);
    for capacity in [1, 2, 5, 127, 128, 129, 300, 999, 1_000, 5_000] {
        check(&regular, capacity);
    }
}

/// A timestamp's offset from the beat, by point.
type Jitter = fn(usize) -> i64;

#[test]
fn every_class_of_irregular_timestamps_round_trips() {
    let jitters: [(&str, Jitter); 5] = [
        ("milliseconds of jitter", |i| (i as i64 * 7919) % 13 - 6),
        ("a second late now and then", |i| {
            if i % 9 == 0 { 1_100 } else { 0 }
        }),
        ("minutes of silence", |i| if i > 50 { 400_000 } else { 0 }),
        (
            "days of silence",
            |i| if i > 70 { 5 * 86_400_000 } else { 0 },
        ),
        (
            "time going backwards",
            |i| if i % 5 == 0 { -3_000 } else { 0 },
        ),
    ];
    for (name, jitter) in jitters {
        let points = series(700, 1_700_000_000_000, 2_000, jitter);
        let mut ring = SeriesRing::default();
        for &(ts, value) in &points {
            ring.push(ts, value, 1_000);
        }
        let got: Vec<i64> = ring.points().iter().map(|p| p.0).collect();
        let want: Vec<i64> = points.iter().map(|p| p.0).collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn decimals_are_exact_and_other_values_keep_seven_significant_digits() {
    let values = [
        0.0,
        -0.0,
        1e-30,
        123_456.789,
        -42.125,
        3.0e38,
        f64::MAX,
        1e-50,
    ];
    let mut ring = SeriesRing::default();
    for (i, &value) in values.iter().enumerate() {
        ring.push(i as i64, value, 100);
    }
    assert_eq!(stored(123_456.789), 123_456.789, "three places: exact");
    // The fewest places, so that values of one series share a scale.
    assert_eq!(decimal(5.25), Some((2, 525)));
    assert_eq!(decimal(0.3), Some((1, 3)));
    assert_eq!(decimal(1e15), Some((0, 1_000_000_000_000_000)));
    assert_eq!(decimal(-42.0), Some((0, -42)));
    assert_eq!(decimal(0.1 + 0.2), None);
    assert_eq!(
        stored(1e-30),
        f64::from(1e-30_f32),
        "beyond six places: an f32"
    );
    for (&(_, got), &want) in ring.points().iter().zip(&values) {
        assert_eq!(got.to_bits(), stored(want).to_bits(), "{want}");
        if want.abs() < 3.4e38 && want.abs() > 1e-37 {
            assert!((got - want).abs() <= want.abs() * 1e-7, "{got} vs {want}");
        }
    }
}

#[test]
fn a_smaller_capacity_from_a_new_policy_trims_at_the_next_point() {
    let points = series(1_000, 0, 1_000, |_| 0);
    let mut ring = SeriesRing::default();
    for &(ts, value) in &points {
        ring.push(ts, value, 1_000);
    }
    ring.push(1_000_000, 1.0, 10);
    let kept = ring.points();
    assert_eq!(kept.len(), 10);
    assert_eq!(kept[0].0, points[991].0);
    assert_eq!(kept[9], (1_000_000, 1.0));
}

#[test]
fn a_full_ring_of_noisy_values_costs_under_six_bytes_a_point() {
    let mut ring = SeriesRing::default();
    for (ts, value) in series(5_000, 1_700_000_000_000, 2_000, |i| (i as i64 * 31) % 7 - 3) {
        ring.push(ts, value, 1_000);
    }
    // Values that jump every point cost most of their 32 bits, jitter of a few ms nine more;
    // at most one chunk is held past the capacity.
    let per_point = ring.heap_bytes() as f64 / ring.len() as f64;
    assert!(per_point < 5.6, "{per_point} bytes a point");
    let plain = std::mem::size_of::<(i64, f64)>() as f64;
    assert!(per_point < plain / 2.5, "{per_point} against {plain}");
}

#[test]
fn steady_and_slowly_moving_gauges_cost_less() {
    let cost = |value: &dyn Fn(usize) -> f64| {
        let mut ring = SeriesRing::default();
        for i in 0..5_000 {
            ring.push(1_700_000_000_000 + i as i64 * 2_000, value(i), 1_000);
        }
        let points = ring.points();
        assert_eq!(points.last().unwrap().1, stored(value(4_999)));
        ring.heap_bytes() as f64 / ring.len() as f64
    };
    // An idle agent's queue, on the beat: a bit for the timestamp, a bit for the value.
    let idle = cost(&|_| 0.0);
    // A gauge read to two decimals, drifting slowly (CPU percent, memory percent).
    let drifting = cost(&|i| (5_000.0 + 500.0 * (i as f64 / 30.0).sin()).round() / 100.0);
    // Three places, moving every point (response time in ms, a rate).
    let moving = cost(&|i| (200_000.0 + 50_000.0 * (i as f64 / 30.0).sin()).round() / 1000.0);
    assert!(idle < 0.75, "idle: {idle} bytes a point");
    assert!(drifting < 1.6, "drifting: {drifting} bytes a point");
    assert!(moving < 2.45, "moving: {moving} bytes a point");
}

#[test]
fn values_that_change_kind_scale_and_sign_round_trip() {
    let values = [
        5.0,
        5.25,
        5.5,
        -5.125,
        0.1 + 0.2,
        0.3,
        0.3,
        1e15,
        1e15 + 1.0,
        -1e15,
        9_007_199_254_740_993.0,
        std::f64::consts::PI,
        std::f64::consts::PI,
        3.0,
        -0.0,
        0.0,
        0.000_001,
        123.456_789,
        f64::MIN_POSITIVE,
        42.0,
        41.0,
        1e300,
        7.0,
    ];
    let points: Vec<(i64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 * 2_000, v))
        .collect();
    for capacity in [1, 3, values.len()] {
        check(&points, capacity);
    }
    let mut ring = SeriesRing::default();
    for &(ts, value) in &points {
        ring.push(ts, value, 100);
    }
    let got: Vec<f64> = ring.points().iter().map(|p| p.1).collect();
    assert_eq!(got[3], -5.125);
    assert_eq!(got[5], 0.3, "exact, not the f32 0.30000001");
    assert_eq!(got[8], 1e15 + 1.0);
    assert_eq!(got[14].to_bits(), (-0.0f64).to_bits());
    assert_eq!(got[16], 0.000_001);
}

#[test]
fn decimal_differences_of_every_width_round_trip_as_the_width_grows_and_shrinks() {
    // Three places; the differences' widths go up from 1 bit to 50 and back, then alternate
    // between the smallest and the largest, so the width is kept, replaced and kept again.
    let mut widths: Vec<u32> = (1..=50).chain((1..50).rev()).collect();
    widths.extend([1, 50, 1, 50, 2, 2, 2, 49, 49, 3]);
    let mut n: i64 = 0;
    let points: Vec<(i64, f64)> = widths
        .iter()
        .enumerate()
        .map(|(i, &width)| {
            let step = 1i64 << (width - 1);
            n += if i % 2 == 0 { step } else { -step / 2 - 1 };
            (i as i64 * 2_000, n as f64 / 1000.0)
        })
        .collect();
    for capacity in [1, 7, points.len()] {
        check(&points, capacity);
    }
}

#[test]
fn a_large_value_with_three_places_is_found_to_be_a_decimal() {
    // At four places its integer would be near 2^53, where the product rounds off the mark.
    assert_eq!(decimal(281_474_976_710.629), Some((3, 281_474_976_710_629)));
}
