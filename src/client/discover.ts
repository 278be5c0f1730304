/**
 * Finding where to register: zone discovery
 * with DNS-SD browse-domain queries (RFC 6763 §11), then one SRV lookup
 * per zone for its nsregd servers (`_nsreg._tcp.<zone>`, RFC 2782), in
 * the order RFC 2782 says to try them.
 *
 * DNS I/O goes through an injected QueryFn, so tests drive discovery
 * without sockets; makeQuery builds the real one on src/net/transport.ts.
 */
import { randomInt } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns/promises';
import * as net from 'node:net';
import type { Logger } from 'pino';
import { parseIp } from '../net/address.js';
import type { DnsServer } from '../config/client.js';
import type { Clock } from '../clock.js';
import { Opcode, RRClass, RRType, Rcode, rcodeName } from '../dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage, optRecord, type DecodedMessage } from '../dns/message.js';
import { canonicalName, fqdn, namesEqual } from '../dns/names.js';
import type { SrvData } from '../dns/rdata.js';
import { exchange } from '../net/transport.js';
import { DiscoveryError } from './errors.js';
import { errorMessage } from '../errors.js';

/** RFC 6763 §11: "r" asks for the domains recommended for registration. */
export const BROWSE_PREFIX = 'r._dns-sd._udp';
/** Where an nsregd server announces itself (RFC 2782 `_service._proto.name`). */
export const SRV_PREFIX = '_nsreg._tcp';
/** Always browsed: mDNS's domain, and the homenet domain (RFC 8375). */
export const STATIC_BROWSE_DOMAINS: readonly string[] = Object.freeze(['local.', 'home.arpa.']);

/** EDNS(0) payload size advertised on UDP (the DNS Flag Day 2020 value, RFC 6891 §6.2.5). */
const EDNS_PAYLOAD = 1232;

export type QueryType = 'PTR' | 'SRV';

/**
 * One DNS question; resolves with the decoded reply (any rcode), rejects
 * with a TransportError (or DiscoveryError for a reply that is not one).
 */
export type QueryFn = (name: string, type: QueryType) => Promise<DecodedMessage>;

export interface QueryOptions {
  readonly server: DnsServer;
  /** dns-tcp: TCP only; otherwise UDP with TCP fallback on TC. */
  readonly tcp: boolean;
  /** dns-timeout, ms, for the whole exchange. */
  readonly timeoutMs: number;
  /** Message IDs (tests); default random, RFC 5452 §4.3. */
  readonly randomId?: () => number;
}

/** A QueryFn talking to one recursive server through src/net/transport.ts. */
export function makeQuery(opts: QueryOptions): QueryFn {
  const nextId = opts.randomId ?? ((): number => randomInt(0, 0x10000));
  return async (name: string, type: QueryType): Promise<DecodedMessage> => {
    const qname = fqdn(name);
    const m = emptyMessage(nextId(), Opcode.QUERY);
    m.rd = true;
    m.questions.push({ name: qname, type: RRType[type], class: RRClass.IN });
    m.additionals.push(optRecord(EDNS_PAYLOAD));
    const { reply } = await exchange({
      host: opts.server.host,
      port: opts.server.port,
      message: encodeMessage(m),
      timeoutMs: opts.timeoutMs,
      tcp: opts.tcp,
    });
    const decoded = decodeMessage(reply);
    const q = decoded.questions[0];
    // The transport matched the ID; a reply to some other question is still not ours (RFC 5452 §9.1).
    if (!decoded.qr || q === undefined || q.type !== RRType[type] || !namesEqual(q.name, qname)) {
      throw new DiscoveryError('bad-reply', `reply from ${opts.server.host} does not answer ${qname} ${type}`);
    }
    return decoded;
  };
}

/** An address with its prefix length, as configured on an interface. */
export interface NetworkPrefix {
  readonly address: string;
  readonly prefixLength: number;
}

/**
 * The reverse-mapping name of the network address of `address/prefixLength`
 * (RFC 6763 §11: the host bits are cleared, then the full address is
 * reversed, e.g. 192.168.12.34/16 → `0.0.168.192.in-addr.arpa.`; IPv6 gives
 * all 32 nibbles under `ip6.arpa.`, RFC 3596 §2.5). null if not an address.
 */
