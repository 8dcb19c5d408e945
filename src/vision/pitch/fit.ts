/**
 * Step 4's pitch model of a video (`fitPitchModel`): the picture inside black bars, the grass colour, and the
 * "is there a pitch in this video" decision. Per-frame masks are in `./mask`.
 *
 * "No pitch" rule (shape, not colour): a frame is pitch-like when its pitch region covers at least
 * `minPitchFraction` of the frame (default 0.15) AND at least `minFullWidthRows` (default 0.6) of the rows
 * it touches are "full width" (region covers >= 90 % of the row). A broadcast pitch fills the lower part of
 * the frame from edge to edge in every row below the far touchline (soccer clip, wide views: 0.94-0.98;
 * messi5.jpg, where the pitch is only the bottom quarter: 0.76), whereas a lawn beside a road (vtest.avi:
 * the lawn is a triangle in the lower left, full width only in the bottom third of its rows: 0.31) is not a
 * pitch, so the feet filter does not drop the walkers on the road. A video has a pitch (`fitPitchModel`)
 * when at least half of its sampled frames are pitch-like, so corner views (the soccer clip's view of a goal
 * has a diagonal far edge: 0.51), replays, close-ups and crowd shots do not flip the decision; once a video
 * has a pitch, every frame's mask is used as it is, whatever its own shape.
 * This is in the spirit of the "playfield ratio" used to classify broadcast shots (Ekin et al. 2003;
 * Halin et al., "Semantic shot classification in soccer videos via playfield ratio and object size", 2013);
 * the thresholds are our own, chosen on the test images (values above).
 *
 * Black bars: a phone or TV recording often carries the picture inside baked-in black bars (pillarbox left
 * and right, letterbox top and bottom). Step 4 finds the picture area of the video ({@link findPicture}: the
 * rows and columns that are not black, scanned in from each border as ffmpeg's `cropdetect` filter does,
 * united over the sampled frames so only bars present in every frame count), and every frame statistic
 * above is measured inside it: colour samples, region fraction, and "full width" (a row is full when the
 * region covers 90 % of the PICTURE's width; with 98 px bars beside a 1280 px picture no row of the frame
 * can be 90 % covered). The mask is computed as for the picture cropped out of the frame, `maskWidth`
 * pixels across the picture; the bars are never pitch.
 *
 * Grass, not any floor: the pitch colour must look like grass. The hue peak must be a true peak inside the
 * search range (`./colour`), and the pixels of the fitted window must have a median saturation of at least
 * `minGrassSaturation` (default 0.4). Measured medians: grass 0.88 (soccer broadcast clip), 0.64
 * (messi5.jpg), 0.68 (vtest.avi lawn); beige sports floors 0.29-0.30 (the floorball stand-ins of the tests,
 * test/helpers/floorball.ts: planks of hue 40-56 or 56-72 degrees, saturation 0.26-0.34; with yellow-green
 * bibs at 68 degrees the window grown from the hue peak takes in the floor, which then fills every frame
 * edge to edge and passes the shape rule). Without this rule such a floor is a "pitch", and keying its
 * colour window out of crops blacks out the yellow-green bibs. Limitation: a floor painted in a grass-like
 * green (some sports halls) cannot be told from grass by colour and shape; it is taken for a pitch.
 */
import { decodeImage, type RgbFrame } from '../image/rgb';
import { dominantHue, fitGrassColour, sampleFramesHsv, smoothedHueHistogram, type GrassParams } from './colour';
import { computePitchMask } from './mask';
import { pitchParamsOf, type PitchModel, type PitchParams, type PitchShape, type PitchStats } from './model';
import { findPicture, isWholeFrame } from './picture';

const round3 = (x: number) => Math.round(x * 1000) / 1000;

const median = (xs: number[]) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};


