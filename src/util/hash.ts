/** Hash helpers via Node's crypto: sha256 (FIPS 180-4, lowercase hex) and MD5 as GCS reports it. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** sha256 of a buffer or UTF-8 string. */
export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * MD5 of a buffer, base64: the form of a GCS object's `md5Hash`
 * (https://cloud.google.com/storage/docs/hashes-etags), to tell whether a stored object holds these bytes.
 */
export function md5Base64(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

/** sha256 of a file, streamed. @throws the fs error when the file cannot be read. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
