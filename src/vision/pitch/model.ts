/**
 * The pitch model of a video (step 4, `initializeGrassMask`; option group `grassMask`): the colour window of
 * its grass ({@link PitchColour}), whether it has a pitch, and the evidence ({@link PitchStats}); the
 * parameters of the per-frame pitch mask and of the "no pitch" rule; the mask and picture-area types.
 * Types and defaults only: fitting in `./fit`, colour in `./colour`, masks in `./mask`, black bars in
 * `./picture`, the feet-on-pitch filter in `./feet`.
 */

/** Parameters of the per-frame pitch mask and of the "no pitch" rule (defaults in {@link PITCH_DEFAULTS}). */
export interface PitchParams {
  /**
   * Width of the mask across the picture (the frame without black bars), pixels; the mask covers the whole
   * frame at that scale (frames narrower than this are not enlarged).
   */
  maskWidth: number;
  /** Radius of the square closing element, mask pixels (2 = 5x5). */
  closeRadius: number;
  /** Fill each row of the region between its first and last pixel. */
  rowFill: boolean;
  /** Minimum pitch-region fraction of a frame (0-1) for the frame to be pitch-like. */
  minPitchFraction: number;
  /** A row is "full width" when the region covers at least this fraction of it (0-1). */
  fullRowCoverage: number;
  /** Minimum share of the region's rows that are full width (0-1) for the frame to be pitch-like. */
  minFullWidthRows: number;
  /** Minimum share of sampled frames that are pitch-like (0-1) for the video to have a pitch. */
  minPitchFrames: number;
  /** Minimum median saturation (0-1) of the pixels in the fitted colour window for it to be grass. */
  minGrassSaturation: number;
}

/** Defaults of {@link PitchParams} (reasons in the module comment). */
export const PITCH_DEFAULTS: Readonly<PitchParams> = Object.freeze({
  maskWidth: 320,
  closeRadius: 2,
  rowFill: true,
  minPitchFraction: 0.15,
  fullRowCoverage: 0.9,
  minFullWidthRows: 0.6,
  minPitchFrames: 0.5,
  minGrassSaturation: 0.4,
});

/**
 * The {@link PitchParams} part of a larger options object (e.g. `options.grassMask`): its fields that are
 * set, {@link PITCH_DEFAULTS} for the rest; other fields are ignored.
 */
export function pitchParamsOf(o: Partial<PitchParams>): PitchParams {
  const pick = <K extends keyof PitchParams>(k: K): PitchParams[K] => (o[k] !== undefined ? (o[k] as PitchParams[K]) : PITCH_DEFAULTS[k]);
  return {
    maskWidth: pick('maskWidth'),
    closeRadius: pick('closeRadius'),
    rowFill: pick('rowFill'),
    minPitchFraction: pick('minPitchFraction'),
    fullRowCoverage: pick('fullRowCoverage'),
    minFullWidthRows: pick('minFullWidthRows'),
    minPitchFrames: pick('minPitchFrames'),
    minGrassSaturation: pick('minGrassSaturation'),
  };
}
/**
 * The colour window of the pitch: an HSV window (hue in degrees 0-360, saturation and value 0-1) around the
 * dominant green, as `./colour` fits it. What a pitch mask needs.
 */
export interface PitchColour {
  hue: { min: number; max: number; median: number };
  sat: { min: number; median: number };
  val: { min: number; median: number };
}

/**
 * The pitch model learned in step 4: the colour window, the share of sampled picture pixels inside it
 * (`greenFraction`), whether the video has a pitch, and the evidence of the decision (`pitch`; absent in
 * colour-only models of `fitGrassColour` in `./colour` and in results of older runs). Travels in every step's
 * input from step 5 on (a few numbers) and is recorded in `step4_result.json` and `detections.json` as `grass`.
 */
export interface PitchModel extends PitchColour {
  pitchFound: boolean;
  greenFraction: number;
  /** Evidence of the per-frame pitch-shape rule behind `pitchFound` (`fitPitchModel` in `./fit`). */
  pitch?: PitchStats;
}

/** Shape statistics of one frame's pitch region. */
export interface PitchShape {
  /** Region pixels / mask pixels of the picture area (the whole mask when there are no bars), 0-1. */
  fraction: number;
  /** Share of the region's rows covered >= `fullRowCoverage` of the picture's width, 0-1 (0 for an empty region). */
  fullWidthRows: number;
  /** First mask row of the region (mask pixels), or -1 when empty. */
  topRow: number;
  /** Whether the frame passes the "pitch-like" rule of the module comment. */
  pitchLike: boolean;
}

/**
 * A per-frame pitch mask at reduced resolution.
 * Mask pixel (mx, my) covers frame pixels [mx / scale, (mx + 1) / scale) x [my / scale, (my + 1) / scale)
 * (the mask height is rounded, so the vertical mapping is off by < 1 frame pixel at most).
 */
export interface PitchMask extends PitchShape {
  /** Mask width and height, pixels. */
  width: number;
  height: number;
  /** Mask pixels per frame pixel (e.g. 0.25 for a 1280 px frame and a 320 px mask). */
  scale: number;
  /** Frame size the mask was computed for, pixels. */
  frameWidth: number;
  frameHeight: number;
  /** `width * height` bytes, row-major, 1 = pitch, 0 = not pitch. */
  data: Uint8Array;
  /** The picture area the mask was computed in, frame pixels (see {@link PictureBox}); absent: the whole frame. */
  picture?: PictureBox;
}

/** An area of a frame: [x1, y1, x2, y2] in pixels, x2 and y2 exclusive (columns x1 to x2 - 1). */
export type PictureBox = [number, number, number, number];

/** The picture inside a video's baked-in black bars ({@link findPicture}), for frames of the given size. */
export interface PictureArea {
  /** The picture, frame pixels; `[0, 0, frameWidth, frameHeight]` when there are no bars. */
  box: PictureBox;
  frameWidth: number;
  frameHeight: number;
}

/** Pitch-region statistics of the sampled frames, recorded with the model (step 4 result). */
export interface PitchStats {
  /**
   * Name of the decision rule, for `detections.json` readers: v2 measures inside the picture area (black
   * bars excluded) and requires a grass-like saturation; v1 (older runs) measured the whole frame.
   */
  rule: 'largest-region-full-width-rows-v1' | 'largest-region-full-width-rows-v2';
  framesSampled: number;
  framesPitchLike: number;
  /** Medians over the sampled frames. */
  medianFraction: number;
  medianFullWidthRows: number;
  /** The thresholds used. */
  params: PitchParams;
  /** The picture area of the video's frames (black bars excluded); absent in results of older runs. */
  picture?: PictureArea;
  /** One sentence saying why `pitchFound` is what it is. */
  reason: string;
}
