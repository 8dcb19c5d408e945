/**
 * Local files named on the command line that the workers may not read (outside `SOURCE_ROOTS`, see
 * src/net/sourceAccess.ts) are uploaded by the CLI to the tenant's own inbox in the pipeline bucket,
 * `gs://{bucket}/{tenantId}/user/uploads/{sha256 prefix}/{name}` ({@link uploadObject}), and the run imports
 * that object instead: the default source policy lets a tenant import from its own folder. An upload is
 * skipped when the object is already stored with the same MD5.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { sourcePolicyOf, type Config } from '../config';
import { badMedia, ErrorType, invalidInput, PipelineError } from '../errors';
import { confineLocalSource, inDataDir, overLimit } from '../net/sourceAccess';
import { parseSource } from '../sources';
import { createObjectStore, type ObjectStore } from '../storage/gcs';
import { uploadObject } from '../storage/layout';
import type { VideoInput } from '../validation';

/** sha256 (hex) and MD5 (base64, the form of GCS `md5Hash`) of a file, in one read. */
async function hashes(file: string): Promise<{ sha256: string; md5: string }> {
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  for await (const chunk of createReadStream(file)) {
    sha.update(chunk as Buffer);
    md5.update(chunk as Buffer);
  }
  return { sha256: sha.digest('hex'), md5: md5.digest('base64') };
}

/** `name` made into a plain object-name segment: characters other than letters, digits, `.`, `_`, `-` become `_`. */
export function uploadFileName(name: string): string {
  const plain = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '').slice(-200);
  return plain === '' ? 'video' : plain;
}

/** What {@link stageLocalSources} did with one video. */
export interface StagedSource {
  /** The source as given (absolute for local paths). */
  given: string;
  /** The source the run imports. */
  source: string;
  /** `uploaded`: sent to the inbox now; `stored`: already there; `kept`: passed on unchanged. */
  action: 'uploaded' | 'stored' | 'kept';
}

/**
 * Replaces each local source (a video's `source`, and its corrected `tracks` when given) that the workers may
 * not read by an upload of the file to the tenant's inbox.
 *
 * A local path stays as it is when it lies in `cfg.sourceRoots` (as written and, when it exists here, after
 * `realpath`) and outside the data folder, or when this process cannot read it (missing here: a worker
 * elsewhere may have it inside its roots, or refuses it and says why). Other sources (`gs://`, `https://`)
 * stay as they are.
 *
 * @param store the store to upload to (default: one for `cfg`).
 * @returns the videos to start the run with, in order, and what was done with each path (a video's source,
 *   then its tracks when given).
 * @throws PipelineError(BadMedia) naming the path: a file to upload is not a regular file;
 *   PipelineError(InvalidInput): it is over `MAX_SOURCE_BYTES` or inside the stack's data folder
 *   (`DATAPREP_DATA_DIR`, emulator files included); storage errors as the store throws them.
 */
export async function stageLocalSources(cfg: Config, tenantId: string, videos: readonly VideoInput[], store?: ObjectStore): Promise<{ videos: VideoInput[]; staged: StagedSource[] }> {
  const policy = sourcePolicyOf(cfg);
  const staged: StagedSource[] = [];
  let uploader = store;
  const stage = async (given: string): Promise<StagedSource> => {
    const parsed = parseSource(given);
    if (parsed.kind !== 'local') return { given, source: given, action: 'kept' };
    try {
      await confineLocalSource(parsed.path, policy);
      return { given, source: given, action: 'kept' };
    } catch (err) {
      if (!(err instanceof PipelineError)) throw err;
      // Inside the roots but not readable here: the worker decides (and names the problem).
      if (err.type !== ErrorType.InvalidInput) return { given, source: given, action: 'kept' };
    }
    const file = path.resolve(parsed.path);
    const st = await stat(file).catch(() => undefined);
    // Not readable here (missing, no permission): nothing to upload; the workers refuse or report it.
    if (!st) return { given, source: given, action: 'kept' };
    if (!st.isFile()) throw badMedia(given, 'not a regular file');
    if ((await inDataDir(file, policy, true)) || (await inDataDir(await realpath(file), policy, true))) {
      throw invalidInput(given, 'is inside the data folder of the stack (DATAPREP_DATA_DIR), which is never a source');
    }
    if (st.size > policy.maxBytes) throw invalidInput(given, overLimit(st.size, policy));
    const { sha256, md5 } = await hashes(file);
    const object = uploadObject(tenantId, sha256, uploadFileName(path.basename(file)));
    uploader ??= createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost, projectId: cfg.gcsProjectId, concurrency: cfg.storageConcurrency, maxRetries: cfg.storageMaxRetries });
    const present = (await uploader.list(object)).some((o) => o.name === object && o.md5 === md5);
    if (!present) await uploader.putFile(object, file, { contentType: 'application/octet-stream' });
    return { given, source: `gs://${uploader.bucket}/${object}`, action: present ? 'stored' : 'uploaded' };
  };
  const out: VideoInput[] = [];
  for (const v of videos) {
    const source = await stage(v.source);
    staged.push(source);
    const tracks = v.tracks === undefined ? undefined : await stage(v.tracks);
    if (tracks) staged.push(tracks);
    out.push({ ...v, source: source.source, ...(tracks ? { tracks: tracks.source } : {}) });
  }
  return { videos: out, staged };
}
