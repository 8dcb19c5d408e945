/**
 * Tenant isolation of video sources: the real `trainPipeline` workflow and real activities (workers in this
 * process), the test stack's Temporal dev server and GCS emulator, and real HTTPS servers on loopback.
 *
 * Tenant `mallory…` starts runs directly through the Temporal client (as any caller could, without the CLI)
 * whose source points at another tenant's stored video (`gs://` in every spelling, the emulator's files on
 * disk, other folders of the stack) or at a non-public address (`https://` to loopback, the metadata
 * address, numeric forms, a redirect from an allowed host to a private one). Every run must fail fast with a
 * non-retryable InvalidInput naming the source, with the import tried once at most, nothing written under the
 * victim's folder and nothing under mallory's run but its run record and step records. Then the allowed
 * cases (own folder, a configured bucket, a file in a source root, an allowed https host) must still complete.
 *
 * Workers use the stack's own data folder (`DATAPREP_DATA_DIR` of the test stack), as a deployment does, so
 * the emulator's files are in the folder the policy protects.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, promises as fsp, readFileSync, realpathSync, symlinkSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../src/activities';
import { loadConfig, sourcePolicyOf, type SourcePolicy } from '../src/config';
import { createObjectStore } from '../src/storage/gcs';
import { createDeps, splitActivities } from '../src/workers/worker';
import { runWorkflowId, videoWorkflowId } from '../src/workflows/ids';
import { RUN_GUID, TENANT_ID } from '../src/workflows/messages';
import { STEP_NAMES } from '../src/workflows/steps';
import type { RunSummary } from '../src/workflows/types';
import { testClient, withWorkers } from './helpers/temporal';

const VTEST = '/usr/share/doc/opencv-doc/examples/data/vtest.avi';
const cfg = loadConfig();
const store = createObjectStore({ bucket: cfg.bucket, emulatorHost: cfg.storageEmulatorHost });
/** A second bucket that a deployment opens to every tenant (`GCS_SOURCE_PREFIXES`). */
const FOOTAGE_BUCKET = 'iso-footage';
const footage = createObjectStore({ bucket: FOOTAGE_BUCKET, emulatorHost: cfg.storageEmulatorHost });

const rand = Math.random().toString(36).slice(2, 8);
const victim = `alice${rand}`;
const attacker = `mallory${rand}`;
/** A tenant whose id begins with the attacker's (a string-prefix check would let mallory in). */
const lookalike = `${attacker}2`;
/** Tenant of the allowed runs. */
const good = `good${rand}`;
const victimVideo = `${victim}/user/process/train_pipeline/run_r1/video_v1/v1.mp4`;
const lookalikeVideo = `${lookalike}/user/uploads/0123456789abcdef/clip.mp4`;
/** The victim's video as fake-gcs-server keeps it on disk (filesystem backend). */
const emulatorFile = path.join(cfg.dataDir, 'gcs', cfg.bucket, victimVideo);

const tmp = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'isolation-')));
/** A source root of the "root" policy; holds a symlink to the emulator's file of the victim's video. */
const root = path.join(tmp, 'root');
const clip = path.join(tmp, 'clip.mp4');
/** A file in the default drop folder `{DATAPREP_DATA_DIR}/sources`. */
const dropFile = path.join(cfg.dataDir, 'sources', `isolation-${rand}.mp4`);

/** Options that keep the allowed runs short. */
const options = { frameStride: 2, maxFrames: 2 };
let client: Client;
let deps: ReturnType<typeof createDeps>;
let victimBefore: string[];

/** A loopback HTTPS server that serves `clip` and redirects; counts the requests it gets. */
interface Server {
  url: string;
  port: number;
  hits: string[];
  close(): Promise<void>;
}
let tls: { key: string; cert: string };
let main: Server;
/** A server on 127.0.0.2 that a redirect names: it must never be reached. */
let hidden: Server;

async function serve(host: string, routes: (port: number) => Record<string, { status: number; location?: string }>): Promise<Server> {
  const hits: string[] = [];
  let port = 0;
  const server = https.createServer(tls, (req, res) => {
    hits.push(req.url ?? '');
    const r = routes(port)[req.url ?? ''];
    if (!r) return res.writeHead(404).end();
    if (r.location) return res.writeHead(r.status, { location: r.location }).end();
    res.writeHead(200, { 'content-type': 'video/mp4' }).end(readFileSync(clip));
  });
  await new Promise<void>((ok) => server.listen(0, host, ok));
  port = (server.address() as AddressInfo).port;
  return { url: `https://${host}:${port}`, port, hits, close: () => new Promise((ok) => server.close(() => ok())) };
}