export function reverseNetworkDomain(address: string, prefixLength: number): string | null {
  const ip = parseIp(address.split('%', 1)[0]);
  if (ip === null) return null;
  const bits = ip.family === 4 ? 32 : 128;
  const plen = BigInt(Math.max(0, Math.min(bits, Math.floor(prefixLength))));
  const hostBits = BigInt(bits) - plen;
  const network = (ip.value >> hostBits) << hostBits;
  if (ip.family === 4) {
    const octets = [0n, 8n, 16n, 24n].map((sh) => ((network >> sh) & 0xffn).toString());
    return `${octets.join('.')}.in-addr.arpa.`;
  }
  const nibbles: string[] = [];
  for (let sh = 0n; sh < 128n; sh += 4n) nibbles.push(((network >> sh) & 0xfn).toString(16));
  return `${nibbles.join('.')}.ip6.arpa.`;
}

/** Browse domains for these networks: `local.`, `home.arpa.`, then each network's reverse domain, deduplicated. */
export function browseDomains(networks: readonly NetworkPrefix[]): string[] {
  const out: string[] = [...STATIC_BROWSE_DOMAINS];
  for (const n of networks) {
    const d = reverseNetworkDomain(n.address, n.prefixLength);
    if (d !== null && !out.includes(d)) out.push(d);
  }
  return out;
}

export interface DiscoverZonesOptions {
  readonly query: QueryFn;
  /** The local addresses with prefixes (after exclusion); extra addresses have none and do not count. */
  readonly networks: readonly NetworkPrefix[];
  readonly clock: Clock;
  /** Wait before the one retry (dns-timeout). */
  readonly retryDelayMs: number;
  readonly logger: Logger;
}

/** Queries every domain; returns the zones found and the domains whose query failed. */
async function browseRound(
  domains: readonly string[],
  opts: DiscoverZonesOptions,
): Promise<{ zones: string[]; failed: string[] }> {
  const results = await Promise.all(
    domains.map(async (d) => {
      const qname = `${BROWSE_PREFIX}.${d}`;
      try {
        const reply = await opts.query(qname, 'PTR');
        // A server failure says nothing about the domain; treat it like a lost packet.
        if (reply.rcode === Rcode.SERVFAIL) {
          throw new DiscoveryError('server-failure', `${qname} PTR: ${rcodeName(reply.rcode)}`);
        }
        const zones: string[] = [];
        for (const rr of reply.answers) {
          if (rr.type === 'PTR' && rr.data !== null && namesEqual(rr.name, qname)) {
            const zone = canonicalName(rr.data);
            if (zone !== '.') zones.push(zone);
          }
        }
        return { domain: d, ok: true as const, zones };
      } catch (err) {
        return { domain: d, ok: false as const, error: err };
      }
    }),
  );
  const zones: string[] = [];
  const failed: string[] = [];
  for (const r of results) {
    if (!r.ok) {
      opts.logger.warn({ domain: r.domain, err: r.error }, 'zone discovery query failed');
      failed.push(r.domain);
      continue;
    }
    for (const z of r.zones) {
      opts.logger.info({ zone: z, domain: r.domain }, 'found registration zone');
      zones.push(z);
    }
  }
  return { zones, failed };
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.schedule(ms, resolve));
}

/** What one discovery found. */
export interface DiscoveredZones {
  /** Lower-cased FQDNs, deduplicated, in answer order. */
  readonly zones: string[];
  /** Every browse domain answered (possibly with nothing); false when some query failed twice. */
  readonly complete: boolean;
}

/**
 * Zone discovery (RFC 6763 §11): PTR queries at `r._dns-sd._udp.<d>` for
 * each browse domain; each PTR target is a zone. Queries that fail
 * (network error, timeout, SERVFAIL) are retried once after
 * `retryDelayMs`; unlike the original, which gave up on the whole round
 * at the first error, the other domains' answers are kept.
 */
