/**
 * A site of several nsregd on one shared store, for the integration tests
 * of README "Several daemons as one service": a three-member etcd cluster
 * (./etcd.ts), real `bin/nsregd` processes (each its own listen port and
 * data dir, all with the same zone and `store: type: etcd`), and one real
 * named that every daemon updates by nsupdate. Loopback only; close() (for
 * after()) stops everything, also what a failed start left running.
 */
import { randomBytes } from 'node:crypto';
import { Algorithm, rcodeName } from '../../src/dns/constants.js';
import type { DecodedMessage, ResourceRecord } from '../../src/dns/message.js';
import { parseZoneKey, zoneNamespacePrefix } from '../../src/daemon/shared/layout.js';
import { LOOPBACK_ZONE, nsupdateUpstream, zoneYaml } from './config-yaml.js';
import { startEtcdCluster, type EtcdCluster } from './etcd.js';
import { startNamed, type NamedLab, type TsigKeySpec } from './named.js';
import { startNsregd, type NsregdLab } from './nsregd-lab.js';
import { a, makeClient, signedUpdate, type TestClient } from './sig0-client.js';

export const SITE_ZONE = 'dynamic.example.org.';

export interface SharedSite {
  readonly etcd: EtcdCluster;
  readonly named: NamedLab;
  readonly daemons: NsregdLab[];
  /** The store prefix the daemons share. */
  readonly prefix: string;
  /** Every A record named serves in the zone (AXFR), as `name address`, sorted; the zone's own `ns` left out. */
  namedRecords(): Promise<string[]>;
  /** The SOA serial named serves. */
  namedSerial(): Promise<string>;
  /** Every record in the store (etcdctl, a quorum read), as `name address`, sorted. */
  storeRecords(): Promise<string[]>;
  /** Every claimed name in the store, sorted. */
  storeClaims(): Promise<string[]>;
  /**
   * The daemons that say they publish the zone now (by their logs: the
   * last of "publishing for the zone (elected publisher)" / "no longer
   * publishing for the zone"). Daemons killed are passed in `dead` and
   * left out.
   */
  publishers(dead?: ReadonlySet<number>): number[];
  /** The one daemon that says it publishes the zone; undefined unless exactly one does. */
  publisher(dead?: ReadonlySet<number>): number | undefined;
  close(): Promise<void>;
}

export interface SharedSiteOptions {
  /** Names the store prefix (unique per test file). */
  name: string;
  daemons?: number;
  /** Store timeout (default 1s). */
  timeout?: string;
}

