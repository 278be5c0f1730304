/**
 * Moving a site between stores (README, "Moving between stores"):
 * `nsregd store export` writes every live claim and its records as JSON
 * lines, `nsregd store import` reads them into the store the configuration
 * names — files in data-dir, or etcd.
 *
 * The format: a header line `{"nsregd-store":1,"exported":"<RFC 3339>"}`,
 * then one line per claimed name:
 *
 *   {"zone":"dyn.example.org.","name":"host.dyn.example.org.",
 *    "key":{"flags":256,"protocol":3,"algorithm":13,"publicKey":"<base64>"},
 *    "keyTag":12345,"expiry":"<RFC 3339>",
 *    "records":[{"type":"A","address":"192.0.2.1","ttl":60,"expiresAt":"<RFC 3339>"}]}
 *
 * Import treats the file as hostile input: every line is checked (shape,
 * types, ranges, the key as a claim's key is checked, the name one
 * claimable label below a configured zone) before anything is written, and
 * a bad line stops the import with its line number. A name already claimed
 * in the target by another key is never overwritten: the import stops
 * before writing anything and names them (release them at the target with
 * `nsregd names release` first). A name claimed there by the same key is
 * left as it is, so an import can be run again.
 *
 * The files store is one process's: export and import hold the control
 * socket while they run, so they refuse to run beside a daemon, and a
 * daemon refuses to start while they run. Imported records are written as
 * withdrawn at a stop: the daemon's next start publishes them on every
 * upstream that does not keep records (Zone.restore/start). Into etcd,
 * each name is one transaction (claim only if absent, its deadlines, its
 * records, the serial, and a change for the publisher with its records'
 * adds), which a running site takes like a claim.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { Range, type IKeyValue, type Namespace } from 'etcd3';
import type { DaemonConfig, ZoneConfig } from '../config/daemon.js';
import type { Clock } from '../clock.js';
import { childLabel } from '../dns/names.js';
import type { KeyRData } from '../dns/types.js';
import { NsregError, errorMessage } from '../errors.js';
import { ControlCommandError, ControlServer } from './control.js';
import { KeyStore, keyDbPath } from './keydb/keystore.js';
import { formatRfc3339, parseRfc3339 } from './keydb/rfc3339.js';
import { claimableName } from './labels.js';
import { recordKey, type AddrRecord, type AddrType } from './records.js';
import type { SharedStore } from './shared/contract.js';
import {
  DEADLINES_PREFIX,
  KEYS_PREFIX,
  MAX_TTL,
  RECS_PREFIX,
  SERIAL_KEY,
  changeKey,
  claimKey,
  deadlinesKey,
  decodeClaim,
  decodeDeadlines,
  decodeRecord,
  encodeChange,
  encodeClaim,
  encodeDeadlines,
  encodeRecord,
  isCanonicalAddress,
  isCanonicalName,
  parseZoneKey,
  recordPath,
  recordSlot,
} from './shared/layout.js';
import type { StoredDeadlines } from './shared/contract.js';
import { readAtOneRevision } from './shared/reads.js';
import { ZoneState, type LoadedRecord } from './zonestate.js';

/** The format this nsregd writes and reads. */
export const TRANSFER_FORMAT = 1;
/** A line longer than this is refused: a name at the 4096-record bound takes about 400 KB. */
export const MAX_LINE_BYTES = 1024 * 1024;
/** Records written in one etcd transaction (etcd allows 128 operations in one by default; the first also writes the claim, the deadlines, the serial and a change). */
const RECORDS_PER_TXN = 100;
/** Claims written to the key database at once (their fsyncs are shared). */
const CLAIM_BATCH = 512;
/** Conflicting names listed in the error; the rest are counted. */
const MAX_LISTED = 50;

/** One record of a name, as the file carries it. */
export interface TransferRecord {
  readonly type: AddrType;
  readonly address: string;
  /** Seconds. */
  readonly ttl: number;
  /** ms since the epoch. */
  readonly expiresAt: number;
}

/** One claimed name with its key and records. */
export interface TransferName {
  /** Canonical FQDN. */
  readonly zone: string;
  /** Canonical FQDN, one label below the zone. */
  readonly name: string;
  readonly rdata: KeyRData;
  readonly keyTag: number;
  /** ms since the epoch. */
  readonly expiry: number;
  readonly records: readonly TransferRecord[];
}

