/**
 * The request handler wired to in-memory parts (key store, real record
 * cache, fake upstreams, fake clock): for handler unit tests and fuzzing.
 */
import { strict as assert } from 'node:assert';
import { pino } from 'pino';
import { Cidr } from '../../src/net/address.js';
import type { ZoneConfig } from '../../src/config/daemon.js';
import { RecordCache } from '../../src/daemon/cache.js';
import { handleMessage, type HandlerContext } from '../../src/daemon/handler.js';
import { Zone } from '../../src/daemon/zone.js';
import { decodeMessage, type DecodedMessage } from '../../src/dns/message.js';
import { FakeClock } from './fake-clock.js';
import { FakeUpstream } from './fake-upstream.js';
import { MemoryKeyStore } from './memory-keystore.js';

export const LAB_ZONE = 'dynamic.example.org.';
export const LAB_REMOTE = '192.0.2.7';

export function labZoneConfig(over: Partial<ZoneConfig> = {}): ZoneConfig {
  return {
    name: LAB_ZONE,
    maxKeyTtl: 30 * 24 * 3600_000,
    maxAddrTtl: 3600_000,
    reservedNames: ['www', 'ns'],
    allowedNets: ['192.0.2.0/24', '2001:db8::/32'].map((c) => Cidr.parse(c) as Cidr),
    allowAnyAddr: false,
    labelSyntax: 'hostname',
    upstreams: [],
    disabledUpstreams: 0,
    maxRecordsPerName: 16,
    ...over,
  };
}

export interface HandlerLab {
  ctx: HandlerContext;
  zone: Zone;
  keys: MemoryKeyStore;
  cache: RecordCache;
  upstreams: FakeUpstream[];
  clock: FakeClock;
  /** Unix seconds of the lab clock at creation. */
  now: number;
  send(raw: Buffer, remote?: string): Promise<DecodedMessage>;
}

export function handlerLab(opts: { zone?: Partial<ZoneConfig>; upstreams?: number; start?: number } = {}): HandlerLab {
  const clock = new FakeClock(opts.start ?? Date.UTC(2026, 10, 22, 12));
  const keys = new MemoryKeyStore();
  const cache = new RecordCache();
  const upstreams = Array.from({ length: opts.upstreams ?? 1 }, (_, i) => new FakeUpstream(`fake${i}`));
  const logger = pino({ level: 'silent' });
  const zone = new Zone(labZoneConfig(opts.zone), keys, cache, upstreams, logger, clock);
  const ctx: HandlerContext = {
    zones: new Map([[LAB_ZONE, zone]]),
    listenAddr: 'nsregd.example.org',
    listenPort: 8053,
    clock,
    logger,
  };
  return {
    ctx,
    zone,
    keys,
    cache,
    upstreams,
    clock,
    now: Math.floor(clock.now() / 1000),
    async send(raw, remote = LAB_REMOTE) {
      const out = await handleMessage(raw, remote, ctx);
      assert.ok(out.reply, 'expected a reply');
      return decodeMessage(out.reply);
    },
  };
}
