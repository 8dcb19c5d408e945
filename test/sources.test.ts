/**
 * Unit tests of the source parser (src/sources.ts), the address classifier and guarded DNS lookup
 * (src/net/address.ts), and the worker's authorisation rules (src/net/sourceAccess.ts) on a real
 * temporary folder tree. No stack needed (SKIP_TEST_STACK=1 is fine).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authoriseGcsSource, confineLocalSource, fetchHttpsSource, gcsFoldersFor } from '../src/net/sourceAccess';
import { uploadFileName } from '../src/cli/uploads';
import type { SourcePolicy } from '../src/config';
import { ErrorType, PipelineError } from '../src/errors';
import { addressRefusal, AddressRefusedError, checkHostAddresses, classifyAddress, guardedLookup, parseAllowance, type Resolver } from '../src/net/address';
import { parseSource, type GcsSource, type HttpsSource } from '../src/sources';
import { uploadObject } from '../src/storage/layout';

/** The error `fn` throws (or undefined). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** Asserts `fn` throws a non-retryable InvalidInput whose reason matches `reason`; returns it. */
function expectInvalid(fn: () => unknown, reason: RegExp): PipelineError {
  const err = thrown(fn);
  expect(err, 'expected an InvalidInput').toBeInstanceOf(PipelineError);
  const e = err as PipelineError;
  expect(e.type).toBe(ErrorType.InvalidInput);
  expect(e.nonRetryable).toBe(true);
  expect(e.reason).toMatch(reason);
  return e;
}