/** What an export read. */
export interface ExportResult {
  /** Sorted by zone, then name; each name's records by type, then address. */
  readonly names: readonly TransferName[];
  /** What was left out, and why (expired claims and records, records without a claim, undecodable etcd values). */
  readonly notes: readonly string[];
}

export interface ImportResult {
  /** Names claimed by the import. */
  readonly imported: readonly string[];
  readonly records: number;
  /** Names already claimed in the target by the same key: left as they were. */
  readonly unchanged: readonly string[];
  readonly notes: readonly string[];
}

/** Why an export or import could not be carried out; nothing was written unless the message says so. */
export class StoreTransferError extends NsregError {
  readonly code = 'ERR_STORE_TRANSFER';
}

/** What store export/import needs of the etcd connection (openSharedStore in src/daemon/shared/etcd.ts opens one). */
export type EtcdAccess = Pick<SharedStore, 'zoneNamespace' | 'run'>;

// ---------------------------------------------------------------- the format

export function headerLine(now: number): string {
  return JSON.stringify({ 'nsregd-store': TRANSFER_FORMAT, exported: formatRfc3339(now) });
}

export function nameLine(n: TransferName): string {
  return JSON.stringify({
    zone: n.zone,
    name: n.name,
    key: { flags: n.rdata.flags, protocol: n.rdata.protocol, algorithm: n.rdata.algorithm, publicKey: n.rdata.publicKey.toString('base64') },
    keyTag: n.keyTag,
    expiry: formatRfc3339(n.expiry),
    records: n.records.map((r) => ({ type: r.type, address: r.address, ttl: r.ttl, expiresAt: formatRfc3339(r.expiresAt) })),
  });
}

/** The whole export: the header, then one line per name, each ending in a newline. */
export function formatTransfer(names: readonly TransferName[], now: number): string {
  return [headerLine(now), ...names.map(nameLine)].map((l) => `${l}\n`).join('');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Throws unless `v` has exactly these fields. */
function fields(v: unknown, what: string, names: readonly string[]): Record<string, unknown> {
  if (!isObject(v)) throw new Error(`${what} is not a JSON object`);
  const extra = Object.keys(v).filter((k) => !names.includes(k));
  if (extra.length > 0) throw new Error(`${what} has unknown field ${JSON.stringify(extra[0])}`);
  const missing = names.find((k) => !(k in v));
  if (missing !== undefined) throw new Error(`${what} has no ${JSON.stringify(missing)}`);
  return v;
}

function time(v: unknown, what: string): number {
  const ms = typeof v === 'string' ? parseRfc3339(v) : undefined;
  if (ms === undefined) throw new Error(`${what} is not an RFC 3339 time`);
  return ms;
}

function parseRecord(v: unknown, i: number): TransferRecord {
  const what = `records[${i}]`;
  const o = fields(v, what, ['type', 'address', 'ttl', 'expiresAt']);
  const { type, address, ttl } = o;
  if (type !== 'A' && type !== 'AAAA') throw new Error(`${what}.type is not A or AAAA`);
  if (typeof address !== 'string' || !isCanonicalAddress(type, address)) throw new Error(`${what}.address is not an ${type} address in canonical form`);
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > MAX_TTL) throw new Error(`${what}.ttl is not a TTL (0 to ${MAX_TTL} seconds)`);
  return { type, address, ttl, expiresAt: time(o.expiresAt, `${what}.expiresAt`) };
}

