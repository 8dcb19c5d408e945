/**
 * The one parser of video sources. Validation (`assertSource` in src/validation.ts, called by the workflow and
 * the CLI) and the importer (`importVideo`, src/activities/ingest.ts) both read a source through
 * {@link parseSource}, so what was validated is what is fetched: nothing downstream looks at string prefixes.
 *
 * A source is one of
 * - `gs://bucket/object` (scheme in any case): a Cloud Storage object,
 * - `https://host[:port]/path` (scheme in any case): a web resource,
 * - anything without a leading `name:` scheme: a local path of the worker.
 *
 * The parser refuses spellings that could be read two ways: `.`/`..`/empty segments, backslashes and
 * percent-encoded characters in object names (GCS does not decode them, other tools do); numeric host forms
 * that WHATWG URL parsing (https://url.spec.whatwg.org/#concept-ipv4-parser) turns into a different address
 * (`127.1`, `2130706433`, `0x7f000001`); credentials, white space and backslashes in URLs; control and
 * invisible formatting characters anywhere. Whether a well-formed source may be read by a tenant is decided by
 * the worker (src/net/sourceAccess.ts), not here.
 *
 * Workflow-safe: deterministic, no Node built-ins (ipaddr.js is plain JavaScript).
 */
import ipaddr from 'ipaddr.js';
import { invalidInput, type PipelineError } from './errors';

/** Longest accepted source string, characters (Linux `PATH_MAX` is 4096 bytes; URLs get the same bound). */
export const MAX_SOURCE_LENGTH = 4096;

/** Longest GCS object name, bytes of UTF-8 (https://cloud.google.com/storage/docs/objects#naming). */
export const MAX_GCS_OBJECT_NAME_BYTES = 1024;

/** A Cloud Storage object. `bucket` and `object` are exactly the names GCS is asked for. */
export interface GcsSource {
  kind: 'gs';
  bucket: string;
  /** Object name: `/`-separated segments, none empty, `.` or `..`. */
  object: string;
}

/** An `https://` resource. */
export interface HttpsSource {
  kind: 'https';
  /** The URL in canonical form: scheme and host in lowercase, default port dropped, path `/` when absent. */
  url: string;
  /** Host in lowercase: a DNS name, a dotted-quad IPv4 address, or an IPv6 address (RFC 5952, no brackets). */
  host: string;
  /** What `host` is. */
  hostKind: 'name' | 'ipv4' | 'ipv6';
  /** TCP port (443 unless given). */
  port: number;
}

/** A path on the worker's file system, as given (relative paths are resolved by the worker). */
export interface LocalSource {
  kind: 'local';
  path: string;
}

/** A parsed source; switch on `kind`. */
export type ParsedSource = GcsSource | HttpsSource | LocalSource;

/** Control (Cc), invisible formatting (Cf: zero-width, bidirectional overrides, BOM) and line/paragraph separators. */
const HIDDEN_CHARS = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
/** A URL scheme at the start of a string (RFC 3986 section 3.1). */
const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
/** GCS bucket names: lowercase letters, digits, `-`, `_`, `.`; start and end with a letter or digit. */
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
/** One DNS label (RFC 1123 section 2.1): letters, digits and `-`, not at either end, at most 63 characters. */
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** A label that makes a WHATWG URL parser read the whole host as an IPv4 number (decimal, or `0x` hex). */
const NUMERIC_LABEL = /^(?:0x[0-9a-f]*|[0-9]+)$/;