describe('parseSource: one parser, tagged result', () => {
  it.each([
    ['gs://dataprep-pipeline/acme/user/in/a b.mp4', { kind: 'gs', bucket: 'dataprep-pipeline', object: 'acme/user/in/a b.mp4' }],
    ['GS://media/x.mp4', { kind: 'gs', bucket: 'media', object: 'x.mp4' }],
    ['gS://media.example.com/x%y.mp4', { kind: 'gs', bucket: 'media.example.com', object: 'x%y.mp4' }],
    ['https://Example.ORG/v.mp4?sig=abc&x=1', { kind: 'https', url: 'https://example.org/v.mp4?sig=abc&x=1', host: 'example.org', hostKind: 'name', port: 443 }],
    ['HTTPS://example.org:8443/v.mp4', { kind: 'https', url: 'https://example.org:8443/v.mp4', host: 'example.org', hostKind: 'name', port: 8443 }],
    ['https://example.org:443', { kind: 'https', url: 'https://example.org/', host: 'example.org', hostKind: 'name', port: 443 }],
    ['https://93.184.215.14/v.mp4', { kind: 'https', url: 'https://93.184.215.14/v.mp4', host: '93.184.215.14', hostKind: 'ipv4', port: 443 }],
    ['https://[2606:4700:0:0::1]/v.mp4', { kind: 'https', url: 'https://[2606:4700::1]/v.mp4', host: '2606:4700::1', hostKind: 'ipv6', port: 443 }],
    ['https://[::FFFF:127.0.0.1]/v.mp4', { kind: 'https', url: 'https://[::ffff:7f00:1]/v.mp4', host: '::ffff:7f00:1', hostKind: 'ipv6', port: 443 }],
    ['https://xn--bcher-kva.example/v.mp4', { kind: 'https', url: 'https://xn--bcher-kva.example/v.mp4', host: 'xn--bcher-kva.example', hostKind: 'name', port: 443 }],
    ['/usr/share/doc/opencv-doc/examples/data/vtest.avi', { kind: 'local', path: '/usr/share/doc/opencv-doc/examples/data/vtest.avi' }],
    ['./clip:1.mp4', { kind: 'local', path: './clip:1.mp4' }],
    ['relative/../clip.mp4', { kind: 'local', path: 'relative/../clip.mp4' }],
  ])('%s', (source, expected) => {
    expect(parseSource(source)).toEqual(expected);
  });

  it('accepted https URLs name the same host for a WHATWG URL parser (what fetch uses)', () => {
    for (const source of ['HTTPS://Example.ORG/v.mp4', 'https://[::ffff:127.0.0.1]/x', 'https://93.184.215.14:8443/x?y#z', 'https://a-b.c.example/%2e%2e/x']) {
      const p = parseSource(source);
      if (p.kind !== 'https') throw new Error('not https');
      expect(new URL(p.url).hostname.replace(/^\[|\]$/g, '')).toBe(p.host);
      // The path may still be normalised by the URL parser (%2e%2e is a ".." segment there), never the host.
      if (!source.includes('%2e')) expect(new URL(p.url).href).toBe(p.url);
    }
  });

  it.each([
    // gs:// object names that other tools would read differently, or that walk out of a folder.
    ['gs://dataprep-pipeline/mallory/../alice/user/x.mp4', /empty, "\." or "\.\." segment/],
    ['gs://dataprep-pipeline/mallory/./x.mp4', /empty, "\." or "\.\." segment/],
    ['gs://dataprep-pipeline/../alice/x.mp4', /empty, "\." or "\.\." segment/],
    ['gs://dataprep-pipeline//alice/x.mp4', /empty, "\." or "\.\." segment/],
    ['gs://dataprep-pipeline/mallory//x.mp4', /empty, "\." or "\.\." segment/],
    ['gs://dataprep-pipeline/mallory/x.mp4/', /ends in "\/"/],
    ['gs://dataprep-pipeline/mallory\\..\\alice\\x.mp4', /backslash/],
    ['gs://dataprep-pipeline/mallory%2F..%2Falice/x.mp4', /percent-encoded/],
    ['gs://dataprep-pipeline/mallory/%2E%2E/alice/x.mp4', /percent-encoded/],
    ['gs://dataprep-pipeline/mallory/%2e%2e/alice/x.mp4', /percent-encoded/],
    ['gs://dataprep-pipeline/alice/x.mp4?generation=1', /"\?", "#"/],
    ['gs://dataprep-pipeline/alice/x.mp4#frag', /"\?", "#"/],
    ['gs://dataprep-pipeline/alice/*.mp4', /wildcard/],
    ['gs://dataprep-pipeline/mallory/\u202ex.mp4', /invisible formatting/],
    ['gs://dataprep-pipeline/mallory/\u200bx.mp4', /invisible formatting/],
    ['gs://dataprep-pipeline/mallory/x\u0085.mp4', /control characters/],
    ['gs://Dataprep-Pipeline/alice/x.mp4', /not a bucket name/],
    ['gs://dataprep-pipeline', /gs:\/\/bucket\/object/],
    ['gs:dataprep-pipeline/alice/x.mp4', /gs:\/\/bucket\/object/],
    [`gs://bkt/${'é'.repeat(513)}`, /longer than 1024 bytes/],
    ['gs://dataprep-pipeline/alice/x.mp4 ', /white space/],
    // https:// URLs whose host a URL parser reads as another (often local) address, or that are ambiguous.
    ['HTTPS://../../../../usr/share/doc/opencv-doc/examples/data/vtest.avi', /not a host name/],
    ['https://../etc/passwd', /not a host name/],
    ['https://127.1/x', /numeric address not written as four decimal numbers/],
    ['https://2130706433/x', /numeric address/],
    ['https://0x7f000001/x', /numeric address/],
    ['https://0x7f.0.0.1/x', /numeric address/],
    ['https://0177.0.0.1/x', /numeric address/],
    ['https://127.0.0.01/x', /numeric address/],
    ['https://%31%32%37.0.0.1/x', /not a host name/],
    ['https://ｅxample.org/x', /not a host name/],
    ['https://example.org./x', /not a host name/],
    ['https://[::1%25eth0]/x', /not an IPv6 address/],
    ['https://[::1/x', /unclosed/],
    ['https:example.org/x', /https:\/\/host\/path/],
    ['https:///example.org/x', /https:\/\/host\/path/],
    ['https://example.org\\@evil.example/x', /backslash/],
    ['https://example.org/a b.mp4', /white space/],
    ['https://example.org:0/x', /not a port/],
    ['https://example.org:65536/x', /not a port/],
    ['https://example.org:/x', /not a port/],
    ['https://example.org:0443/x', /not a port/],
    ['http://example.org/v.mp4', /unsupported scheme "http:"/],
    ['File:///etc/passwd', /unsupported scheme "file:"/],
    ['/videos/a\tb.mp4', /control characters/],
    [' /videos/a.mp4', /white space/],
  ])('rejects %j', (source, reason) => {
    const err = expectInvalid(() => parseSource(source), reason);
    expect(err.subject.startsWith('source ')).toBe(true);
  });

  it('never echoes credentials', () => {
    for (const source of ['https://user:secret@example.org/v.mp4', 'HTTPS://user:secret@example.org/a b', 'https://u:secret@example.org\\x']) {
      const err = expectInvalid(() => parseSource(source), /./);
      expect(err.message).not.toContain('secret');
    }
  });
});