function parseName(v: unknown, zones: Readonly<Record<string, ZoneConfig>>): TransferName {
  const o = fields(v, 'the line', ['zone', 'name', 'key', 'keyTag', 'expiry', 'records']);
  const { zone, name } = o;
  if (typeof zone !== 'string' || !isCanonicalName(zone)) throw new Error('zone is not a domain name in canonical form (lower case, trailing dot)');
  const zc = zones[zone];
  if (zc === undefined) throw new Error(`zone ${zone} is not configured here`);
  if (typeof name !== 'string' || !isCanonicalName(name)) throw new Error('name is not a domain name in canonical form (lower case, trailing dot)');
  const label = childLabel(name, zone);
  if (label === undefined) throw new Error(`name ${name} is not one label below ${zone}`);
  if (!claimableName(name, zone, zc.labelSyntax)) throw new Error(`name ${name} is not a claimable label (label-syntax: ${zc.labelSyntax})`);
  if (zc.reservedNames.includes(label)) throw new Error(`name ${name} is reserved in ${zone} (reserved-names)`);
  const key = fields(o.key, 'key', ['flags', 'protocol', 'algorithm', 'publicKey']);
  const expiry = time(o.expiry, 'expiry');
  // The same checks as a claim read from etcd: ranges, canonical base64, the key tag, the key's cost bounds.
  const claim = decodeClaim(JSON.stringify({ flags: key.flags, protocol: key.protocol, algorithm: key.algorithm, key: key.publicKey, tag: o.keyTag }));
  if (!claim.ok) throw new Error(`key: ${claim.reason}`);
  if (!Array.isArray(o.records)) throw new Error('records is not a list');
  if (o.records.length > zc.maxRecordsPerName) throw new Error(`${o.records.length} records; ${zone} allows ${zc.maxRecordsPerName} per name (max-records-per-name)`);
  const records = (o.records as unknown[]).map(parseRecord);
  const seen = new Set<string>();
  for (const r of records) {
    const k = `${r.type} ${r.address}`;
    if (seen.has(k)) throw new Error(`record ${k} is given twice`);
    seen.add(k);
  }
  return { zone, name, rdata: claim.value.rdata, keyTag: claim.value.keyTag, expiry, records };
}

/**
 * Reads an export (`source` names it in errors). Every line is checked
 * before any is used; the first bad one throws StoreTransferError naming
 * its line number. Names must lie in `zones`, each at most once.
 */
export function parseTransfer(text: string, source: string, zones: Readonly<Record<string, ZoneConfig>>): TransferName[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const fail = (n: number, why: string): never => {
    throw new StoreTransferError(`${source}: line ${n}: ${why}; nothing imported`);
  };
  const json = (line: string, n: number): unknown => {
    if (Buffer.byteLength(line) > MAX_LINE_BYTES) fail(n, `longer than ${MAX_LINE_BYTES} octets`);
    try {
      return JSON.parse(line) as unknown;
    } catch {
      return fail(n, 'not JSON');
    }
  };
  if (lines.length === 0) fail(1, 'empty: no header');
  const header = json(lines[0] ?? '', 1);
  try {
    const h = fields(header, 'the header', ['nsregd-store', 'exported']);
    if (h['nsregd-store'] !== TRANSFER_FORMAT) throw new Error(`format ${JSON.stringify(h['nsregd-store'])} is not one this nsregd reads (${TRANSFER_FORMAT})`);
    time(h.exported, 'exported');
  } catch (err) {
    fail(1, `not an nsregd store export header: ${errorMessage(err)}`);
  }
  const out: TransferName[] = [];
  const lineOf = new Map<string, number>();
  for (let i = 1; i < lines.length; i++) {
    const n = i + 1;
    let entry: TransferName;
    try {
      entry = parseName(json(lines[i] ?? '', n), zones);
    } catch (err) {
      if (err instanceof StoreTransferError) throw err;
      return fail(n, errorMessage(err));
    }
    const first = lineOf.get(entry.name);
    if (first !== undefined) fail(n, `${entry.name} is on line ${first} already`);
    lineOf.set(entry.name, n);
    out.push(entry);
  }
  return out;
}

