/**
 * Authorisation of video sources at the worker: a parsed source ({@link ParsedSource}, src/sources.ts) is
 * read only when the {@link SourcePolicy} lets this tenant read it.
 *
 * - `gs://`: the tenant's own folder of the pipeline bucket, `gs://{bucket}/{tenantId}/`, and the folders of
 *   `GCS_SOURCE_PREFIXES`; never another tenant's folder of the pipeline bucket, whatever the configuration.
 * - local paths: inside `SOURCE_ROOTS` as written and after `realpath`; never inside `DATAPREP_DATA_DIR`
 *   (emulator files, Temporal database, caches) except its `sources/` folder.
 * - `https://`: hosts whose addresses are public, unless `HTTPS_SOURCE_ALLOW_PRIVATE` allows them; every
 *   redirect hop is parsed and checked again, and the connection is made only to addresses checked at
 *   connection time (src/net/address.ts).
 *
 * Every refusal is a non-retryable `InvalidInput` whose subject is the source as the caller gave it.
 */
import { createWriteStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { rootCertificates } from 'node:tls';
import { Agent, fetch, type Response } from 'undici';
import { TENANT_PLACEHOLDER, type SourcePolicy } from '../config';
import { badMedia, ErrorType, invalidInput, PipelineError } from '../errors';
import { AddressRefusedError, addressRefusal, checkHostAddresses, guardedLookup, parseAllowance, type AddressAllowance, type Resolver } from './address';
import { parseSource, type GcsSource, type HttpsSource } from '../sources';

/** Redirects followed for one `https://` source (the Fetch standard allows 20; a video host needs few). */
export const MAX_REDIRECTS = 5;

/** Whether `file` (absolute, normalised) is `dir` itself or lies below it. */
export function isWithin(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** `realpath` of `p`, or `p` resolved when it cannot be resolved (missing). */
async function realOrResolved(p: string): Promise<string> {
  return realpath(p).catch(() => path.resolve(p));
}

/** The message part naming `bytes` against the `MAX_SOURCE_BYTES` limit. */
export function overLimit(bytes: number | string, policy: SourcePolicy): string {
  return `is ${bytes} bytes, over the limit of ${policy.maxBytes} bytes (MAX_SOURCE_BYTES)`;
}

/**
 * Whether `file` (absolute) lies in the protected data folder: inside `policy.dataDir` (as given, or with
 * `real` also its real path) and not inside its `sources/` folder.
 */
export async function inDataDir(file: string, policy: SourcePolicy, real: boolean): Promise<boolean> {
  const dirs = [path.resolve(policy.dataDir)];
  const drops = [path.join(dirs[0], 'sources')];
  if (real) {
    dirs.push(await realOrResolved(dirs[0]));
    drops.push(await realOrResolved(drops[0]));
  }
  return dirs.some((d) => isWithin(d, file)) && !drops.some((d) => isWithin(d, file));
}

/**
 * Confines a local source under `policy` and returns the real path to read (symlinks and `..` resolved).
 *
 * The path as written (made absolute against the working directory) must lie in a root and outside the data
 * folder before the file system is asked anything, so files elsewhere cannot even be probed for existence;
 * then its `realpath` must pass the same two checks, so a symlink cannot lead out.
 *
 * @throws PipelineError(InvalidInput) naming `source`: outside the roots or inside the data folder (as
 *   written, or once `..` and symlinks are resolved).
 * @throws PipelineError(BadMedia) naming `source`: missing, unreadable, or a symlink loop.
 */
export async function confineLocalSource(source: string, policy: SourcePolicy): Promise<string> {
  const written = path.resolve(source);
  const roots = [...new Set(policy.roots.map((r) => path.resolve(r)))];
  const realRoots = await Promise.all(roots.map(realOrResolved));
  const outside = 'outside the allowed source directories (SOURCE_ROOTS)';
  const stack = 'inside the data folder of the stack (DATAPREP_DATA_DIR), which is never a source';
  if (!roots.length) throw invalidInput(source, 'is a local path, and no local sources are allowed (SOURCE_ROOTS is empty)');
  if (![...roots, ...realRoots].some((r) => isWithin(r, written))) throw invalidInput(source, `is ${outside}`);
  if (await inDataDir(written, policy, false)) throw invalidInput(source, `is ${stack}`);
  let real: string;
  try {
    real = await realpath(written);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw badMedia(source, 'file not found', err);
    if (code === 'ELOOP') throw badMedia(source, 'symbolic link loop', err);
    throw badMedia(source, `cannot read file (${code ?? (err as Error).message})`, err);
  }
  // The real path is not echoed: it would tell a tenant about folders outside the roots.
  if (!realRoots.some((r) => isWithin(r, real))) throw invalidInput(source, `resolves (through ".." or a symbolic link) to a file ${outside}`);
  if (await inDataDir(real, policy, true)) throw invalidInput(source, `resolves (through ".." or a symbolic link) to a file ${stack}`);
  return real;
}

/**
 * {@link confineLocalSource}, then checks that the file is a regular file within `policy.maxBytes`.
 * @throws as {@link confineLocalSource}; PipelineError(BadMedia) for a directory or other non-file,
 *   PipelineError(InvalidInput) for a file over `policy.maxBytes`.
 */
export async function resolveLocalSource(source: string, policy: SourcePolicy): Promise<string> {
  const real = await confineLocalSource(source, policy);
  const st = await stat(real);
  if (!st.isFile()) throw badMedia(source, 'not a regular file');
  if (st.size > policy.maxBytes) throw invalidInput(source, overLimit(st.size, policy));
  return real;
}

/**
 * The `gs://` folders `tenantId` may import from: `{bucket: policy.bucket, prefix: "{tenantId}/"}` first,
 * then each `policy.gcsPrefixes` entry with `{tenantId}` replaced. Prefixes end in `/` (or are empty: a
 * whole bucket other than the pipeline's).
 */
export function gcsFoldersFor(policy: SourcePolicy, tenantId: string): { bucket: string; prefix: string }[] {
  const folders = [{ bucket: policy.bucket, prefix: `${tenantId}/` }];
  for (const entry of policy.gcsPrefixes) {
    const m = /^gs:\/\/([^/]+)\/(.*)$/.exec(entry);
    if (m) folders.push({ bucket: m[1], prefix: m[2].split(TENANT_PLACEHOLDER).join(tenantId) });
  }
  return folders;
}

/**
 * Checks that `tenantId` may read the object `gs` under `policy`: the object lies in one of
 * {@link gcsFoldersFor}, and, in the pipeline bucket, under `{tenantId}/` (checked again on its own, so no
 * configuration can open another tenant's folder).
 * @throws PipelineError(InvalidInput) naming `source` and the folders that are allowed.
 */
export function authoriseGcsSource(gs: GcsSource, source: string, tenantId: string, policy: SourcePolicy): void {
  const own = `${tenantId}/`;
  if (gs.bucket === policy.bucket && !gs.object.startsWith(own)) {
    throw invalidInput(source, `is in the pipeline bucket outside tenant ${tenantId}'s own folder gs://${policy.bucket}/${own}; tenants cannot read each other's objects`);
  }
  const folders = gcsFoldersFor(policy, tenantId);
  if (!folders.some((f) => f.bucket === gs.bucket && gs.object.startsWith(f.prefix))) {
    throw invalidInput(source, `is outside the gs:// folders tenant ${tenantId} may import from (${folders.map((f) => `gs://${f.bucket}/${f.prefix}`).join(', ')}; GCS_SOURCE_PREFIXES adds more)`);
  }
}

/** Options of {@link fetchHttpsSource}. */
export interface HttpsFetchOptions {
  /** Cancels the download. */
  signal?: AbortSignal;
  /** DNS resolver (default `dns.lookup`; tests pass fakes). */
  resolve?: Resolver;
}

/** Whether `err` or an error in its `cause` chain is an {@link AddressRefusedError}. */
function refusedIn(err: unknown): AddressRefusedError | undefined {
  for (let e = err, i = 0; e && i < 8; e = (e as { cause?: unknown }).cause, i++) if (e instanceof AddressRefusedError) return e;
  return undefined;
}

/**
 * Checks one hop's URL before any connection: an IP-literal host is classified directly; a DNS name is
 * resolved and every address classified (the connection itself checks again, see `guardedLookup`).
 * @throws PipelineError(InvalidInput) naming `source` when the address is refused; Transient when DNS fails.
 */
async function checkHop(hop: HttpsSource, source: string, allowance: AddressAllowance, resolve: Resolver | undefined, via: string): Promise<void> {
  if (hop.hostKind !== 'name') {
    const reason = addressRefusal(hop.host, hop.host, allowance);
    if (reason) throw invalidInput(source, `${via}host ${hop.host} is refused: it is ${reason}`);
    return;
  }
  try {
    await checkHostAddresses(hop.host, allowance, resolve);
  } catch (err) {
    const refused = refusedIn(err);
    if (refused) throw invalidInput(source, `${via}host ${hop.host} is refused: it resolves to ${refused.reason}`);
    throw new PipelineError(ErrorType.Transient, source, `${via}host ${hop.host} cannot be resolved: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Downloads an `https://` source to `dest` under `policy`: each hop (the URL, then every redirect target,
 * at most {@link MAX_REDIRECTS}) is parsed with the shared parser, must be `https://`, and must pass the
 * address check before it is requested; connections go through an undici `Agent` whose DNS lookup refuses
 * non-public addresses, so the checked address is the one connected to. `Content-Length` and the bytes
 * received are held to `policy.maxBytes`.
 *
 * @throws PipelineError(InvalidInput) naming `source`: a refused host or address (also after a redirect),
 *   a redirect to something that is not `https://`, too many redirects, or a body over `policy.maxBytes`.
 * @throws PipelineError(BadMedia) for an HTTP 4xx (but 408 and 429) or a 3xx that is not a redirect; PipelineError(Transient) for network
 *   failures, DNS failures, 408, 429 and 5xx.
 */
export async function fetchHttpsSource(parsed: HttpsSource, source: string, dest: string, policy: SourcePolicy, opts: HttpsFetchOptions = {}): Promise<void> {
  const allowance = parseAllowance(policy.httpsAllowPrivate);
  const agent = new Agent({
    connect: {
      lookup: guardedLookup(allowance, opts.resolve),
      ...(policy.httpsExtraCa?.length ? { ca: [...rootCertificates, ...policy.httpsExtraCa] } : {}),
    },
  });
  try {
    let hop = parsed;
    let via = '';
    let res: Response | undefined;
    for (let redirects = 0; ; redirects++) {
      // The URL must name the host the parser saw (a WHATWG parser must not read it differently).
      if (new URL(hop.url).hostname.replace(/^\[|\]$/g, '') !== hop.host) throw invalidInput(source, `${via}URL ${hop.url} is read with a different host by the URL parser`);
      await checkHop(hop, source, allowance, opts.resolve, via);
      try {
        res = await fetch(hop.url, { dispatcher: agent, redirect: 'manual', signal: opts.signal });
      } catch (err) {
        const refused = refusedIn(err);
        if (refused) throw invalidInput(source, `${via}host ${hop.host} is refused: it resolves to ${refused.reason}`);
        if (opts.signal?.aborted) throw err;
        throw new PipelineError(ErrorType.Transient, source, `download failed: ${(err as Error).message}${(err as Error).cause ? ` (${((err as Error).cause as Error).message})` : ''}`, { cause: err });
      }
      if (![301, 302, 303, 307, 308].includes(res.status)) break;
      const location = res.headers.get('location');
      await res.body?.cancel();
      if (!location) throw badMedia(source, `download failed: HTTP ${res.status} without a Location header`);
      if (redirects >= MAX_REDIRECTS) throw invalidInput(source, `was redirected more than ${MAX_REDIRECTS} times`);
      let next: string;
      try {
        next = new URL(location, hop.url).href;
      } catch {
        throw invalidInput(source, `was redirected to an invalid URL ${JSON.stringify(location.slice(0, 200))}`);
      }
      const shown = next.replace(/\/\/[^/?#]*@/, '//***@');
      if (!next.startsWith('https://')) throw invalidInput(source, `was redirected to a URL that is not https:// (${shown})`);
      let parsedNext;
      try {
        parsedNext = parseSource(next);
      } catch (err) {
        throw invalidInput(source, `was redirected to ${shown}, which is refused: ${err instanceof PipelineError ? err.reason : (err as Error).message}`);
      }
      if (parsedNext.kind !== 'https') throw invalidInput(source, `was redirected to a URL that is not https:// (${shown})`);
      hop = parsedNext;
      via = `redirect ${redirects + 1} to ${hop.url}: `;
    }
    if (!res.ok || !res.body) {
      const reason = `download failed: HTTP ${res.status}`;
      await res.body?.cancel();
      if (res.status >= 300 && res.status < 500 && res.status !== 408 && res.status !== 429) throw badMedia(source, reason);
      throw new PipelineError(ErrorType.Transient, source, reason);
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (declared > policy.maxBytes) {
      await res.body.cancel();
      throw invalidInput(source, overLimit(declared, policy));
    }
    let received = 0;
    await pipeline(
      Readable.fromWeb(res.body as never),
      async function* limitBytes(chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          received += chunk.length;
          if (received > policy.maxBytes) throw invalidInput(source, overLimit(`more than ${policy.maxBytes}`, policy));
          yield chunk;
        }
      },
      createWriteStream(dest),
    );
  } finally {
    await agent.close().catch(() => undefined);
  }
}