describe('classifyAddress (ipaddr.js special ranges)', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.1', 'loopback'],
    ['2130706433', 'loopback'],
    ['0x7f000001', 'loopback'],
    ['0177.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['::ffff:192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['fd00::1', 'uniqueLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['64:ff9b::7f00:1', 'rfc6052'],
    ['2002:7f00:1::', '6to4'],
  ])('%s is %s, not public', (address, range) => {
    const c = classifyAddress(address);
    expect(c.range).toBe(range);
    expect(c.public).toBe(false);
  });
  it.each(['8.8.8.8', '93.184.215.14', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('%s is public', (address) => {
    expect(classifyAddress(address).public).toBe(true);
  });
  it('throws for something that is not an address', () => {
    expect(() => classifyAddress('example.org')).toThrow();
  });
});

describe('addressRefusal and HTTPS_SOURCE_ALLOW_PRIVATE', () => {
  const none = parseAllowance([]);
  it('refuses non-public addresses by default, naming the range', () => {
    expect(addressRefusal('localhost', '127.0.0.1', none)).toMatch(/^127\.0\.0\.1, a loopback address, not a public one \(HTTPS_SOURCE_ALLOW_PRIVATE can allow it\)$/);
    expect(addressRefusal('x', '::ffff:169.254.169.254', none)).toMatch(/169\.254\.169\.254, a linkLocal address/);
    expect(addressRefusal('x', '8.8.8.8', none)).toBeUndefined();
  });
  it('allows configured host names and ranges, nothing more', () => {
    const a = parseAllowance(['media.internal', '10.0.0.0/8', '127.0.0.1']);
    expect(addressRefusal('media.internal', '192.168.7.7', a)).toBeUndefined();
    expect(addressRefusal('other.internal', '10.9.9.9', a)).toBeUndefined();
    expect(addressRefusal('other.internal', '::ffff:10.9.9.9', a)).toBeUndefined();
    expect(addressRefusal('127.0.0.1', '127.0.0.1', a)).toBeUndefined();
    expect(addressRefusal('127.0.0.2', '127.0.0.2', a)).toMatch(/loopback/);
    expect(addressRefusal('other.internal', '192.168.7.7', a)).toMatch(/private/);
  });
  it('rejects malformed entries', () => {
    expect(() => parseAllowance(['10.0.0.0/40'])).toThrow(/not a CIDR range/);
    expect(() => parseAllowance(['bad_host!'])).toThrow(/neither a host name/);
  });
});

describe('guardedLookup: the connection uses only addresses checked when it is made', () => {
  /** A resolver answering `answers[i]` on its i-th call (the last one after that). */
  function fakeResolver(...answers: string[][]): Resolver & { calls: number } {
    const r = ((_host: string, _opts: unknown, cb: (err: NodeJS.ErrnoException | null, a: { address: string; family: number }[]) => void) => {
      const list = answers[Math.min(r.calls++, answers.length - 1)];
      queueMicrotask(() => cb(null, list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }))));
    }) as Resolver & { calls: number };
    r.calls = 0;
    return r;
  }
  /** Calls a lookup the way net.connect does; resolves with the callback's arguments. */
  function callLookup(lookup: ReturnType<typeof guardedLookup>, all: boolean): Promise<unknown[]> {
    return new Promise((resolve) => (lookup as unknown as (h: string, o: object, cb: (...a: unknown[]) => void) => void)('media.example', { all }, (...args) => resolve(args)));
  }

  it('answers both call forms with the checked public addresses', async () => {
    const lookup = guardedLookup(parseAllowance([]), fakeResolver(['93.184.215.14', '2606:4700::1']));
    expect(await callLookup(lookup, true)).toEqual([null, [{ address: '93.184.215.14', family: 4 }, { address: '2606:4700::1', family: 6 }]]);
    expect(await callLookup(lookup, false)).toEqual([null, '93.184.215.14', 4]);
  });
  it('fails when any answer is not public', async () => {
    const [err] = await callLookup(guardedLookup(parseAllowance([]), fakeResolver(['93.184.215.14', '10.0.0.5'])), true);
    expect(err).toBeInstanceOf(AddressRefusedError);
    expect((err as Error).message).toMatch(/media\.example resolves to 10\.0\.0\.5, a private address/);
  });
  it('DNS rebinding: a name that resolved to a public address at the check and to loopback at connection time is refused', async () => {
    const resolve = fakeResolver(['93.184.215.14'], ['127.0.0.1']);
    const allowance = parseAllowance([]);
    await expect(checkHostAddresses('media.example', allowance, resolve)).resolves.toHaveLength(1);
    const [err] = await callLookup(guardedLookup(allowance, resolve), false);
    expect(err).toBeInstanceOf(AddressRefusedError);
    expect((err as AddressRefusedError).reason).toMatch(/127\.0\.0\.1, a loopback address/);
  });
});

