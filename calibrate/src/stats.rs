//! Reducing rounds to figures: median and range, and a least-squares line.

/// The median and the range of some rounds' figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Summary {
    pub median: f64,
    pub low: f64,
    pub high: f64,
}

impl Summary {
    /// Of a non-empty list (an empty one gives NaN figures); an even count's median is the
    /// mean of the middle two.
    pub fn of(values: &[f64]) -> Summary {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = match sorted.len() {
            0 => f64::NAN,
            len if len % 2 == 1 => sorted[middle],
            _ => (sorted[middle - 1] + sorted[middle]) / 2.0,
        };
        Summary {
            median,
            low: sorted.first().copied().unwrap_or(f64::NAN),
            high: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// The least-squares line through the points `(xs[i], ys[i])`: `(slope, intercept)`.
pub(crate) fn fit_line(xs: &[f64], ys: &[f64]) -> (f64, f64) {
    let count = xs.len() as f64;
    let mean_x = xs.iter().sum::<f64>() / count;
    let mean_y = ys.iter().sum::<f64>() / count;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        covariance += (x - mean_x) * (y - mean_y);
        variance += (x - mean_x) * (x - mean_x);
    }
    let slope = covariance / variance;
    (slope, mean_y - slope * mean_x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts_and_the_range() {
        assert_eq!(
            Summary::of(&[5.0, 1.0, 3.0]),
            Summary {
                median: 3.0,
                low: 1.0,
                high: 5.0
            }
        );
        assert_eq!(
            Summary::of(&[4.0, 1.0, 3.0, 10.0]),
            Summary {
                median: 3.5,
                low: 1.0,
                high: 10.0
            }
        );
    }

    #[test]
    fn a_line_is_fitted_exactly_and_noise_averages_out() {
        let xs = [1.0, 64.0, 1024.0, 4096.0];
        let exact: Vec<f64> = xs.iter().map(|x| 200.0 + 0.25 * x).collect();
        assert_eq!(fit_line(&xs, &exact), (0.25, 200.0));
        // Noise of ±1 moves the line by less than the noise.
        let noisy: Vec<f64> = exact
            .iter()
            .zip([1.0, -1.0, -1.0, 1.0])
            .map(|(y, noise)| y + noise)
            .collect();
        let (slope, intercept) = fit_line(&xs, &noisy);
        assert!((slope - 0.25).abs() < 0.001, "slope {slope}");
        assert!((intercept - 200.0).abs() < 1.0, "intercept {intercept}");
    }
}