export async function discoverZones(opts: DiscoverZonesOptions): Promise<DiscoveredZones> {
  const domains = browseDomains(opts.networks);
  opts.logger.debug({ domains }, 'discovering registration zones');
  const found: string[] = [];
  const add = (zones: readonly string[]): void => {
    for (const z of zones) if (!found.includes(z)) found.push(z);
  };
  const first = await browseRound(domains, opts);
  add(first.zones);
  if (first.failed.length === 0) return { zones: found, complete: true };
  opts.logger.info({ retryInMs: opts.retryDelayMs, domains: first.failed }, 'zone discovery failed; retrying once');
  await sleep(opts.clock, opts.retryDelayMs);
  const second = await browseRound(first.failed, opts);
  add(second.zones);
  if (second.failed.length > 0) opts.logger.warn({ domains: second.failed }, 'zone discovery failed again for these domains');
  return { zones: found, complete: second.failed.length === 0 };
}

/** Address lookup for SRV targets that are host names; /etc/hosts included. */
export type LookupFn = (host: string) => Promise<string>;

/** getaddrinfo(3) through node, so /etc/hosts and nsswitch apply. */
export const systemLookup: LookupFn = async (host: string): Promise<string> => (await dnsLookup(host)).address;

/** Where to register a name: one nsregd server of one zone. */
export interface NsregServer {
  /** Zone FQDN, lower case. */
  readonly zone: string;
  /** Full name to register, `<name>.<zone>`. */
  readonly name: string;
  /** The SRV target as announced. */
  readonly target: string;
  /** IP address to connect to. */
  readonly host: string;
  readonly port: number;
  /** The SRV priority (RFC 2782: lowest first). */
  readonly priority: number;
}

/**
 * An SRV target as an address: an IP literal with a trailing dot (what
 * nsregd announces when listening on an address) is used as written;
 * any other name goes through `lookup`, so /etc/hosts applies. (The
 * original client sent both to the DNS as names, and failed on literals.)
 */
