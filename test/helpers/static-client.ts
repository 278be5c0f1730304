/**
 * An in-process NsregClient for integration tests against real daemons:
 * a host whose addresses never change (an in-memory stand-in for the
 * kernel), a fresh key in the test's directory, DNS over TCP to a given
 * loopback port, one configured zone, discovery off, logs captured.
 */
import * as path from 'node:path';
import { NsregClient } from '../../src/client/client.js';
import { loadClientKey } from '../../src/client/keys.js';
import { LIFETIME_FOREVER, type AddressSource, type LocalAddress } from '../../src/client/addresses/source.js';
import { defaultClientConfig, mergeClientFlags, type ClientConfig } from '../../src/config/client.js';
import type { Clock } from '../../src/clock.js';
import { logSink } from './log-sink.js';

/** An IPv4 address on eth0 (/24), valid and preferred forever. */
export function local(address: string): LocalAddress {
  return {
    address,
    family: address.includes(':') ? 6 : 4,
    ifindex: 2,
    ifname: 'eth0',
    prefixLen: 24,
    flags: 0x80,
    validLifetime: LIFETIME_FOREVER,
    preferredLifetime: LIFETIME_FOREVER,
  };
}

/** Fixed addresses; nothing changes while the client runs. */
export const staticSource = (addresses: readonly LocalAddress[]): AddressSource => ({
  kind: 'netlink',
  list: () => Promise.resolve([...addresses]),
  subscribe: () => Promise.resolve(),
  close: () => Promise.resolve(),
});

export interface StaticClientOptions {
  /** Holds the key files (`<label>.key`, `<label>.private`) and stands for the home directory. */
  readonly dir: string;
  /** The host name, and so the label registered. */
  readonly label: string;
  readonly zone: string;
  /** The DNS server's port on 127.0.0.1 (asked over TCP). */
  readonly dnsPort: number;
  readonly addresses: readonly string[];
  /** Configuration on top of the defaults (discovery is off unless set here). */
  readonly config?: Partial<ClientConfig>;
  readonly probeIntervalMs?: number;
  readonly clock?: Clock;
}

export interface StaticClient {
  readonly client: NsregClient;
  /** The client's log lines so far. */
  readonly lines: Array<Record<string, unknown>>;
  /** Log lines whose msg contains `text`. */
  readonly count: (text: string) => number;
}

export async function startStaticClient(o: StaticClientOptions): Promise<StaticClient> {
  const { logger, lines } = logSink();
  const cfg = mergeClientFlags(defaultClientConfig(o.dir, { hostname: o.label }), {
    dnsServer: `127.0.0.1@${o.dnsPort}`,
    dnsTcp: true,
    zones: [o.zone],
  });
  const key = await loadClientKey({
    keyFile: path.join(o.dir, `${o.label}.key`),
    privateKeyFile: path.join(o.dir, `${o.label}.private`),
    genKey: true,
    name: o.label,
  });
  const client = await NsregClient.start({
    config: { ...cfg, discoverZones: false, ...o.config },
    key,
    logger,
    openSource: () => Promise.resolve(staticSource(o.addresses.map(local))),
    ...(o.probeIntervalMs === undefined ? {} : { probeIntervalMs: o.probeIntervalMs }),
    ...(o.clock === undefined ? {} : { clock: o.clock }),
  });
  return { client, lines, count: (text) => lines.filter((l) => String(l['msg']).includes(text)).length };
}