/**
 * Step 4: finds the picture area inside black bars ({@link findPicture}), fits the pitch colour
 * (`fitGrassColour` in `./colour`) to the sampled frames' picture, computes each frame's pitch mask with
 * it, and decides whether the video has a pitch (`pitchFound`) by the rules of the module comment: a grass
 * hue peak, a grass-like saturation, and the shape rule (`greenFraction` is still the share of picture
 * pixels in the colour window).
 *
 * @param images sampled frames, encoded (JPEG/PNG) or decoded ({@link RgbFrame}), at least one; 8-16 evenly
 *   spaced frames are plenty. Give the same form every time for reproducible models: a JPEG may be scaled
 *   while decoding, which differs in the last bits from scaling its decoded pixels.
 * @param params colour search range and floors ({@link GrassParams}; its `minPitchFraction` is the minimum
 *   pitch-REGION fraction here) and optional {@link PitchParams} overrides
 * @returns a {@link PitchModel} with its evidence: the colour window plus `pitch` (per-video evidence, picture area and
 *   thresholds, and a one-sentence reason)
 * @throws Error when `images` is empty or an image cannot be decoded
 */
export async function fitPitchModel(images: (Buffer | RgbFrame)[], params: GrassParams & Partial<PitchParams>): Promise<PitchModel & { pitch: PitchStats }> {
  if (images.length === 0) throw new Error('fitPitchModel: no frames');
  const p = pitchParamsOf(params);
  const decoded: RgbFrame[] = [];
  for (const img of images) decoded.push(Buffer.isBuffer(img) ? await decodeImage(img) : img);
  const picture = findPicture(decoded);
  const bars = !isWholeFrame(picture);
  const samples = await sampleFramesHsv(images, params, bars ? picture.box : undefined);
  const colour = fitGrassColour(samples, params);
  const found = colour.hue.median > 0; // 0 = no hue peak in the search range (see fitGrassColour)
  const shapes: PitchShape[] = [];
  if (found) {
    for (const img of images) shapes.push(await computePitchMask(img, colour, p, picture));
  }
  const framesPitchLike = shapes.filter((s) => s.pitchLike).length;
  const medianFraction = round3(median(shapes.map((s) => s.fraction)));
  const medianFullWidthRows = round3(median(shapes.map((s) => s.fullWidthRows)));
  const grassLike = found && colour.sat.median >= p.minGrassSaturation;
  const shaped = shapes.length > 0 && framesPitchLike >= p.minPitchFrames * images.length;
  const pitchFound = grassLike && shaped;
  const where = bars ? ` (inside black bars: picture [${picture.box.join(', ')}] of ${picture.frameWidth}x${picture.frameHeight})` : '';
  const shapeReason = `${framesPitchLike} of ${images.length} sampled frames are pitch-like${where} (largest grass region >= ${p.minPitchFraction} of the picture and >= ${p.minFullWidthRows} of its rows >= ${p.fullRowCoverage} full)`;
  let reason: string;
  if (!found) {
    const dominant = dominantHue(smoothedHueHistogram(samples));
    reason =
      dominant < 0
        ? `no pixel with saturation >= ${params.satMin} and value >= ${params.valMin}`
        : `no hue peak in [${params.hueMin}, ${params.hueMax}] deg: the dominant colour's hue is ${dominant} deg, not green`;
  } else if (!grassLike) {
    reason = `the dominant green (hue peak ${colour.hue.median} deg) has median saturation ${colour.sat.median} < ${p.minGrassSaturation}: too pale for grass (a beige, wooden or painted floor); ${shapeReason}`;
  } else {
    reason = `${shapeReason}; ${pitchFound ? '>=' : '<'} ${p.minPitchFrames} of the frames needed`;
  }
  return {
    ...colour,
    pitchFound,
    pitch: { rule: 'largest-region-full-width-rows-v2', framesSampled: images.length, framesPitchLike, medianFraction, medianFullWidthRows, params: p, picture, reason },
  };
}
