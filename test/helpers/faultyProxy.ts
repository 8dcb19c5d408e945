/**
 * Fault injection for storage tests and latency for benchmarks: an HTTP proxy on loopback in front of the
 * GCS emulator that forwards every request, except that it can be told to answer the next N requests with
 * HTTP 503 or to reset their connections, and can delay every answer like a remote bucket would (a fixed
 * round-trip latency plus transfer time at a given bandwidth). It counts requests and payload bytes both
 * ways. Bounded and local: it only ever talks to the emulator on 127.0.0.1.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running proxy. */
export interface FaultyProxy {
  /** `http://127.0.0.1:port` to use as the emulator host. */
  url: string;
  /** Make the next `n` requests fail: `503` answers Service Unavailable, `reset` destroys the socket. */
  failNext(n: number, mode: '503' | 'reset'): void;
  /**
   * Make every request fail for `ms` milliseconds (the emulator "down" for a while), starting now, or with
   * `onNextUpload` at the next upload (POST/PUT) request, so the outage is sure to hit uploads.
   */
  failFor(ms: number, mode: '503' | 'reset', opts?: { onNextUpload?: boolean }): void;
  /** Requests seen and failed, and body bytes sent to the emulator (up) and returned by it (down). */
  counts(): { seen: number; failed: number; bytesUp: number; bytesDown: number };
  /** Delay every answer by `latencyMs` plus its request and response bytes at `bytesPerSecond` (0: no limit). */
  setLatency(latencyMs: number, bytesPerSecond?: number): void;
  close(): Promise<void>;
}

/** Starts a proxy forwarding to `target` (e.g. `http://127.0.0.1:14443`). */
export async function startFaultyProxy(target: string): Promise<FaultyProxy> {
  const t = new URL(target);
  let pending = 0;
  let downUntil = 0;
  let armedMs = 0;
  let mode: '503' | 'reset' = '503';
  let seen = 0;
  let failed = 0;
  let bytesUp = 0;
  let bytesDown = 0;
  let latencyMs = 0;
  let bytesPerSecond = 0;
  const server = http.createServer((req, res) => {
    seen++;
    if (armedMs > 0 && (req.method === 'POST' || req.method === 'PUT')) {
      downUntil = Date.now() + armedMs;
      armedMs = 0;
    }
    const down = Date.now() < downUntil;
    if (pending > 0 || down) {
      if (!down) pending--;
      failed++;
      req.resume();
      if (mode === 'reset') return void req.socket.destroy();
      res.writeHead(503, { 'content-type': 'application/json' });
      return void res.end('{"error":{"code":503,"message":"injected fault"}}');
    }
    let reqBytes = 0;
    req.on('data', (b: Buffer) => (reqBytes += b.length));
    const upstream = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } },
      (up) => {
        // Resumable-upload Location headers point at the emulator; keep clients on the proxy.
        const headers = { ...up.headers };
        if (typeof headers.location === 'string') headers.location = headers.location.replace(t.origin, url);
        const chunks: Buffer[] = [];
        up.on('data', (b: Buffer) => chunks.push(b));
        up.on('end', () => {
          const body = Buffer.concat(chunks);
          bytesUp += reqBytes;
          bytesDown += body.length;
          const delay = latencyMs + (bytesPerSecond > 0 ? ((reqBytes + body.length) / bytesPerSecond) * 1000 : 0);
          const answer = () => {
            res.writeHead(up.statusCode ?? 502, headers);
            res.end(body);
          };
          if (delay > 0) setTimeout(answer, delay);
          else answer();
        });
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    failNext(n, m) {
      pending = n;
      mode = m;
    },
    failFor(ms, m, o) {
      mode = m;
      if (o?.onNextUpload) armedMs = ms;
      else downUntil = Date.now() + ms;
    },
    counts: () => ({ seen, failed, bytesUp, bytesDown }),
    setLatency(ms, bps = 0) {
      latencyMs = ms;
      bytesPerSecond = bps;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}
