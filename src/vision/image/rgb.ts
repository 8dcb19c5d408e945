/**
 * Decoded images: the {@link RgbFrame} every vision module works on, the one decoder from encoded images
 * (JPEG, PNG, ...) to it, and the JPEG encoder of sampled frames. All through sharp (libvips).
 */
import sharp from 'sharp';
import { invalidInput } from '../../errors';

/** An uncompressed frame: `rgb` holds `width * height * 3` bytes, row-major, interleaved R, G, B. */
export interface RgbFrame {
  rgb: Buffer;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}

/**
 * Decodes an image file or encoded buffer (JPEG, PNG, ...) into an {@link RgbFrame}: EXIF orientation
 * applied (`rotate()`), alpha dropped, greyscale expanded to sRGB, 8 bits per channel. The pipeline's own
 * JPEGs (sRGB, 3 channels, no EXIF: {@link encodeJpeg}) decode to exactly libjpeg-turbo's pixels, so a
 * frame read back from GCS and the cached decode of the uploaded bytes are the same.
 * @throws Error when sharp cannot decode `input`, or when the result does not have 3 channels
 */
export async function decodeImage(input: string | Buffer): Promise<RgbFrame> {
  const { data, info } = await sharp(input).rotate().toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
  return { rgb: data, width: info.width, height: info.height };
}

/**
 * Encodes an RGB24 frame as a baseline JPEG with sharp (libjpeg-turbo, 4:2:0 chroma, no metadata).
 * The bytes depend only on the pixels and `quality`, so the same input always gives the same file.
 *
 * @param frame `width × height` RGB24 pixels (`rgb.length === width * height * 3`).
 * @param quality JPEG quality, integer 1–100.
 * @throws invalidInput on a bad quality or a buffer of the wrong size.
 */
export async function encodeJpeg(frame: RgbFrame, quality: number): Promise<Buffer> {
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw invalidInput('quality', `must be an integer 1-100, got ${quality}`);
  if (frame.rgb.length !== frame.width * frame.height * 3) {
    throw invalidInput('frame', `rgb has ${frame.rgb.length} bytes, expected ${frame.width}x${frame.height}x3`);
  }
  return sharp(frame.rgb, { raw: { width: frame.width, height: frame.height, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: '4:2:0', mozjpeg: false })
    .toBuffer();
}