describe('fetchHttpsSource over a real TLS connection (loopback server, fake DNS answers)', () => {
  const tmp = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'sources-https-')));
  const hits: string[] = [];
  let server: https.Server;
  let port = 0;
  let cert = '';
  beforeAll(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=media.example', '-addext', 'subjectAltName=DNS:media.example', '-keyout', path.join(tmp, 'key.pem'), '-out', path.join(tmp, 'cert.pem')], { stdio: 'ignore' });
    cert = readFileSync(path.join(tmp, 'cert.pem'), 'utf8');
    server = https.createServer({ key: readFileSync(path.join(tmp, 'key.pem')), cert }, (req, res) => {
      hits.push(req.url ?? '');
      res.writeHead(200).end('video bytes');
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((ok) => server.close(ok));
    rmSync(tmp, { recursive: true, force: true });
  });
  /** A resolver answering `answers[i]` on its i-th call (the last one after that); counts calls. */
  function resolver(...answers: string[][]): Resolver & { calls: number } {
    const r = ((_h: string, _o: unknown, cb: (err: NodeJS.ErrnoException | null, a: { address: string; family: number }[]) => void) => {
      const list = answers[Math.min(r.calls++, answers.length - 1)];
      setImmediate(() => cb(null, list.map((address) => ({ address, family: 4 }))));
    }) as Resolver & { calls: number };
    r.calls = 0;
    return r;
  }
  const policy = (allow: string[]): SourcePolicy => ({ roots: [], dataDir: tmp, maxBytes: 1e6, maxFramePixels: 1e7, bucket: 'b', gcsPrefixes: [], httpsAllowPrivate: allow, httpsExtraCa: [cert] });

  it('an allowed name is connected to through the guarded lookup (checked before and at connection time)', async () => {
    const source = `https://media.example:${port}/v.mp4`;
    const resolve = resolver(['127.0.0.1']);
    await fetchHttpsSource(parseSource(source) as HttpsSource, source, path.join(tmp, 'ok'), policy(['media.example']), { resolve });
    expect(readFileSync(path.join(tmp, 'ok'), 'utf8')).toBe('video bytes');
    expect(resolve.calls).toBe(2);
    expect(hits).toEqual(['/v.mp4']);
  });
  it('DNS rebinding: public when checked, loopback when connecting: refused as InvalidInput, nothing requested', async () => {
    hits.length = 0;
    const source = `https://media.example:${port}/v.mp4`;
    const resolve = resolver(['93.184.215.14'], ['127.0.0.1']);
    const err = await fetchHttpsSource(parseSource(source) as HttpsSource, source, path.join(tmp, 'no'), policy([]), { resolve }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as PipelineError).type).toBe(ErrorType.InvalidInput);
    expect((err as PipelineError).message).toMatch(new RegExp(`^${source.replace(/[.]/g, '\\.')}: host media\\.example is refused: it resolves to 127\\.0\\.0\\.1, a loopback address`));
    expect(resolve.calls).toBe(2);
    expect(hits).toEqual([]);
  });
});

