// The standard normal distribution, for confidence levels other than 95% and for alpha-spending.
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';

/** Φ(x). */
export const phi = (x: number) => normalCdf(x, 0, 1);
/** z with P(|Z| > z) = α: 1.96 for α = 0.05. */
export const zTwoSided = (alpha: number) => -normalQuantile(alpha / 2, 0, 1);