function sameKey(a: KeyRData, b: KeyRData): boolean {
  return a.flags === b.flags && a.protocol === b.protocol && a.algorithm === b.algorithm && a.publicKey.equals(b.publicKey);
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** An export's order: by zone, then name; each name's records by type, then address (as text). */
function exportOrder(names: TransferName[]): TransferName[] {
  return names
    .map((n) => ({ ...n, records: [...n.records].sort((a, b) => compare(a.type, b.type) || compare(a.address, b.address)) }))
    .sort((a, b) => compare(a.zone, b.zone) || compare(a.name, b.name));
}

function groupByZone(names: readonly TransferName[]): Map<string, TransferName[]> {
  const out = new Map<string, TransferName[]>();
  for (const n of names) {
    let list = out.get(n.zone);
    if (list === undefined) out.set(n.zone, (list = []));
    list.push(n);
  }
  return out;
}

function conflictError(conflicts: readonly string[], what: string): StoreTransferError {
  const listed = conflicts.slice(0, MAX_LISTED).join(', ');
  const more = conflicts.length > MAX_LISTED ? ` and ${conflicts.length - MAX_LISTED} more` : '';
  return new StoreTransferError(
    `${conflicts.length} name(s) ${what} claimed by another key in the target store: ${listed}${more}; ` +
      'nothing imported (release them there with `nsregd names release` first, or leave them out of the file)',
  );
}

/** Live records of a name, as kept in a zone's state or in etcd. */
function transferRecord(r: AddrRecord, expiresAt: number): TransferRecord {
  return { type: r.type, address: r.address, ttl: r.ttl, expiresAt };
}

// ---------------------------------------------------------------- the files store

/**
 * Runs `fn` while holding the control socket: refuses when a daemon
 * answers on it (the files store is one process's), and keeps a daemon
 * from starting meanwhile (it finds the socket answered).
 */
export async function withDataDirHeld<T>(config: DaemonConfig, what: string, logger: Logger, fn: () => Promise<T>): Promise<T> {
  let control: ControlServer;
  try {
    control = await ControlServer.open(
      config.controlSocket,
      () => Promise.reject(new ControlCommandError('failed', `nsregd store ${what} is running on this data directory; no daemon is`)),
      logger,
    );
  } catch (err) {
    if (err instanceof ControlCommandError && /answers on/.test(err.message)) {
      throw new StoreTransferError(
        `a daemon is running on ${config.dataDir} (it answers on ${config.controlSocket}); stop it first: the files store is used by one process at a time`,
        { cause: err },
      );
    }
    throw new StoreTransferError(`cannot hold the control socket ${config.controlSocket}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    return await fn();
  } finally {
    await control.close();
  }
}

interface OpenedZone {
  readonly zone: string;
  readonly keys: KeyStore;
  readonly state: ZoneState;
  readonly records: LoadedRecord[];
  readonly notes: string[];
}

async function openZone(config: DaemonConfig, zone: string, clock: Clock): Promise<OpenedZone> {
  const notes: string[] = [];
  const opened = await KeyStore.open(config.dataDir, zone, clock, {
    onBackgroundError: (err) => notes.push(`${zone}: key database: ${errorMessage(err)}`),
  });
  notes.push(...opened.warnings, ...opened.errors);
  try {
    const { state, loaded } = await ZoneState.open(config.dataDir, zone, (err) => notes.push(`${zone}: state file: ${errorMessage(err)}`));
    notes.push(...loaded.warnings, ...loaded.errors);
    return { zone, keys: opened.store, state, records: loaded.records, notes };
  } catch (err) {
    await opened.store.close();
    throw err;
  }
}

async function closeZone(z: OpenedZone): Promise<void> {
  try {
    await z.state.close();
  } finally {
    await z.keys.close();
  }
}

/** Every live claim and record of the configured zones in data-dir. */
export async function exportFiles(config: DaemonConfig, clock: Clock, logger: Logger): Promise<ExportResult> {
  return withDataDirHeld(config, 'export', logger, async () => {
    const now = clock.now();
    const names: TransferName[] = [];
    const notes: string[] = [];
    for (const zone of Object.keys(config.zones).sort()) {
      // A zone that never ran here has no files: nothing to open (opening would create them).
      if (!existsSync(keyDbPath(config.dataDir, zone)) && !existsSync(ZoneState.fileFor(config.dataDir, zone))) continue;
      const z = await openZone(config, zone, clock);
      try {
        notes.push(...z.notes);
        const recordsOf = new Map<string, TransferRecord[]>();
        let expiredRecords = 0;
        for (const { record, expiresAt } of z.records) {
          if (expiresAt <= now) {
            expiredRecords++;
            continue;
          }
          let list = recordsOf.get(record.name);
          if (list === undefined) recordsOf.set(record.name, (list = []));
          list.push(transferRecord(record, expiresAt));
        }
        let expiredClaims = 0;
        for (const key of z.keys.keys()) {
          const records = recordsOf.get(key.name) ?? [];
          recordsOf.delete(key.name);
          if (key.expiry <= now) {
            expiredClaims++;
            continue;
          }
          names.push({ zone, name: key.name, rdata: key.rdata, keyTag: key.keyTag, expiry: key.expiry, records });
        }
        if (expiredClaims > 0) notes.push(`${zone}: ${expiredClaims} expired claim(s) left out`);
        if (expiredRecords > 0) notes.push(`${zone}: ${expiredRecords} expired record(s) left out`);
        const orphans = [...recordsOf.keys()];
        if (orphans.length > 0) notes.push(`${zone}: records of ${orphans.length} name(s) without a claim left out: ${orphans.slice(0, MAX_LISTED).join(', ')}`);
      } finally {
        await closeZone(z);
      }
    }
    return { names: exportOrder(names), notes };
  });
}

/**
 * Imports `names` into data-dir: each name claimed and confirmed in its
 * zone's key database, its records written as withdrawn at a stop (so the
 * daemon's next start publishes them). Refuses, writing nothing, when a
 * name is claimed there by another key (or locked).
 */
export async function importFiles(config: DaemonConfig, names: readonly TransferName[], clock: Clock, logger: Logger): Promise<ImportResult> {
  return withDataDirHeld(config, 'import', logger, async () => {
    const zones: OpenedZone[] = [];
    try {
      const byZone = groupByZone(names);
      for (const zone of [...byZone.keys()].sort()) zones.push(await openZone(config, zone, clock));
      const conflicts: string[] = [];
      const unchanged: string[] = [];
      const todo = new Map<OpenedZone, TransferName[]>();
      for (const z of zones) {
        const list: TransferName[] = [];
        for (const n of byZone.get(z.zone) ?? []) {
          const held = z.keys.get(n.name);
          if (held === undefined) list.push(n);
          else if (held.keyTag === n.keyTag && sameKey(held.rdata, n.rdata)) unchanged.push(n.name);
          else conflicts.push(n.name);
        }
        todo.set(z, list);
      }
      if (conflicts.length > 0) throw conflictError(conflicts, 'are');
      const imported: string[] = [];
      let records = 0;
      for (const [z, list] of todo) {
        // The state file keeps what it loaded and what is imported (there is no record cache here).
        const live = new Map(z.records.map((r) => [recordKey(r.record), r]));
        z.state.setRecordSource(() => live.values(), () => live.size);
        for (let i = 0; i < list.length; i += CLAIM_BATCH) {
          const batch = list.slice(i, i + CLAIM_BATCH);
          await Promise.all(
            batch.map(async (n) => {
              if ((await z.keys.claim(n.name, n.rdata, n.expiry)) !== 'claimed') throw new StoreTransferError(`${n.name} was claimed meanwhile`);
              await z.keys.confirm(n.name);
            }),
          );
          for (const n of batch) {
            for (const r of n.records) {
              const record: AddrRecord = { name: n.name, type: r.type, address: r.address, ttl: r.ttl };
              // Withdrawn: the next start publishes it on every upstream that does not keep records.
              live.set(recordKey(record), { record, expiresAt: r.expiresAt, withdrawn: true });
              z.state.recordWithdrawn(record, r.expiresAt);
              records++;
            }
            imported.push(n.name);
          }
        }
      }
      return { imported, records, unchanged, notes: zones.flatMap((z) => z.notes) };
    } finally {
      for (const z of zones) await closeZone(z);
    }
  });
}

// ---------------------------------------------------------------- the etcd store

/** Every key and value under `prefix` of `ns` at one revision (the first page's unless given), page by page. */
async function rangeAll(
  store: EtcdAccess,
  ns: Namespace,
  prefix: string,
  revision?: string,
): Promise<{ revision: string; kvs: Array<{ key: string; value: Buffer }> }> {
  const kvs: Array<{ key: string; value: Buffer }> = [];
  const each = (kv: IKeyValue): void => void kvs.push({ key: kv.key.toString('utf8'), value: kv.value });
  const at = await readAtOneRevision(ns, (what, op) => store.run(what, op), `read ${prefix}`, Range.prefix(prefix), 1000, each, undefined, revision === undefined ? undefined : BigInt(revision));
  return { revision: at.toString(), kvs };
}

/**
 * Every live claim and record of the configured zones in etcd (one
 * consistent read per zone): claims from keys/, records from recs/, their
 * deadlines from until/.
 */
export async function exportEtcd(store: EtcdAccess, config: DaemonConfig, now: number): Promise<ExportResult> {
  const names: TransferName[] = [];
  const notes: string[] = [];
  for (const zone of Object.keys(config.zones).sort()) {
    const ns = store.zoneNamespace(zone);
    const claims = await rangeAll(store, ns, KEYS_PREFIX);
    const recs = await rangeAll(store, ns, RECS_PREFIX, claims.revision);
    const until = await rangeAll(store, ns, DEADLINES_PREFIX, claims.revision);
    const deadlinesOf = new Map<string, StoredDeadlines>();
    for (const { key, value } of until.kvs) {
      const k = parseZoneKey(key);
      const v = decodeDeadlines(value);
      if (k?.kind !== 'deadlines' || !v.ok) {
        notes.push(`${zone}: ${key}: ${v.ok ? 'not a deadlines key' : v.reason}; left out`);
        continue;
      }
      deadlinesOf.set(k.name, v.value);
    }
    const recordsOf = new Map<string, TransferRecord[]>();
    let skipped = 0;
    let expiredRecords = 0;
    for (const { key, value } of recs.kvs) {
      const k = parseZoneKey(key);
      const v = decodeRecord(value);
      if (k?.kind !== 'record' || !v.ok) {
        notes.push(`${zone}: ${key}: ${v.ok ? 'not a record key' : v.reason}; left out`);
        skipped++;
        continue;
      }
      const expiresAt = deadlinesOf.get(k.name)?.records.get(recordSlot(k));
      if (expiresAt === undefined) {
        notes.push(`${zone}: ${key}: no deadline in ${deadlinesKey(k.name)}; left out`);
        skipped++;
        continue;
      }
      if (expiresAt <= now) {
        expiredRecords++;
        continue;
      }
      let list = recordsOf.get(k.name);
      if (list === undefined) recordsOf.set(k.name, (list = []));
      list.push({ type: k.type, address: k.address, ttl: v.value.ttl, expiresAt });
    }
    let expiredClaims = 0;
    for (const { key, value } of claims.kvs) {
      const k = parseZoneKey(key);
      const v = decodeClaim(value);
      if (k?.kind !== 'claim' || !v.ok) {
        notes.push(`${zone}: ${key}: ${v.ok ? 'not a claim key' : v.reason}; left out`);
        continue;
      }
      const records = recordsOf.get(k.name) ?? [];
      recordsOf.delete(k.name);
      const expiry = deadlinesOf.get(k.name)?.expiry;
      if (expiry === undefined) {
        notes.push(`${zone}: ${key}: no deadlines in ${deadlinesKey(k.name)}; left out`);
        continue;
      }
      if (expiry <= now) {
        expiredClaims++;
        continue;
      }
      names.push({ zone, name: k.name, rdata: v.value.rdata, keyTag: v.value.keyTag, expiry, records });
    }
    if (expiredClaims > 0) notes.push(`${zone}: ${expiredClaims} expired claim(s) left out`);
    if (expiredRecords > 0) notes.push(`${zone}: ${expiredRecords} expired record(s) left out`);
    const orphans = [...recordsOf.keys()];
    if (orphans.length > 0) notes.push(`${zone}: records of ${orphans.length} name(s) without a claim left out: ${orphans.slice(0, MAX_LISTED).join(', ')}`);
    if (skipped > 0) notes.push(`${zone}: ${skipped} undecodable record(s) left out`);
  }
  return { names: exportOrder(names), notes };
}

/**
 * The zone's serial base: what `serial` holds, written first (the Unix
 * time in seconds, only if still absent) when the zone was never used.
 */
async function serialBase(store: EtcdAccess, ns: Namespace, now: number): Promise<string> {
  await store.run('serial', () => ns.if(SERIAL_KEY, 'Create', '==', 0).then(ns.put(SERIAL_KEY).value(String(Math.floor(now / 1000) >>> 0))).commit());
  const value = await store.run('serial', () => ns.get(SERIAL_KEY).string());
  return value ?? String(Math.floor(now / 1000) >>> 0);
}

/**
 * Imports `names` into etcd, one transaction per name: the claim only if
 * the name is unclaimed, its records, the serial, and a change with the
 * records' adds for the zone's publisher. Refuses, writing nothing, when a
 * name is claimed there by another key; a name claimed by another key
 * between that check and its transaction is reported after the others
 * were imported.
 */
export async function importEtcd(store: EtcdAccess, names: readonly TransferName[], now: number, by: string): Promise<ImportResult> {
  const byZone = groupByZone(names);
  const conflicts: string[] = [];
  const unchanged = new Set<string>();
  const notes: string[] = [];
  for (const [zone, list] of byZone) {
    const ns = store.zoneNamespace(zone);
    const held = new Map<string, Buffer>();
    for (const { key, value } of (await rangeAll(store, ns, KEYS_PREFIX)).kvs) held.set(key, value);
    for (const n of list) {
      const value = held.get(claimKey(n.name));
      if (value === undefined) continue;
      const claim = decodeClaim(value);
      if (claim.ok && sameKey(claim.value.rdata, n.rdata)) unchanged.add(n.name);
      else conflicts.push(n.name);
    }
  }
  if (conflicts.length > 0) throw conflictError(conflicts, 'are');
  const imported: string[] = [];
  const lost: string[] = [];
  let records = 0;
  for (const [zone, list] of byZone) {
    const ns = store.zoneNamespace(zone);
    const base = await serialBase(store, ns, now);
    for (const n of list) {
      if (unchanged.has(n.name)) continue;
      const all: AddrRecord[] = n.records.map((r) => ({ name: n.name, type: r.type, address: r.address, ttl: r.ttl }));
      // Records change the published data: the serial is touched and the publisher gets their adds.
      const puts = (chunk: readonly AddrRecord[]): Array<ReturnType<Namespace['put']>> =>
        chunk.length === 0
          ? []
          : [
              ...chunk.map((r) => ns.put(recordPath(r)).value(encodeRecord({ ttl: r.ttl }))),
              ns.put(SERIAL_KEY).value(base),
              ns.put(changeKey(randomUUID())).value(encodeChange({ change: { add: chunk, remove: [], removeNames: [] }, by, at: now })),
            ];
      const first = all.slice(0, RECORDS_PER_TXN);
      const claim = encodeClaim({ rdata: n.rdata, keyTag: n.keyTag });
      // Every record's deadline, those of later transactions included (they follow while the claim is this one).
      const deadlines = encodeDeadlines({ expiry: n.expiry, records: new Map(n.records.map((r) => [recordSlot(r), r.expiresAt])) });
      const res = await store.run(`import ${n.name}`, () =>
        ns
          .if(claimKey(n.name), 'Create', '==', 0)
          .then(ns.put(claimKey(n.name)).value(claim), ns.put(deadlinesKey(n.name)).value(deadlines), ...puts(first))
          .else(ns.get(claimKey(n.name)))
          .commit(),
      );
      if (!res.succeeded) {
        lost.push(n.name);
        continue;
      }
      // A name with more records than one transaction takes: the rest while the claim is still this one.
      const created = res.header.revision;
      for (let i = RECORDS_PER_TXN; i < all.length; i += RECORDS_PER_TXN) {
        const more = await store.run(`import ${n.name}`, () =>
          ns
            .if(claimKey(n.name), 'Create', '==', created)
            .then(...puts(all.slice(i, i + RECORDS_PER_TXN)))
            .commit(),
        );
        if (!more.succeeded) {
          notes.push(`${n.name}: released at the target while its records were written; ${i} of ${all.length} records imported`);
          break;
        }
      }
      imported.push(n.name);
      records += all.length;
    }
  }
  if (lost.length > 0) {
    throw new StoreTransferError(
      `${lost.length} name(s) were claimed at the target while the import ran and are not imported: ${lost.slice(0, MAX_LISTED).join(', ')}; ` +
        `the other ${imported.length} name(s) with ${records} record(s) were imported`,
    );
  }
  return { imported, records, unchanged: [...unchanged], notes };
}