/** Names and MD5s of every object under `prefix`. */
async function snapshot(prefix: string): Promise<string[]> {
  return (await store.list(prefix)).map((o) => `${o.name} ${o.md5}`);
}

beforeAll(async () => {
  mkdirSync(root);
  execFileSync('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', VTEST, '-frames:v', '4', '-vf', 'scale=320:240', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', clip]);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2', '-keyout', path.join(tmp, 'key.pem'), '-out', path.join(tmp, 'cert.pem')], { stdio: 'ignore' });
  tls = { key: readFileSync(path.join(tmp, 'key.pem'), 'utf8'), cert: readFileSync(path.join(tmp, 'cert.pem'), 'utf8') };
  hidden = await serve('127.0.0.2', () => ({ '/clip.mp4': { status: 200 } }));
  main = await serve('127.0.0.1', (port) => ({
    '/clip.mp4': { status: 200 },
    '/to-clip': { status: 302, location: '/clip.mp4' },
    '/to-private': { status: 302, location: `${hidden.url}/clip.mp4` },
    '/to-metadata': { status: 307, location: 'https://169.254.169.254/latest/meta-data/' },
    '/to-http': { status: 301, location: `http://127.0.0.1:${port}/clip.mp4` },
    '/loop': { status: 302, location: '/loop' },
  }));

  await store.putFile(victimVideo, clip);
  await store.putFile(lookalikeVideo, clip);
  await store.putFile(`${good}/user/uploads/0123456789abcdef/clip.mp4`, clip);
  await footage.ensureBucket();
  await footage.putFile(`shared/${rand}/clip.mp4`, clip);
  await fsp.mkdir(path.dirname(dropFile), { recursive: true });
  await fsp.copyFile(clip, dropFile);
  // The attack on disk needs the emulator to keep objects as plain files there.
  expect(readFileSync(emulatorFile).equals(readFileSync(clip))).toBe(true);
  symlinkSync(emulatorFile, path.join(root, 'victim.mp4'));
  symlinkSync(cfg.dataDir, path.join(root, 'stack'));
  victimBefore = [...(await snapshot(`${victim}/`)), ...(await snapshot(`${lookalike}/`))];

  deps = createDeps({ ...cfg });
  client = await testClient();
}, 120_000);

afterAll(async () => {
  await client?.connection.close();
  await deps?.release();
  await main?.close();
  await hidden?.close();
  for (const t of [victim, attacker, lookalike, good]) await store.deletePrefix(`${t}/`);
  await footage.deletePrefix(`shared/${rand}/`);
  await fsp.rm(dropFile, { force: true });
  await fsp.rm(tmp, { recursive: true, force: true });
});

/** Activities over the stack's deps with `policy` merged over the configured source policy. */
function activities(policy: Partial<SourcePolicy> = {}) {
  return splitActivities(createActivities({ ...deps, sourcePolicy: { ...sourcePolicyOf(cfg), ...policy } }) as Record<string, unknown>);
}

let seq = 0;
/** Starts `trainPipeline` for `tenantId` on `source` straight through the Temporal client; returns the run's outcome. */
async function run(taskQueue: string, tenantId: string, source: string): Promise<{ runGuid: string; workflowId: string; result: RunSummary | unknown }> {
  const runGuid = `iso-${rand}-${++seq}`;
  const workflowId = runWorkflowId(tenantId, runGuid);
  const handle = await client.workflow.start('trainPipeline', {
    taskQueue,
    workflowId,
    args: [{ tenantId, runGuid, videos: [{ source, videoGuid: 'v1' }], options }],
    typedSearchAttributes: [
      { key: TENANT_ID, value: tenantId },
      { key: RUN_GUID, value: runGuid },
    ],
  });
  const result = await handle.result().catch((e: unknown) => e);
  return { runGuid, workflowId, result };
}

/**
 * Runs mallory's attack with `source` and checks the refusal: InvalidInput, non-retryable, the message names
 * the source and matches `reason`, `importVideo` (if it ran at all) ran once and nothing after it, and
 * mallory's run holds only its run record and step records.
 */