describe('authoriseGcsSource: tenants are sealed in the pipeline bucket', () => {
  const policy = (gcsPrefixes: string[] = []): SourcePolicy => ({ roots: [], dataDir: '/nonexistent', maxBytes: 1e9, maxFramePixels: 1e7, bucket: 'dataprep-pipeline', gcsPrefixes, httpsAllowPrivate: [] });
  const gs = (source: string) => parseSource(source) as GcsSource;
  const check = (source: string, tenant: string, p: SourcePolicy) => () => authoriseGcsSource(gs(source), source, tenant, p);

  it('allows the tenant its own folder and nothing else by default', () => {
    expect(check('gs://dataprep-pipeline/mallory/user/uploads/ab/x.mp4', 'mallory', policy())).not.toThrow();
    expectInvalid(check('gs://dataprep-pipeline/alice/user/process/train_pipeline/run_r/video_v/v.mp4', 'mallory', policy()), /outside tenant mallory's own folder gs:\/\/dataprep-pipeline\/mallory\//);
    expectInvalid(check('gs://dataprep-pipeline/mallory2/x.mp4', 'mallory', policy()), /outside tenant mallory's own folder/);
    expectInvalid(check('gs://dataprep-pipeline/Mallory/x.mp4', 'mallory', policy()), /outside tenant mallory's own folder/);
    expectInvalid(check('gs://other-bucket/mallory/x.mp4', 'mallory', policy()), /outside the gs:\/\/ folders tenant mallory may import from \(gs:\/\/dataprep-pipeline\/mallory\/; GCS_SOURCE_PREFIXES adds more\)/);
  });
  it('allows configured folders, with {tenantId} standing for the tenant', () => {
    const p = policy(['gs://footage/shared/', 'gs://media/{tenantId}/in/']);
    expect(gcsFoldersFor(p, 'mallory')).toEqual([
      { bucket: 'dataprep-pipeline', prefix: 'mallory/' },
      { bucket: 'footage', prefix: 'shared/' },
      { bucket: 'media', prefix: 'mallory/in/' },
    ]);
    expect(check('gs://footage/shared/match.mp4', 'mallory', p)).not.toThrow();
    expect(check('gs://media/mallory/in/a.mp4', 'mallory', p)).not.toThrow();
    expectInvalid(check('gs://media/alice/in/a.mp4', 'mallory', p), /outside the gs:\/\/ folders/);
    expectInvalid(check('gs://footage/sharedx/a.mp4', 'mallory', p), /outside the gs:\/\/ folders/);
  });
  it('the pipeline bucket rule holds even when a policy (built without loadConfig) lists the whole bucket', () => {
    expectInvalid(check('gs://dataprep-pipeline/alice/x.mp4', 'mallory', policy(['gs://dataprep-pipeline/'])), /tenants cannot read each other's objects/);
  });
});

describe('confineLocalSource: roots, and never the data folder', () => {
  const tmp = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'sources-unit-')));
  const dataDir = path.join(tmp, 'data');
  const root = path.join(tmp, 'root');
  for (const d of [path.join(dataDir, 'gcs', 'bucket', 'alice'), path.join(dataDir, 'sources'), root]) mkdirSync(d, { recursive: true });
  writeFileSync(path.join(dataDir, 'gcs', 'bucket', 'alice', 'v.mp4'), 'x');
  writeFileSync(path.join(dataDir, 'sources', 'drop.mp4'), 'x');
  writeFileSync(path.join(root, 'ok.mp4'), 'x');
  symlinkSync(path.join(dataDir, 'gcs', 'bucket', 'alice', 'v.mp4'), path.join(root, 'link.mp4'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const policy = (roots: string[]): SourcePolicy => ({ roots, dataDir, maxBytes: 1e9, maxFramePixels: 1e7, bucket: 'b', gcsPrefixes: [], httpsAllowPrivate: [] });
  const rejects = async (source: string, roots: string[], reason: RegExp) => {
    const err = await confineLocalSource(source, policy(roots)).catch((e: unknown) => e);
    expect(err, source).toBeInstanceOf(PipelineError);
    expect((err as PipelineError).type).toBe(ErrorType.InvalidInput);
    expect((err as PipelineError).subject).toBe(source);
    expect((err as PipelineError).reason).toMatch(reason);
  };

  it('allows files in a root and in {dataDir}/sources when it is a root', async () => {
    expect(await confineLocalSource(path.join(root, 'ok.mp4'), policy([root]))).toBe(path.join(root, 'ok.mp4'));
    expect(await confineLocalSource(path.join(dataDir, 'sources', 'drop.mp4'), policy(['/']))).toBe(path.join(dataDir, 'sources', 'drop.mp4'));
  });
  it('refuses the data folder whatever the roots say, also through ".." and symbolic links', async () => {
    await rejects(path.join(dataDir, 'gcs', 'bucket', 'alice', 'v.mp4'), ['/'], /inside the data folder of the stack \(DATAPREP_DATA_DIR\)/);
    await rejects(path.join(dataDir, 'gcs', 'bucket', 'alice', 'v.mp4'), [tmp], /inside the data folder/);
    await rejects(`${dataDir}/sources/../gcs/bucket/alice/v.mp4`, ['/'], /inside the data folder/);
    await rejects(path.join(root, 'link.mp4'), ['/'], /resolves \(through "\.\." or a symbolic link\) to a file inside the data folder/);
    await rejects(path.join(root, 'link.mp4'), [root], /resolves .* to a file outside the allowed source directories/);
    await rejects(path.join(dataDir, 'gcs', 'bucket', 'alice', 'v.mp4'), [path.join(dataDir, 'gcs')], /inside the data folder/);
  });
  it('refuses every local path when SOURCE_ROOTS is empty', async () => {
    await rejects(path.join(root, 'ok.mp4'), [], /no local sources are allowed \(SOURCE_ROOTS is empty\)/);
  });
});

describe('CLI upload names', () => {
  it('are plain segments in the tenant inbox', () => {
    expect(uploadFileName('soccer broadcast (720p).mp4')).toBe('soccer_broadcast__720p_.mp4');
    expect(uploadFileName('..%2F..x.mp4')).toBe('_2F..x.mp4');
    expect(uploadFileName('...')).toBe('video');
    expect(uploadObject('acme', 'a'.repeat(64), 'x.mp4')).toBe(`acme/user/uploads/${'a'.repeat(16)}/x.mp4`);
    expect(() => uploadObject('acme', 'a'.repeat(64), '../x.mp4')).toThrow(/plain file name/);
    expect(() => uploadObject('../acme', 'a'.repeat(64), 'x.mp4')).toThrow(/tenantId/);
  });
});
