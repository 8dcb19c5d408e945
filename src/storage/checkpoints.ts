/**
 * Checkpoints of long steps (docs/ARCHITECTURE.md "Resuming a step"): partial results go to GCS as immutable
 * JSON chunks under `intermediate/checkpoints/{videoGuid}/{step}_{k}.json`, and the heartbeat details carry
 * the list of chunks with their size and sha256. Temporal hands a retried attempt the last heartbeat's
 * details (`previousHeartbeat` in src/activities/temporal.ts), so the attempt can verify the chunks and
 * continue instead of starting over. A chunk that is missing or differs from its record invalidates the
 * checkpoint (start over).
 */
import { z } from 'zod';
import type { ObjectStore } from './gcs';
import { sha256 } from '../util/hash';

/** One chunk as recorded in heartbeat details. */
export interface ChunkRef {
  object: string;
  sha256: string;
  /** Bytes of the chunk object. */
  size: number;
  /** Items in the chunk. */
  count: number;
}

/** Writes `items` as the chunk `object` and returns its record. */
export async function writeChunk(store: ObjectStore, object: string, items: unknown[]): Promise<ChunkRef> {
  const body = Buffer.from(JSON.stringify(items), 'utf8');
  await store.put(object, body, { contentType: 'application/json' });
  return { object, sha256: sha256(body), size: body.length, count: items.length };
}

/**
 * The items of `refs` in order, each chunk verified against its record (exists, size, sha256, item count)
 * and its items against `item` (the chunk format of the step that wrote them); undefined when there are no
 * chunks or any fails verification (the caller starts over).
 */
export async function readChunks<S extends z.ZodType>(store: ObjectStore, refs: readonly ChunkRef[] | undefined, item: S): Promise<z.output<S>[] | undefined> {
  if (!refs?.length) return undefined;
  const items: z.output<S>[] = [];
  for (const c of refs) {
    const body = await store.get(c.object).catch(() => undefined);
    if (!body || body.length !== c.size || sha256(body) !== c.sha256) return undefined;
    const part = z.array(item).safeParse(JSON.parse(body.toString('utf8')));
    if (!part.success || part.data.length !== c.count) return undefined;
    items.push(...part.data);
  }
  return items;
}
