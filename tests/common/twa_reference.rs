//! The reference `twa` of the time-series tests, written from its definition.

/// The mean over `[from_ms, to_ms]` of the piecewise-linear function through `points`
/// (in time order): what `twa` reports for a bucket covering that span.
pub fn line_mean(points: &[(u64, f64)], from_ms: u64, to_ms: u64) -> f64 {
    let at = |t: u64| -> f64 {
        let i = points.iter().rposition(|p| p.0 <= t).unwrap_or(0);
        let j = (i + 1).min(points.len() - 1);
        let ((t1, v1), (t2, v2)) = (points[i], points[j]);
        if t1 == t2 {
            v1
        } else {
            v1 + (t as f64 - t1 as f64) * (v2 - v1) / (t2 as f64 - t1 as f64)
        }
    };
    if from_ms == to_ms {
        return at(from_ms);
    }
    let mut cuts = vec![from_ms];
    cuts.extend(
        points
            .iter()
            .map(|p| p.0)
            .filter(|&t| t > from_ms && t < to_ms),
    );
    cuts.push(to_ms);
    let area: f64 = cuts
        .windows(2)
        .map(|w| (at(w[0]) + at(w[1])) / 2.0 * (w[1] - w[0]) as f64)
        .sum();
    area / (to_ms - from_ms) as f64
}
