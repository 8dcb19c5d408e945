/**
 * Which network addresses an `https://` video source may reach: public unicast addresses, plus what the
 * deployment allows explicitly (`HTTPS_SOURCE_ALLOW_PRIVATE`). Classification is ipaddr.js's (its special
 * ranges follow the IANA IPv4 and IPv6 Special-Purpose Address Registries, RFC 6890): every range other than
 * `unicast` (loopback, private, link-local incl. the cloud metadata address 169.254.169.254, carrier-grade
 * NAT, unique-local, unspecified, multicast, broadcast, reserved, documentation, NAT64/6to4/Teredo
 * translation prefixes, ...) counts as not public. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are judged
 * by the IPv4 address they carry.
 *
 * {@link guardedLookup} is a `lookup` for `net.connect` that applies the same judgement to whatever DNS
 * answers when the connection is made, so the address that was checked is the one connected to (a DNS
 * answer that changes between a check and the connection, "DNS rebinding", cannot reach a private address).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/** What {@link classifyAddress} says about an address. */
export interface AddressClass {
  /** The address in normal form (IPv4-mapped IPv6 given as the IPv4 address it carries). */
  address: string;
  /** ipaddr.js range name: `unicast` for public addresses, else e.g. `loopback`, `private`, `linkLocal`. */
  range: string;
  /** True only for public unicast addresses. */
  public: boolean;
}

/**
 * Classifies an IP address. Accepts every form ipaddr.js parses, including the numeric tricks a URL parser
 * also accepts (`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`), so they are judged by the address they
 * stand for.
 * @param address an IPv4 or IPv6 address without brackets.
 * @throws Error when `address` is not an IP address.
 */
export function classifyAddress(address: string): AddressClass {
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  const range = ip.range();
  return { address: ip.toString(), range, public: range === 'unicast' };
}

/** Whether `address` parses as an IP address (ipaddr.js, all forms). */
export function isIpAddress(address: string): boolean {
  return ipaddr.isValid(address);
}

/**
 * Non-public destinations a deployment allows: host names (matched exactly, case-insensitively, against the
 * URL's host) and address ranges (matched against every resolved address).
 */
export interface AddressAllowance {
  hosts: Set<string>;
  ranges: [ipaddr.IPv4 | ipaddr.IPv6, number][];
}

/**
 * Parses allowance entries: `10.0.0.0/8`, `fd00::/8`, a single address (`192.168.1.5`, a /32 or /128), or a
 * host name (`media.internal`).
 * @throws Error naming the entry when it is neither (`HTTPS_SOURCE_ALLOW_PRIVATE` in messages).
 */
export function parseAllowance(entries: readonly string[]): AddressAllowance {
  const allowance: AddressAllowance = { hosts: new Set(), ranges: [] };
  for (const raw of entries) {
    const e = raw.trim().toLowerCase();
    if (e === '') continue;
    if (e.includes('/')) {
      if (!ipaddr.isValidCIDR(e)) throw new Error(`HTTPS_SOURCE_ALLOW_PRIVATE: ${JSON.stringify(raw)} is not a CIDR range`);
      allowance.ranges.push(ipaddr.parseCIDR(e));
    } else if (ipaddr.IPv4.isValidFourPartDecimal(e) || ipaddr.IPv6.isValid(e)) {
      const ip = ipaddr.parse(e);
      allowance.ranges.push([ip, ip.kind() === 'ipv4' ? 32 : 128]);
    } else if (/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/.test(e)) {
      allowance.hosts.add(e);
    } else {
      throw new Error(`HTTPS_SOURCE_ALLOW_PRIVATE: ${JSON.stringify(raw)} is neither a host name, an IP address nor a CIDR range`);
    }
  }
  return allowance;
}

/** Whether `address` lies in one of `allowance.ranges` (IPv4-mapped IPv6 compared as IPv4). */
function inAllowedRange(address: string, allowance: AddressAllowance): boolean {
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  return allowance.ranges.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));
}

