/**
 * The constant-velocity Kalman filter of SORT / DeepSORT for boxes, as ByteTrack uses it (sources in
 * `./bytetrack`), and the conversions between `[x1, y1, x2, y2]` boxes and its `[cx, cy, a, h]` measurement.
 */
import type { BBox } from '../detection/geometry';

// ---------------------------------------------------------------------------------------------------------
// Box conversions
// ---------------------------------------------------------------------------------------------------------

/**
 * Converts `[x1, y1, x2, y2]` to the Kalman measurement `[cx, cy, a, h]`: centre (pixels), aspect ratio
 * a = w / h (unitless) and height h (pixels). Source: DeepSORT/ByteTrack `tlwh_to_xyah`.
 * The box must have h > 0 (a is w / h); the caller checks.
 */
export function bboxToXyah(b: Readonly<BBox>): [number, number, number, number] {
  const w = b[2] - b[0];
  const h = b[3] - b[1];
  return [b[0] + w / 2, b[1] + h / 2, w / h, h];
}

/**
 * Converts a Kalman state or measurement whose first four entries are `[cx, cy, a, h]` back to
 * `[x1, y1, x2, y2]` pixels (w = a * h). Source: ByteTrack `STrack.tlwh` / `tlbr`.
 */
export function xyahToBbox(m: ArrayLike<number>): BBox {
  const h = m[3];
  const w = m[2] * h;
  return [m[0] - w / 2, m[1] - h / 2, m[0] + w / 2, m[1] + h / 2];
}

// ---------------------------------------------------------------------------------------------------------
// Kalman filter
// ---------------------------------------------------------------------------------------------------------

/**
 * Gaussian state of one track: `mean` has 8 entries [cx, cy, a, h, vx, vy, va, vh] (pixels, unitless,
 * pixels, then the same per step); `covariance` is the 8x8 covariance, row-major, 64 entries.
 */
export interface KalmanState {
  mean: Float64Array;
  covariance: Float64Array;
}

/** Gaussian in measurement space: `mean` [cx, cy, a, h] (4 entries), `covariance` 4x4 row-major (16). */
export interface KalmanProjection {
  mean: Float64Array;
  covariance: Float64Array;
}

const NS = 8; // state size
const NM = 4; // measurement size

/**
 * Solves S X = B for X where S is a 4x4 symmetric positive-definite matrix (row-major, 16 entries) and B is
 * 4 x `cols` (row-major), by Cholesky factorisation S = L L^T then forward and back substitution. This is
 * what the reference does with `scipy.linalg.cho_factor` / `cho_solve` in `KalmanFilter.update`.
 * Hand-written because the matrix is 4x4 and the project allows one new dependency (used for the
 * assignment solver).
 * @throws RangeError when S is not positive definite (a non-positive pivot), e.g. for a NaN state
 */
function choleskySolve4(S: Float64Array, B: Float64Array, cols: number): Float64Array {
  const L = new Float64Array(16);
  for (let i = 0; i < NM; i++) {
    for (let j = 0; j <= i; j++) {
      let s = S[i * NM + j];
      for (let k = 0; k < j; k++) s -= L[i * NM + k] * L[j * NM + k];
      if (i === j) {
        if (!(s > 0)) throw new RangeError(`Kalman innovation covariance is not positive definite (pivot ${s})`);
        L[i * NM + i] = Math.sqrt(s);
      } else {
        L[i * NM + j] = s / L[j * NM + j];
      }
    }
  }
  const X = new Float64Array(NM * cols);
  for (let c = 0; c < cols; c++) {
    // forward: L y = b
    for (let i = 0; i < NM; i++) {
      let s = B[i * cols + c];
      for (let k = 0; k < i; k++) s -= L[i * NM + k] * X[k * cols + c];
      X[i * cols + c] = s / L[i * NM + i];
    }
    // back: L^T x = y
    for (let i = NM - 1; i >= 0; i--) {
      let s = X[i * cols + c];
      for (let k = i + 1; k < NM; k++) s -= L[k * NM + i] * X[k * cols + c];
      X[i * cols + c] = s / L[i * NM + i];
    }
  }
  return X;
}

/**
 * Constant-velocity Kalman filter for boxes in [cx, cy, a, h] space, a port of DeepSORT's
 * `deep_sort/kalman_filter.py` as used by ByteTrack (`yolox/tracker/kalman_filter.py`).
 *
 * Model (dt = 1 step): F = [[I4, I4], [0, I4]] (position += velocity), H = [I4, 0] (the box is observed).
 * Noise standard deviations, all from the reference, with h the current height estimate in pixels:
 * - initiate: position 2 * h/20 (cx, cy, h) and 1e-2 (a); velocity 10 * h/160 (vx, vy, vh) and 1e-5 (va);
 * - predict (process noise Q): position h/20, 1e-2 for a; velocity h/160, 1e-5 for va;
 * - project (measurement noise R): h/20 for cx, cy, h and 1e-1 for a.
 *
 * Stateless: every method returns new arrays and leaves its inputs unchanged.
 */
