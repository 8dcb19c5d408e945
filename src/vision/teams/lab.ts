/**
 * CIELAB, the perceptual colour space the kit colours are compared in: Euclidean distance there (CIE76
 * ΔE*ab) approximates perceived colour difference, which an RGB or HSV distance does not (a dark red and a
 * bright red are far apart in RGB; two whites under different light are close in Lab).
 *
 * Conversion: sRGB (IEC 61966-2-1:1999) 8-bit → linear RGB (the sRGB transfer function) → CIE XYZ with the
 * sRGB/D65 matrix → CIELAB (CIE 15:2004, "Colorimetry", section 8.2.1) with the D65 white
 * (Xn 0.95047, Yn 1, Zn 1.08883). L* is 0-100; a* and b* are roughly -128 to 127.
 */

/** A colour in CIELAB: `[L* (0-100), a*, b*]`. */
export type Lab = [number, number, number];

/** sRGB 8-bit code value → linear light 0-1 (IEC 61966-2-1 transfer function), one entry per code value. */
const LINEAR: Float64Array = (() => {
  const t = new Float64Array(256);
  for (let i = 0; i < 256; i++) {
    const c = i / 255;
    t[i] = c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }
  return t;
})();

const XN = 0.95047;
const ZN = 1.08883;
const EPS = 216 / 24389;
const KAPPA = 24389 / 27;
const f = (t: number) => (t > EPS ? Math.cbrt(t) : (KAPPA * t + 16) / 116);

/**
 * Converts one sRGB pixel (0-255 per channel) to CIELAB (D65 white).
 * @returns `[L*, a*, b*]`; black is `[0, 0, 0]`, white is `[100, 0, 0]` (to within 1e-3)
 */
export function srgbToLab(r: number, g: number, b: number): Lab {
  const R = LINEAR[r];
  const G = LINEAR[g];
  const B = LINEAR[b];
  const x = (0.4124564 * R + 0.3575761 * G + 0.1804375 * B) / XN;
  const y = 0.2126729 * R + 0.7151522 * G + 0.072175 * B;
  const z = (0.0193339 * R + 0.119192 * G + 0.9503041 * B) / ZN;
  const fx = f(x);
  const fy = f(y);
  const fz = f(z);
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}

/** CIE76 colour difference ΔE*ab: the Euclidean distance of two Lab colours. About 2.3 is a just-noticeable difference (Sharma, "Digital Color Imaging Handbook", 2003). */
export function deltaE(p: Lab, q: Lab): number {
  return Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]);
}

/**
 * Converts a CIELAB colour (D65) back to sRGB, the inverse of {@link srgbToLab} (same sources), each
 * channel clamped to 0-255 and rounded: for showing a kit colour.
 * @returns `#rrggbb`
 */
export function labToHex(lab: Lab): string {
  const fy = (lab[0] + 16) / 116;
  const fx = fy + lab[1] / 500;
  const fz = fy - lab[2] / 200;
  const inv = (t: number) => (t ** 3 > EPS ? t ** 3 : (116 * t - 16) / KAPPA);
  const x = inv(fx) * XN;
  const y = inv(fy);
  const z = inv(fz) * ZN;
  const lin = [3.2404542 * x - 1.5371385 * y - 0.4985314 * z, -0.969266 * x + 1.8760108 * y + 0.041556 * z, 0.0556434 * x - 0.2040259 * y + 1.0572252 * z];
  return `#${lin
    .map((c) => {
      const v = c <= 0.0031308 ? 12.92 * c : 1.055 * Math.max(0, c) ** (1 / 2.4) - 0.055;
      return Math.max(0, Math.min(255, Math.round(v * 255)))
        .toString(16)
        .padStart(2, '0');
    })
    .join('')}`;
}