/**
 * Why connecting to `address` for URL host `host` is refused (`"127.0.0.1, a loopback address, not a public
 * one (...)"`), or undefined when it is allowed: allowed are
 * public unicast addresses, any address of a host named in `allowance.hosts`, and addresses in
 * `allowance.ranges`.
 * @param host the URL's host in lowercase (a name or an address without brackets).
 * @param address a resolved (or literal) IP address.
 */
export function addressRefusal(host: string, address: string, allowance: AddressAllowance): string | undefined {
  let c: AddressClass;
  try {
    c = classifyAddress(address);
  } catch {
    return `${JSON.stringify(address)} is not an IP address`;
  }
  if (c.public || allowance.hosts.has(host) || inAllowedRange(address, allowance)) return undefined;
  return `${c.address}, ${/^[aeiou]/i.test(c.range) ? 'an' : 'a'} ${c.range} address, not a public one (HTTPS_SOURCE_ALLOW_PRIVATE can allow it)`;
}

/** Raised by {@link guardedLookup} (and recognised in fetch failures) when DNS answers a refused address. */
export class AddressRefusedError extends Error {
  /** @param host the name looked up; @param reason from {@link addressRefusal}. */
  constructor(
    readonly host: string,
    readonly reason: string,
  ) {
    super(`${host} resolves to ${reason}`);
    this.name = 'AddressRefusedError';
  }
}

/** A DNS resolver with the signature of `dns.lookup(host, { all: true }, cb)`. */
export type Resolver = (hostname: string, options: { family?: number; hints?: number; all: true }, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/**
 * A `lookup` for `net.connect`/`tls.connect` (undici `Agent({ connect: { lookup } })`) that resolves every
 * address of the host and fails with {@link AddressRefusedError} when any of them is refused by
 * {@link addressRefusal}; otherwise it answers with exactly the addresses it checked. Node calls it with
 * `all: true` (happy eyeballs) or without; both forms are answered.
 * @param resolve DNS resolver (default `dns.lookup`; tests pass fakes).
 */
export function guardedLookup(allowance: AddressAllowance, resolve: Resolver = dnsLookup as unknown as Resolver): LookupFunction {
  return ((hostname: string, options: { family?: number | string; hints?: number; all?: boolean } | number | undefined, callback: (...args: unknown[]) => void) => {
    const opts = typeof options === 'object' && options !== null ? options : { family: options };
    const family = opts.family === 'IPv4' ? 4 : opts.family === 'IPv6' ? 6 : Number(opts.family ?? 0) || 0;
    resolve(hostname, { family, hints: opts.hints, all: true }, (err, addresses) => {
      if (err) return callback(err);
      if (!addresses?.length) return callback(Object.assign(new Error(`${hostname}: no addresses`), { code: 'ENOTFOUND' }));
      const host = hostname.toLowerCase();
      for (const a of addresses) {
        const reason = addressRefusal(host, a.address, allowance);
        if (reason) return callback(new AddressRefusedError(hostname, reason));
      }
      if (opts.all) return callback(null, addresses);
      return callback(null, addresses[0].address, addresses[0].family);
    });
  }) as unknown as LookupFunction;
}

/**
 * Resolves `host` (a DNS name) and checks every address, as {@link guardedLookup} does at connection time.
 * @returns the addresses.
 * @throws AddressRefusedError when one is refused; the resolver's error (e.g. `ENOTFOUND`) when it fails.
 */
export function checkHostAddresses(host: string, allowance: AddressAllowance, resolve: Resolver = dnsLookup as unknown as Resolver): Promise<LookupAddress[]> {
  return new Promise((ok, fail) => {
    guardedLookup(allowance, resolve)(host, { all: true }, ((err: Error | null, addresses: LookupAddress[]) => (err ? fail(err) : ok(addresses))) as never);
  });
}