/** Hides `user:password@` of an https URL in messages. */
function masked(source: string): string {
  return source.replace(/^(https:\/\/)[^/?#\\]*@/i, '$1***@');
}

/** InvalidInput naming the source (credentials masked) and the reason. */
function bad(source: string, reason: string): PipelineError {
  return invalidInput(`source ${masked(source)}`, reason);
}

/** UTF-8 length of `s`, bytes (without TextEncoder, which workflow code may not have). */
function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/**
 * Whether `bucket` is a valid GCS bucket name (https://cloud.google.com/storage/docs/buckets#naming): 3-63
 * characters, or up to 222 with dot-separated parts of at most 63 each; lowercase letters, digits, `-`, `_`, `.`.
 */
export function isBucketName(bucket: string): boolean {
  if (!BUCKET.test(bucket)) return false;
  const parts = bucket.split('.');
  if (parts.some((p) => p === '' || p.length > 63)) return false;
  return parts.length > 1 || bucket.length <= 63;
}

/**
 * Why `name` is not an acceptable GCS object name or prefix (undefined when it is): an empty, `.` or `..`
 * segment, a backslash, a percent-encoded character, `?`, `#` or a wildcard character (`*`, `[`, `]`), or
 * more than {@link MAX_GCS_OBJECT_NAME_BYTES} bytes. With `prefix` the name may (must) end in `/`.
 */
export function objectNameProblem(name: string, prefix = false): string | undefined {
  if (name === '') return 'the object name is empty';
  const body = prefix && name.endsWith('/') ? name.slice(0, -1) : name;
  if (!prefix && name.endsWith('/')) return 'the object name ends in "/" (a folder, not an object)';
  if (body.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) return 'the object name has an empty, "." or ".." segment';
  if (name.includes('\\')) return 'the object name contains a backslash';
  if (/%[0-9A-Fa-f]{2}/.test(name)) return 'the object name contains a percent-encoded character (GCS does not decode them: give the name as stored)';
  if (/[?#*[\]]/.test(name)) return 'the object name contains "?", "#", "*", "[" or "]" (URL and wildcard syntax)';
  if (utf8Length(name) > MAX_GCS_OBJECT_NAME_BYTES) return `the object name is longer than ${MAX_GCS_OBJECT_NAME_BYTES} bytes`;
  return undefined;
}

/** Parses the part after `gs:`. */
function parseGs(source: string, rest: string): GcsSource {
  const shape = 'gs:// sources must look like gs://bucket/object';
  if (!rest.startsWith('//')) throw bad(source, shape);
  const body = rest.slice(2);
  const slash = body.indexOf('/');
  if (slash < 0) throw bad(source, shape);
  const bucket = body.slice(0, slash);
  const object = body.slice(slash + 1);
  if (!isBucketName(bucket)) throw bad(source, `${shape}: ${JSON.stringify(bucket)} is not a bucket name (3-63 lowercase letters, digits, "-", "_" and ".")`);
  const problem = objectNameProblem(object);
  if (problem) throw bad(source, `${shape}: ${problem}`);
  return { kind: 'gs', bucket, object };
}

/** Parses the host of an https URL (brackets already removed for IPv6). */
function parseHost(source: string, raw: string, bracketed: boolean): Pick<HttpsSource, 'host' | 'hostKind'> {
  const host = raw.toLowerCase();
  if (bracketed) {
    if (host.includes('%') || !ipaddr.IPv6.isValid(host)) throw bad(source, `host [${raw}] is not an IPv6 address (zone ids are not accepted)`);
    return { host: ipaddr.IPv6.parse(host).toRFC5952String(), hostKind: 'ipv6' };
  }
  const labels = host.split('.');
  if (host.length > 253 || !labels.every((l) => DNS_LABEL.test(l))) {
    throw bad(source, `host ${JSON.stringify(raw)} is not a host name (letters, digits, "-" and "."; internationalised names in punycode, xn--...)`);
  }
  if (NUMERIC_LABEL.test(labels[labels.length - 1])) {
    // WHATWG URL parsing reads such a host as an IPv4 number in decimal, octal or hex, with 1-4 parts.
    if (!ipaddr.IPv4.isValidFourPartDecimal(host)) throw bad(source, `host ${JSON.stringify(raw)} is a numeric address not written as four decimal numbers a.b.c.d`);
    return { host, hostKind: 'ipv4' };
  }
  return { host, hostKind: 'name' };
}

/** Parses the part after `https:`. */
function parseHttps(source: string, rest: string): HttpsSource {
  const shape = 'https:// sources must look like https://host/path';
  if (!rest.startsWith('//')) throw bad(source, shape);
  const body = rest.slice(2);
  const authorityEnd = body.search(/[/?#\\]/);
  const authority = authorityEnd < 0 ? body : body.slice(0, authorityEnd);
  if (authority.includes('@')) throw bad(source, 'https:// sources must not carry a user name or password (they would be recorded with the run)');
  if (authority === '') throw bad(source, shape);
  if (/\s/u.test(body)) throw bad(source, 'https:// URLs must not contain white space (percent-encode it as %20)');
  if (body.includes('\\')) throw bad(source, 'https:// URLs must not contain backslashes');
  let hostPart: string;
  let portPart: string;
  let bracketed = false;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw bad(source, `${shape}: unclosed "[" in the host`);
    hostPart = authority.slice(1, close);
    portPart = authority.slice(close + 1);
    bracketed = true;
  } else {
    const colon = authority.indexOf(':');
    hostPart = colon < 0 ? authority : authority.slice(0, colon);
    portPart = colon < 0 ? '' : authority.slice(colon);
  }
  let port = 443;
  if (portPart !== '') {
    const m = /^:([1-9][0-9]{0,4})$/.exec(portPart);
    if (!m || Number(m[1]) > 65535) throw bad(source, `${shape}: ${JSON.stringify(portPart)} is not a port (1-65535, no leading zeros)`);
    port = Number(m[1]);
  }
  const { host, hostKind } = parseHost(source, hostPart, bracketed);
  const tail = authorityEnd < 0 ? '/' : body.slice(authorityEnd);
  const hostInUrl = hostKind === 'ipv6' ? `[${host}]` : host;
  return { kind: 'https', url: `https://${hostInUrl}${port === 443 ? '' : `:${port}`}${tail.startsWith('/') ? tail : `/${tail}`}`, host, hostKind, port };
}

/**
 * Parses a video source.
 *
 * Any leading `name:` (with or without `//`) is read as a URL scheme, in any letter case (RFC 3986
 * section 3.1), so `file:///x`, `http://x`, `ftp:x` and `C:\x` are rejected; a local file whose first path
 * segment contains `:` is given as `./name:...`.
 *
 * @param source the `source` field of a video as given by the caller.
 * @returns the tagged source ({@link ParsedSource}).
 * @throws PipelineError(InvalidInput) with subject `source {source}` (credentials masked) and the reason:
 *   not a non-empty string, longer than {@link MAX_SOURCE_LENGTH}, control or invisible formatting
 *   characters, leading or trailing white space, an unsupported scheme, a malformed `gs://` bucket or object
 *   name, or a malformed `https://` URL (credentials, white space, backslash, bad host or port).
 */
export function parseSource(source: unknown): ParsedSource {
  if (typeof source !== 'string' || source.trim() === '') throw invalidInput(`source ${JSON.stringify(source)}`, 'must be a non-empty string');
  if (source.length > MAX_SOURCE_LENGTH) throw invalidInput(`source ${JSON.stringify(masked(source.slice(0, 80)))}...`, `longer than ${MAX_SOURCE_LENGTH} characters`);
  if (HIDDEN_CHARS.test(source)) throw invalidInput(`source ${JSON.stringify(masked(source))}`, 'contains control characters (NUL, newline, ...) or invisible formatting characters');
  if (/^\s|\s$/u.test(source)) throw bad(source, 'begins or ends with white space');
  const m = SCHEME.exec(source);
  if (!m) return { kind: 'local', path: source };
  const scheme = m[1].toLowerCase();
  const rest = source.slice(m[0].length);
  if (scheme === 'gs') return parseGs(source, rest);
  if (scheme === 'https') return parseHttps(source, rest);
  throw bad(source, `unsupported scheme "${scheme}:" (allowed: gs://, https://, or a local path)`);
}

/** The canonical `gs://bucket/object` URI of a {@link GcsSource}. */
export function gsUri(s: Pick<GcsSource, 'bucket' | 'object'>): string {
  return `gs://${s.bucket}/${s.object}`;
}