const tsig: TsigKeySpec = { name: 'nsregd.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };

/** Starts etcd (three members), named and the daemons. */
export async function startSharedSite(opts: SharedSiteOptions): Promise<SharedSite> {
  const stops: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
  };
  try {
    const etcd = await startEtcdCluster({ members: 3 });
    stops.push(() => etcd.close());
    const named = await startNamed({
      tsigKeys: [tsig],
      zones: [{ name: SITE_ZONE, allowUpdateKey: tsig.name, extra: '  allow-transfer { 127.0.0.1; };' }],
    });
    stops.push(() => named.stop());
    const prefix = `/nsregd-${opts.name}-${randomBytes(3).toString('hex')}`;
    const zonesYaml = zoneYaml(SITE_ZONE, {
      ...LOOPBACK_ZONE,
      upstreams: [nsupdateUpstream(SITE_ZONE, named.port, tsig, { timeout: '3s' })],
    });
    const extraYaml = [
      'store:',
      '  type: etcd',
      `  endpoints: [${etcd.endpoints.join(', ')}]`,
      `  prefix: ${prefix}`,
      '  lease: 1s',
      `  timeout: ${opts.timeout ?? '1s'}`,
      // Every request of a test comes from 127.0.0.1: no per-source rate.
      'limits:',
      '  sig-rate-per-source: 0',
      '  checks-per-source: 1024',
      '',
    ].join('\n');
    const daemons: NsregdLab[] = [];
    const started = await Promise.allSettled(Array.from({ length: opts.daemons ?? 3 }, () => startNsregd({ zonesYaml, extraYaml })));
    for (const s of started) {
      if (s.status === 'fulfilled') {
        daemons.push(s.value);
        stops.push(() => s.value.stop());
      }
    }
    const failed = started.find((s) => s.status === 'rejected');
    if (failed !== undefined) throw failed.reason;

    const records = async (): Promise<string[]> => {
      const out = await named.dig(['+tcp', '+noall', '+answer', SITE_ZONE, 'AXFR']);
      return out
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length >= 5 && (f[3] === 'A' || f[3] === 'AAAA') && f[0] !== `ns.${SITE_ZONE}`)
        .map((f) => `${f[0]} ${f[4]}`)
        .sort();
    };
    const storeKeys = async (under: string): Promise<string[]> => {
      const ns = zoneNamespacePrefix(prefix, SITE_ZONE);
      const r = await etcd.etcdctl(['get', '--prefix', '--keys-only', `${ns}${under}`]);
      if (r.code !== 0) throw new Error(`etcdctl get exited ${String(r.code)}: ${r.stderr}`);
      return r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith(ns))
        .map((l) => l.slice(ns.length));
    };
    const publishers = (dead: ReadonlySet<number> = new Set()): number[] =>
      daemons.flatMap((d, i) => {
        if (dead.has(i)) return [];
        let on = false;
        for (const l of d.logs()) {
          if (l.msg === 'publishing for the zone (elected publisher)') on = true;
          else if (l.msg === 'no longer publishing for the zone') on = false;
        }
        return on ? [i] : [];
      });
    return {
      etcd,
      named,
      daemons,
      prefix,
      namedRecords: records,
      async namedSerial() {
        const [soa] = await named.query(SITE_ZONE, 'SOA', { tcp: true });
        return soa?.split(/\s+/)[2] ?? '';
      },
      async storeRecords() {
        return (await storeKeys('recs/'))
          .map(parseZoneKey)
          .flatMap((k) => (k?.kind === 'record' ? [`${k.name} ${k.address}`] : []))
          .sort();
      },
      async storeClaims() {
        return (await storeKeys('keys/'))
          .map(parseZoneKey)
          .flatMap((k) => (k?.kind === 'claim' ? [k.name] : []))
          .sort();
      },
      publishers,
      publisher(dead) {
        const publishing = publishers(dead);
        return publishing.length === 1 ? publishing[0] : undefined;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** A client of the site: its key, its one address, and `name address` as namedRecords() lists it. */
export interface Host {
  readonly c: TestClient;
  readonly address: string;
  readonly line: string;
}

/** `count` clients `<label><i>` with addresses 10.<net>.0.<i + 1> (cheap P-256 keys). */
export function hosts(label: string, count: number, net: number): Host[] {
  return Array.from({ length: count }, (_, i) => {
    const c = makeClient(`${label}${i}`, SITE_ZONE, Algorithm.ECDSAP256SHA256);
    const address = `10.${net}.0.${i + 1}`;
    return { c, address, line: `${c.name} ${address}` };
  });
}

export const lines = (hs: readonly Host[]): string[] => hs.map((h) => h.line);

let ids = 0;

/** An update of `c`'s name with `records`, signed by `c` now. */
export function updateOf(c: TestClient, records: ResourceRecord[]): Buffer {
  ids = (ids + 1) % 65536;
  return signedUpdate(c, records, { now: Math.floor(Date.now() / 1000), id: ids });
}

/** An update of `c`'s name carrying `address` as its one A record (a claim, or a refresh of it), signed now. */
export function claimOf(c: TestClient, address: string, ttl = 300): Buffer {
  return updateOf(c, [a(c.name, address, ttl)]);
}

/** The TXT reasons of a reply. */
export function reasons(m: DecodedMessage): string[] {
  return m.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data ? rr.data : []));
}

/** `rcode` and reasons, for assertion messages. */
export function outcome(m: DecodedMessage): string {
  return [rcodeName(m.rcode), ...reasons(m)].join(' ');
}

/** Runs `fn` over `items`, at most `limit` at once; results in order. After a failure no more are started. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i], i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