export async function resolveTarget(target: string, lookup: LookupFn = systemLookup): Promise<string> {
  const bare = target.endsWith('.') ? target.slice(0, -1) : target;
  if (net.isIP(bare) !== 0) return bare.toLowerCase();
  if (bare === '') throw new DiscoveryError('unresolvable-target', 'SRV target is the root: service not available');
  try {
    return await lookup(bare);
  } catch (err) {
    throw new DiscoveryError('unresolvable-target', `cannot resolve ${target}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * Most SRV targets kept for one zone, in order. A site runs a handful of
 * daemons; the resolver of whatever network the host is on decides what
 * the answer holds, so it must not be able to make the client resolve
 * and cycle through hundreds of targets.
 */
export const MAX_SRV_TARGETS = 16;

/** A uniform random integer in [0, maxInclusive] (RFC 2782's "between 0 and the sum, inclusive"). */
export type RandomInt = (maxInclusive: number) => number;

const cryptoRandomInt: RandomInt = (maxInclusive) => randomInt(0, maxInclusive + 1);

/**
 * SRV records in the order to try them (RFC 2782, "Usage rules"): lowest
 * priority first; within one priority, a weighted random order: the
 * records not yet ordered are listed with those of weight 0 first, a
 * number is drawn uniformly between 0 and the sum of their weights
 * (inclusive), and the first record whose running sum of weights is at
 * least that number comes next. A weight-0 record is thus picked only
 * when the draw is 0, or once no weighted record is left. Targets of "."
 * ("the service is decidedly not available") are dropped, as are repeats
 * of a target and port already listed; at most `limit` records are
 * returned (the lowest priorities, ordered as above).
 */
export function orderSrvRecords(records: readonly SrvData[], random: RandomInt = cryptoRandomInt, limit = MAX_SRV_TARGETS): SrvData[] {
  const seen = new Set<string>();
  const usable: SrvData[] = [];
  for (const r of records) {
    const target = canonicalName(r.target);
    const key = `${target} ${r.port}`;
    if (target === '.' || seen.has(key)) continue;
    seen.add(key);
    usable.push(r);
  }
  const priorities = [...new Set(usable.map((r) => r.priority))].sort((a, b) => a - b);
  const out: SrvData[] = [];
  for (const priority of priorities) {
    const group = usable.filter((r) => r.priority === priority);
    // Weight 0 first, each part in answer order ("any order" in the RFC).
    const left = [...group.filter((r) => r.weight === 0), ...group.filter((r) => r.weight !== 0)];
    while (left.length > 0 && out.length < limit) {
      const sum = left.reduce((n, r) => n + r.weight, 0);
      const draw = Math.min(sum, Math.max(0, Math.floor(random(sum))));
      let running = 0;
      let pick = left.length - 1;
      for (let i = 0; i < left.length; i++) {
        running += left[i]?.weight ?? 0;
        if (running >= draw) {
          pick = i;
          break;
        }
      }
      out.push(...left.splice(pick, 1));
    }
    if (out.length >= limit) break;
  }
  return out;
}

export interface FindServersOptions {
  readonly query: QueryFn;
  readonly lookup?: LookupFn;
  readonly logger: Logger;
  /** The weighted draw (tests); default crypto's randomInt. */
  readonly random?: RandomInt;
}

/**
 * The nsregd servers of `zone` for the unqualified `name`: every SRV
 * answer at `_nsreg._tcp.<zone>`, in the order to try them (see
 * orderSrvRecords), each target resolved to an address; targets that do
 * not resolve are left out. Empty (with a log line) when there is none,
 * the query fails or no target resolves.
 */
export async function findServers(zone: string, name: string, opts: FindServersOptions): Promise<NsregServer[]> {
  const z = canonicalName(zone);
  const qname = `${SRV_PREFIX}.${z}`;
  let reply: DecodedMessage;
  try {
    reply = await opts.query(qname, 'SRV');
  } catch (err) {
    opts.logger.warn({ zone: z, err: err }, 'cannot look up the nsregd server of the zone');
    return [];
  }
  const records: SrvData[] = [];
  for (const rr of reply.answers) {
    if (rr.type === 'SRV' && rr.data !== null && namesEqual(rr.name, qname)) records.push(rr.data);
  }
  if (records.length === 0) {
    opts.logger.warn({ zone: z, rcode: rcodeName(reply.rcode) }, 'no nsregd server for zone (no SRV record)');
    return [];
  }
  const ordered = orderSrvRecords(records, opts.random);
  if (ordered.length === 0) {
    opts.logger.warn({ zone: z }, 'the zone\'s SRV target is "." (RFC 2782: the service is decidedly not available)');
    return [];
  }
  const resolved = await Promise.all(
    ordered.map(async (r): Promise<NsregServer | null> => {
      const target = fqdn(r.target);
      try {
        const host = await resolveTarget(target, opts.lookup);
        return Object.freeze({ zone: z, name: canonicalName(`${name}.${z}`), target, host, port: r.port, priority: r.priority });
      } catch (err) {
        opts.logger.warn({ zone: z, target, err: err }, 'nsregd server address unknown');
        return null;
      }
    }),
  );
  const servers = resolved.filter((s): s is NsregServer => s !== null);
  servers.forEach((server, i) =>
    opts.logger.info(
      { zone: z, target: server.target, address: server.host, port: server.port, name: server.name, ...(servers.length > 1 ? { order: i + 1, of: servers.length } : {}) },
      'found nsregd server for zone',
    ),
  );
  return servers;
}

/** Prefix of nsregd's start-up identifier, a TXT string in the Additional section of its SRV self-answer. */
const INSTANCE_PREFIX = 'nsregd-instance=';
/** Prefix of nsregd's site identifier (daemons sharing one store), likewise. */
const SITE_PREFIX = 'nsregd-site=';

/** The text after `prefix` in the first TXT string of the Additional section that starts with it. */
function additionalText(reply: DecodedMessage, prefix: string): string | undefined {
  for (const rr of reply.additionals) {
    if (rr.type !== 'TXT' || rr.data === null) continue;
    const text = rr.data.find((t) => t.startsWith(prefix));
    if (text !== undefined) return text.slice(prefix.length);
  }
  return undefined;
}

/**
 * The start-up identifier in an nsregd SRV self-answer: the text after
 * `nsregd-instance=` in a TXT record of the Additional section; undefined
 * when there is none (the original daemon, or another server).
 */
export function daemonInstance(reply: DecodedMessage): string | undefined {
  return additionalText(reply, INSTANCE_PREFIX);
}

/**
 * The site identifier in an nsregd SRV self-answer (`nsregd-site=<id>`):
 * daemons answering with the same one share their claims and records
 * (README, "Running nsregc"). Undefined when there is none, or it is empty.
 */
export function daemonSite(reply: DecodedMessage): string | undefined {
  const site = additionalText(reply, SITE_PREFIX);
  return site === '' ? undefined : site;
}
