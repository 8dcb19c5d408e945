/** sha256 helpers (FIPS 180-4 via Node's crypto), lowercase hex. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/** sha256 of a buffer or UTF-8 string. */
export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** sha256 of a file, streamed. @throws the fs error when the file cannot be read. */
export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}