async function refused(taskQueue: string, source: string, reason: RegExp): Promise<void> {
  const { runGuid, workflowId, result } = await run(taskQueue, attacker, source);
  expect(result, `${source} was not refused`).toBeInstanceOf(WorkflowFailedError);
  const failure = (result as WorkflowFailedError).cause as ApplicationFailure;
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect(failure.type, failure.message).toBe('InvalidInput');
  expect(failure.nonRetryable).toBe(true);
  // Sources with control or invisible characters are named JSON-quoted, so those characters stay visible.
  expect(failure.message.includes(`${source}: `) || failure.message.includes(`${JSON.stringify(source)}: `), failure.message).toBe(true);
  expect(failure.message).toMatch(reason);
  const history = await client.workflow.getHandle(videoWorkflowId(workflowId, 'v1')).fetchHistory().catch(() => undefined);
  const started = (history?.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
  expect(started.every((e) => e.activityTaskStartedEventAttributes!.attempt === 1), 'importVideo was retried').toBe(true);
  const scheduled = (history?.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
  expect(scheduled.filter((n) => (STEP_NAMES as readonly string[]).includes(n!) && n !== 'importVideo'), 'a step after importVideo ran').toEqual([]);
  expect(scheduled.filter((n) => n === 'importVideo').length).toBeLessThanOrEqual(1);
  const prefix = `${attacker}/user/process/train_pipeline/run_${runGuid}/`;
  const names = (await store.list(prefix)).map((o) => o.name.slice(prefix.length));
  expect(names).toContain('.pipeline_info.json');
  expect(names.filter((n) => n !== '.pipeline_info.json' && !n.startsWith('intermediate/step'))).toEqual([]);
}

describe('a tenant cannot import another tenant\'s objects through gs://', () => {
  const victimUrl = `gs://${cfg.bucket}/${victimVideo}`;
  const cases: [string, string, RegExp][] = [
    ['the other tenant\'s run video', victimUrl, /outside tenant mallory\w+'s own folder .*tenants cannot read each other's objects/],
    ['scheme in capitals', `GS://${cfg.bucket}/${victimVideo}`, /outside tenant mallory\w+'s own folder/],
    ['scheme in mixed case', `Gs://${cfg.bucket}/${victimVideo}`, /outside tenant mallory\w+'s own folder/],
    ['a tenant id that begins with mallory\'s', `gs://${cfg.bucket}/${lookalikeVideo}`, /outside tenant mallory\w+'s own folder/],
    ['".." out of the own folder', `gs://${cfg.bucket}/${attacker}/../${victimVideo}`, /"\.\." segment/],
    ['"." segment', `gs://${cfg.bucket}/${attacker}/./../${victimVideo}`, /"\.\." segment/],
    ['percent-encoded "/"', `gs://${cfg.bucket}/${attacker}%2F..%2F${victimVideo}`, /percent-encoded/],
    ['percent-encoded ".."', `gs://${cfg.bucket}/${attacker}/%2E%2E/${victimVideo}`, /percent-encoded/],
    ['lowercase percent-encoding', `gs://${cfg.bucket}/${attacker}/%2e%2e/${victimVideo}`, /percent-encoded/],
    ['a double slash', `gs://${cfg.bucket}//${victimVideo}`, /empty/],
    ['a double slash after the own folder', `gs://${cfg.bucket}/${attacker}//../${victimVideo}`, /empty/],
    ['a backslash', `gs://${cfg.bucket}/${attacker}\\..\\${victimVideo}`, /backslash/],
    ['a trailing slash', `${victimUrl}/`, /ends in "\/"/],
    ['a trailing "?"', `${victimUrl}?alt=media`, /"\?", "#"/],
    ['a trailing "#"', `${victimUrl}#frag`, /"\?", "#"/],
    ['a trailing space', `${victimUrl} `, /white space/],
    ['a zero-width space', `gs://${cfg.bucket}/${attacker}\u200b/../${victimVideo}`, /invisible formatting/],
    ['a bucket name in capitals', `gs://${cfg.bucket.toUpperCase()}/${victimVideo}`, /not a bucket name/],
    ['another bucket not configured', `gs://${FOOTAGE_BUCKET}/shared/${rand}/clip.mp4`, /outside the gs:\/\/ folders tenant mallory\w+ may import from/],
  ];
  it('every spelling fails fast with InvalidInput naming the source', async () => {
    const { cpu, gpu } = activities();
    await withWorkers(cpu, async (q) => {
      for (const [label, source, reason] of cases) {
        await refused(q, source, reason).catch((err: Error) => {
          throw new Error(`${label} (${source}): ${err.message}`);
        });
      }
    }, gpu);
  }, 300_000);
});

describe('a tenant cannot read the stack\'s own files through local paths', () => {
  const data = cfg.dataDir;
  it('default SOURCE_ROOTS: the emulator\'s files (directly, through "..", through a symlink) are refused', async () => {
    const { cpu, gpu } = activities();
    await withWorkers(cpu, async (q) => {
      await refused(q, emulatorFile, /outside the allowed source directories \(SOURCE_ROOTS\)/);
      await refused(q, path.relative(process.cwd(), emulatorFile), /outside the allowed source directories/);
      await refused(q, `${data}/sources/../gcs/${cfg.bucket}/${victimVideo}`, /outside the allowed source directories/);
      await refused(q, `${data}/sources/./../gcs/${cfg.bucket}/${victimVideo}`, /outside the allowed source directories/);
    }, gpu);
  }, 300_000);

  it('even with SOURCE_ROOTS=/ (no confinement), nothing under DATAPREP_DATA_DIR but sources/ is readable', async () => {
    const { cpu, gpu } = activities({ roots: ['/'] });
    await withWorkers(cpu, async (q) => {
      await refused(q, emulatorFile, /inside the data folder of the stack \(DATAPREP_DATA_DIR\)/);
      await refused(q, `${data}/sources/../gcs/${cfg.bucket}/${victimVideo}`, /inside the data folder/);
      await refused(q, path.join(root, 'victim.mp4'), /resolves \(through "\.\." or a symbolic link\) to a file inside the data folder/);
      await refused(q, path.join(root, 'stack', 'gcs', cfg.bucket, victimVideo), /resolves .* to a file inside the data folder/);
      await refused(q, path.join(data, 'temporal', 'temporal.sqlite'), /inside the data folder/);
      await refused(q, path.join(data, 'logs', 'gcs.log'), /inside the data folder/);
      await refused(q, path.join(data, 'run', 'gcs.json'), /inside the data folder/);
      await refused(q, data, /inside the data folder/);
    }, gpu);
  }, 300_000);

  it('a symlink inside a configured root that leads to the emulator\'s files is refused', async () => {
    const { cpu, gpu } = activities({ roots: [root] });
    await withWorkers(cpu, async (q) => {
      await refused(q, path.join(root, 'victim.mp4'), /resolves \(through "\.\." or a symbolic link\) to a file outside the allowed source directories/);
      await refused(q, path.join(root, 'stack', 'gcs', cfg.bucket, victimVideo), /resolves .* to a file outside the allowed source directories/);
    }, gpu);
  }, 300_000);

  it('"HTTPS://" in capitals with a path is not read as a local file', async () => {
    const { cpu, gpu } = activities({ roots: ['/'] });
    await withWorkers(cpu, async (q) => {
      await refused(q, `HTTPS://../../../..${VTEST}`, /not a host name/);
      await refused(q, `HTTPS://../../../..${clip}`, /not a host name/);
      await refused(q, `Https://..${clip}`, /not a host name/);
    }, gpu);
  }, 300_000);
});

/** An HLS playlist whose one segment is `file` (an absolute path): ffmpeg's hls demuxer would read it. */
function hlsPlaylist(file: string): string {
  return `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:10.0,\n${file}\n#EXT-X-ENDLIST\n`;
}

describe('a tenant cannot make ffmpeg read other files through a playlist source', () => {
  const refusal = /is a hls file, not a video format the pipeline reads .*playlists and scripts that make ffmpeg open other files or URLs .* are refused/;
  it('an HLS playlist in the own gs:// folder (what the CLI uploads) naming the emulator\'s file of another tenant\'s video is refused', async () => {
    const object = `${attacker}/user/uploads/0123456789abcdef/evil.m3u8`;
    await store.put(object, hlsPlaylist(emulatorFile), { contentType: 'application/octet-stream' });
    const { cpu, gpu } = activities();
    await withWorkers(cpu, async (q) => {
      await refused(q, `gs://${cfg.bucket}/${object}`, refusal);
    }, gpu);
    await store.deletePrefix(`${attacker}/user/uploads/`);
  }, 300_000);

  it('an HLS playlist named .mp4 in a source root, naming a file outside the roots, is refused', async () => {
    const playlist = path.join(root, 'evil.mp4');
    await fsp.writeFile(playlist, hlsPlaylist(emulatorFile));
    const { cpu, gpu } = activities({ roots: [root] });
    await withWorkers(cpu, async (q) => {
      await refused(q, playlist, refusal);
    }, gpu);
  }, 300_000);
});

describe('https:// sources reach public addresses only, unless configured', () => {
  it('loopback, the metadata address, unique-local and numeric forms are refused before any request', async () => {
    const temporalPort = cfg.temporalAddress.split(':').pop();
    const gcsPort = new URL(cfg.storageEmulatorHost!).port;
    const { cpu, gpu } = activities();
    await withWorkers(cpu, async (q) => {
      await refused(q, `https://127.0.0.1:${temporalPort}/`, /host 127\.0\.0\.1 is refused: it is 127\.0\.0\.1, a loopback address, not a public one/);
      await refused(q, `https://localhost:${gcsPort}/storage/v1/b/${cfg.bucket}/o`, /host localhost is refused: it resolves to .* loopback address/);
      await refused(q, `${main.url}/clip.mp4`, /loopback address/);
      await refused(q, `https://[::1]:${main.port}/clip.mp4`, /host ::1 is refused: it is ::1, a loopback address/);
      await refused(q, `https://[::ffff:127.0.0.1]:${main.port}/clip.mp4`, /it is 127\.0\.0\.1, a loopback address/);
      await refused(q, 'https://169.254.169.254/latest/meta-data/', /it is 169\.254\.169\.254, a linkLocal address/);
      await refused(q, 'https://[fd00::1]/clip.mp4', /uniqueLocal/);
      await refused(q, 'https://10.0.0.1/clip.mp4', /private/);
      await refused(q, 'https://100.64.0.1/clip.mp4', /carrierGradeNat/);
      await refused(q, 'https://0.0.0.0/clip.mp4', /unspecified/);
      await refused(q, `https://127.1:${main.port}/clip.mp4`, /numeric address not written as four decimal numbers/);
      await refused(q, `https://2130706433:${main.port}/clip.mp4`, /numeric address/);
      await refused(q, `https://0x7f000001:${main.port}/clip.mp4`, /numeric address/);
      await refused(q, `https://0177.0.0.1:${main.port}/clip.mp4`, /numeric address/);
    }, gpu);
    expect(main.hits).toEqual([]);
  }, 300_000);

  it('with 127.0.0.1 allowed: a redirect to another private address, to the metadata address or to http:// is refused, and never requested', async () => {
    const { cpu, gpu } = activities({ httpsAllowPrivate: ['127.0.0.1'], httpsExtraCa: [tls.cert] });
    await withWorkers(cpu, async (q) => {
      await refused(q, `${main.url}/to-private`, /redirect 1 to https:\/\/127\.0\.0\.2:\d+\/clip\.mp4: host 127\.0\.0\.2 is refused: it is 127\.0\.0\.2, a loopback address/);
      await refused(q, `${main.url}/to-metadata`, /redirect 1 to https:\/\/169\.254\.169\.254\/latest\/meta-data\/: host 169\.254\.169\.254 is refused/);
      await refused(q, `${main.url}/to-http`, /was redirected to a URL that is not https:\/\//);
      await refused(q, `${main.url}/loop`, /was redirected more than 5 times/);
      await refused(q, `https://127.0.0.2:${hidden.port}/clip.mp4`, /it is 127\.0\.0\.2, a loopback address/);
    }, gpu);
    expect(hidden.hits).toEqual([]);
  }, 300_000);
});

describe('allowed sources still work', () => {
  it('the own gs:// folder, a configured bucket, a file in {DATAPREP_DATA_DIR}/sources, an allowed https host and its redirect', async () => {
    const { cpu, gpu } = activities({ gcsPrefixes: [`gs://${FOOTAGE_BUCKET}/shared/`], httpsAllowPrivate: ['127.0.0.1'], httpsExtraCa: [tls.cert] });
    const sources = [
      `gs://${cfg.bucket}/${good}/user/uploads/0123456789abcdef/clip.mp4`,
      `GS://${FOOTAGE_BUCKET}/shared/${rand}/clip.mp4`,
      dropFile,
      `${main.url}/clip.mp4`,
      `${main.url}/to-clip`,
    ];
    await withWorkers(cpu, async (q) => {
      for (const source of sources) {
        const { result } = await run(q, good, source);
        expect((result as RunSummary).status, `${source}: ${(result as Error).message}`).toBe('completed');
        expect((result as RunSummary).videos[0].counts.frames).toBe(2);
      }
    }, gpu);
  }, 600_000);

  it('nothing was written under the other tenants\' folders, and mallory has nothing but run records', async () => {
    expect([...(await snapshot(`${victim}/`)), ...(await snapshot(`${lookalike}/`))]).toEqual(victimBefore);
    const names = (await store.list(`${attacker}/`)).map((o) => o.name);
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) expect(n).toMatch(new RegExp(`^${attacker}/user/process/train_pipeline/run_iso-[a-z0-9-]+/(\\.pipeline_info\\.json|intermediate/step\\d_result\\.json)$`));
  });
});
