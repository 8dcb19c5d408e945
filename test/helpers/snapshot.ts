/**
 * Byte-level snapshots of a run's outputs, for tests that compare two runs of one run GUID (cache on and off,
 * one worker and two, a killed worker) object by object.
 */
import { createHash } from 'node:crypto';
import type { ObjectStore } from '../../src/storage/gcs';
import { RunLayout } from '../../src/storage/layout';

/**
 * sha256 of every object of one video's folder (`video_{videoGuid}/`), by name relative to it. JSON, CSV and
 * HTML are hashed with `tenantId` replaced by `TENANT`: the only bytes that differ by design between two runs
 * of one run GUID under different tenants.
 */
export async function videoSnapshot(store: ObjectStore, tenantId: string, runGuid: string, videoGuid: string): Promise<Record<string, string>> {
  const prefix = new RunLayout(tenantId, runGuid).video(videoGuid).prefix;
  const out: Record<string, string> = {};
  for (const o of await store.list(prefix)) {
    let data = await store.get(o.name);
    if (/\.(json|csv|html)$/.test(o.name)) data = Buffer.from(data.toString('utf8').replaceAll(tenantId, 'TENANT'), 'utf8');
    out[o.name.slice(prefix.length)] = createHash('sha256').update(data).digest('hex');
  }
  return out;
}
