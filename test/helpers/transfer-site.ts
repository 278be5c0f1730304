/**
 * A small site for the store export/import tests: two zones (the second
 * allowing 3 records per name), claims with ED25519 keys, and a data
 * directory seeded through the daemon's own KeyStore and ZoneState.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseDaemonConfig, type DaemonConfig } from '../../src/config/daemon.js';
import { systemClock } from '../../src/clock.js';
import { Algorithm } from '../../src/dns/constants.js';
import { generateKeyPair, keyTag, publicKeyToRData } from '../../src/dns/keys.js';
import type { KeyRData } from '../../src/dns/types.js';
import { KeyStore } from '../../src/daemon/keydb/keystore.js';
import type { TransferName } from '../../src/daemon/store-transfer.js';
import { ZoneState } from '../../src/daemon/zonestate.js';

export const NOW = Date.now();
export const HOUR = 3600_000;
export const Z1 = 'dyn.example.org.';
export const Z2 = 'other.example.';

/** Makes configurations in one temporary directory; `cleanup` (for after()) removes it. */
export function siteConfigs(): { config: (more?: string) => DaemonConfig; cleanup: () => void } {
  const root = mkdtempSync(path.join(tmpdir(), 'nsregd-xfer-'));
  let dirs = 0;
  const zone = (max: number): string =>
    `    max-key-ttl: 720h\n    max-addr-ttl: 1h\n    allowed-nets: [127.0.0.0/8]\n    reserved-names: [ns]\n    max-records-per-name: ${max}\n    upstreams: [{ type: serve, listen-addr: 127.0.0.1 }]\n`;
  return {
    /** `more`: top-level YAML (a store: section). The file is written too, for the command line. */
    config(more = '') {
      const n = ++dirs;
      const text = `data-dir: ${path.join(root, `d${n}`)}\n${more}zones:\n  ${Z1}:\n${zone(16)}  ${Z2}:\n${zone(3)}`;
      const file = path.join(root, `d${n}.yaml`);
      writeFileSync(file, text, { mode: 0o600 });
      return parseDaemonConfig(text, file).config;
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}

export function newKey(): KeyRData {
  return publicKeyToRData(generateKeyPair(Algorithm.ED25519).publicKey, Algorithm.ED25519);
}

export function entry(zone: string, label: string, records: TransferName['records'] = [], rdata = newKey()): TransferName {
  return { zone, name: `${label}.${zone}`, rdata, keyTag: keyTag(rdata), expiry: NOW + 24 * HOUR, records };
}

type Rec = TransferName['records'][number];
export const A = (address: string, ttl = 60, expiresAt = NOW + HOUR): Rec => ({ type: 'A', address, ttl, expiresAt });
export const AAAA = (address: string, ttl = 60, expiresAt = NOW + HOUR): Rec => ({ type: 'AAAA', address, ttl, expiresAt });

/** The site: four names in two zones, five records. */
export const SITE: readonly TransferName[] = [
  entry(Z1, 'alpha', [A('192.0.2.1'), A('192.0.2.2', 300, NOW + 2 * HOUR), AAAA('2001:db8::1')]),
  entry(Z1, 'beta'),
  entry(Z1, 'gamma', [AAAA('2001:db8::5', 30)]),
  entry(Z2, 'delta', [A('198.51.100.7')]),
];

export function sorted(names: readonly TransferName[]): TransferName[] {
  return [...names].sort((a, b) => (a.zone + a.name < b.zone + b.name ? -1 : 1));
}

/**
 * Writes claims and records into a data dir through the daemon's own
 * classes; `extra` adds what an export leaves out (in the first zone): a
 * record without a claim, an expired claim, an expired record.
 */
export async function seed(c: DaemonConfig, names: readonly TransferName[], extra: { orphan?: string; expiredClaim?: string; expiredRecordOf?: string } = {}): Promise<void> {
  for (const zone of Object.keys(c.zones)) {
    const { store } = await KeyStore.open(c.dataDir, zone, systemClock);
    const { state } = await ZoneState.open(c.dataDir, zone, (err) => assert.fail(err));
    const live: Array<{ record: { name: string; type: 'A' | 'AAAA'; address: string; ttl: number }; expiresAt: number }> = [];
    state.setRecordSource(() => live, () => live.length);
    for (const n of names.filter((x) => x.zone === zone)) {
      assert.equal(await store.claim(n.name, n.rdata, n.expiry), 'claimed');
      await store.confirm(n.name);
      for (const r of n.records) {
        const record = { name: n.name, type: r.type, address: r.address, ttl: r.ttl };
        live.push({ record, expiresAt: r.expiresAt });
        state.recordInstalled(record, r.expiresAt);
      }
    }
    if (zone === Z1 && extra.orphan !== undefined) {
      const record = { name: `${extra.orphan}.${zone}`, type: 'A' as const, address: '192.0.2.99', ttl: 60 };
      live.push({ record, expiresAt: NOW + HOUR });
    }
    if (zone === Z1 && extra.expiredClaim !== undefined) {
      const name = `${extra.expiredClaim}.${zone}`;
      assert.equal(await store.claim(name, newKey(), NOW - 1000), 'claimed');
      await store.confirm(name);
    }
    if (zone === Z1 && extra.expiredRecordOf !== undefined) {
      live.push({ record: { name: `${extra.expiredRecordOf}.${zone}`, type: 'A', address: '192.0.2.98', ttl: 60 }, expiresAt: NOW - 1000 });
    }
    await state.close();
    await store.close();
  }
}