export class KalmanBoxFilter {
  /** `_std_weight_position` of the reference: position noise std per pixel of box height. */
  static readonly STD_WEIGHT_POSITION = 1 / 20;
  /** `_std_weight_velocity` of the reference: velocity noise std per pixel of box height, per step. */
  static readonly STD_WEIGHT_VELOCITY = 1 / 160;

  /**
   * Creates a track's state from its first measurement: mean = [z, 0, 0, 0, 0], diagonal covariance.
   * @param z measurement [cx, cy, a, h] (see {@link bboxToXyah}); h > 0
   */
  initiate(z: ArrayLike<number>): KalmanState {
    const mean = new Float64Array(NS);
    for (let i = 0; i < NM; i++) mean[i] = z[i];
    const h = z[3];
    const wp = KalmanBoxFilter.STD_WEIGHT_POSITION;
    const wv = KalmanBoxFilter.STD_WEIGHT_VELOCITY;
    const std = [2 * wp * h, 2 * wp * h, 1e-2, 2 * wp * h, 10 * wv * h, 10 * wv * h, 1e-5, 10 * wv * h];
    const covariance = new Float64Array(NS * NS);
    for (let i = 0; i < NS; i++) covariance[i * NS + i] = std[i] * std[i];
    return { mean, covariance };
  }

  /**
   * One step ahead: mean' = F mean, P' = F P F^T + Q, with Q from the height of the input mean.
   * @param s current state (not modified)
   */
  predict(s: KalmanState): KalmanState {
    const m = s.mean;
    const P = s.covariance;
    const h = m[3];
    const wp = KalmanBoxFilter.STD_WEIGHT_POSITION;
    const wv = KalmanBoxFilter.STD_WEIGHT_VELOCITY;
    const std = [wp * h, wp * h, 1e-2, wp * h, wv * h, wv * h, 1e-5, wv * h];
    const mean = new Float64Array(NS);
    for (let i = 0; i < NM; i++) {
      mean[i] = m[i] + m[i + NM];
      mean[i + NM] = m[i + NM];
    }
    // P' = F P F^T + Q with F = [[I, I], [0, I]]: P'[i][j] = P[i][j] + P[i+4][j] (i < 4) + P[i][j+4] (j < 4)
    // + P[i+4][j+4] (i, j < 4), written out to avoid two dense 8x8 products.
    const covariance = new Float64Array(NS * NS);
    for (let i = 0; i < NS; i++) {
      for (let j = 0; j < NS; j++) {
        let v = P[i * NS + j];
        if (i < NM) v += P[(i + NM) * NS + j];
        if (j < NM) v += P[i * NS + j + NM];
        if (i < NM && j < NM) v += P[(i + NM) * NS + j + NM];
        covariance[i * NS + j] = v;
      }
      covariance[i * NS + i] += std[i] * std[i];
    }
    return { mean, covariance };
  }

  /**
   * Projects a state to measurement space: mean H x (= first 4 entries), covariance H P H^T + R.
   * @param s state (not modified)
   */
  project(s: KalmanState): KalmanProjection {
    const h = s.mean[3];
    const wp = KalmanBoxFilter.STD_WEIGHT_POSITION;
    const std = [wp * h, wp * h, 1e-1, wp * h];
    const mean = s.mean.slice(0, NM);
    const covariance = new Float64Array(NM * NM);
    for (let i = 0; i < NM; i++) {
      for (let j = 0; j < NM; j++) covariance[i * NM + j] = s.covariance[i * NS + j];
      covariance[i * NM + i] += std[i] * std[i];
    }
    return { mean, covariance };
  }

  /**
   * Measurement update: K = P H^T S^-1 (solved by Cholesky, as the reference's `cho_solve`),
   * mean' = mean + K (z - H mean), P' = P - K S K^T.
   * @param s predicted state (not modified)
   * @param z measurement [cx, cy, a, h]
   * @throws RangeError when S is not positive definite (only for non-finite or corrupted states)
   */
  update(s: KalmanState, z: ArrayLike<number>): KalmanState {
    const proj = this.project(s);
    const P = s.covariance;
    // B = (P H^T)^T = H P = first 4 rows of P (4 x 8); X = S^-1 B; K = X^T (8 x 4).
    const B = P.slice(0, NM * NS);
    const X = choleskySolve4(proj.covariance, B, NS);
    const innov = new Float64Array(NM);
    for (let i = 0; i < NM; i++) innov[i] = z[i] - proj.mean[i];
    const mean = new Float64Array(NS);
    for (let r = 0; r < NS; r++) {
      let v = s.mean[r];
      for (let k = 0; k < NM; k++) v += X[k * NS + r] * innov[k];
      mean[r] = v;
    }
    // K S K^T = K (S X) = K B  since S X = B, so P' = P - X^T B.
    const covariance = new Float64Array(NS * NS);
    for (let r = 0; r < NS; r++) {
      for (let c = 0; c < NS; c++) {
        let v = P[r * NS + c];
        for (let k = 0; k < NM; k++) v -= X[k * NS + r] * B[k * NS + c];
        covariance[r * NS + c] = v;
      }
    }
    return { mean, covariance };
  }
}
