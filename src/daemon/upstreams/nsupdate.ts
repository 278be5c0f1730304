/**
 * `type: nsupdate`: RFC 2136 UPDATEs, signed with TSIG (RFC 8945), sent to
 * an authoritative server; PTRs for configured reverse zones follow in
 * separate UPDATEs once the forward update succeeded.
 *
 * Reconciliation (`reconcile-interval`, default 1 h, 0 off): once per
 * interval every live record is sent again as an addition — idempotent at
 * the server (RFC 2136 §3.4.2.2: an RR already present is not added twice)
 * — in batches of at most RECONCILE_BATCH records spread evenly over the
 * interval, through the same update path (split to the message size), so a
 * zone restored from an old file converges (README, "Running nsregd").
 */
import { randomInt } from 'node:crypto';

import type { NsupdateUpstreamConfig } from '../../config/upstreams/index.js';
import { RRClass, Rcode, rcodeName } from '../../dns/constants.js';
import { TransportError, TsigError } from '../../dns/errors.js';
import { decodeMessage, encodeMessage, encodingLength, recordLength, type ResourceRecord } from '../../dns/message.js';
import { exchange, MAX_TCP_MESSAGE, TcpSession } from '../../net/transport.js';
import { signTsig, tsigLength, verifyTsigResponse, type TsigKey } from '../../dns/tsig.js';
import { formatHostPort } from '../../net/address.js';
import { addRecord, buildUpdate, deleteRecord, deleteRRset, prereqNameNotInUse } from '../../dns/update.js';
import { unixSeconds } from '../../clock.js';
import { recordKey, toResourceRecord, type AddrRecord, type UpstreamChange } from '../records.js';
import { reverseName, reverseZoneFor } from '../reverse.js';
import { filterChange, filterRecords } from './filter.js';
import { RepublishGuard } from './republish.js';
import type { TimerHandle } from '../../clock.js';
import { NameInUseError, UpstreamError, type Upstream, type UpstreamContext } from './upstream.js';

/**
 * Largest UPDATE we send over UDP. We send no OPT record, so RFC 1035
 * §4.2.1's 512 octets is the only size every server must accept; relying on
 * EDNS (RFC 6891 §6.2.5, 1232 as DNS Flag Day 2020 suggests) would need the
 * server to advertise its buffer first. Splitting keeps big batches correct
 * either way, it only costs more round trips.
 */
export const MAX_UDP_UPDATE = 512;

/** Records per reconciliation batch (one apply: a few UPDATE messages). */
export const RECONCILE_BATCH = 100;

/** How an UPDATE reaches the server (src/net/transport.ts's exchange; tests capture it). */
export type UpdateTransport = typeof exchange;

/** RFC 1035 §4.2.2: the TCP length prefix caps a message at 65535 octets. */
export const MAX_TCP_UPDATE = MAX_TCP_MESSAGE;

/** The update failed with a non-NOERROR rcode (RFC 2136 §2.2). */
export class UpstreamRcodeError extends UpstreamError {
  constructor(
    upstream: string,
    readonly rcode: number,
    message: string,
  ) {
    super(upstream, message);
  }
}

/**
 * Splits update RRs into consecutive groups whose UPDATE for `zone`, plus
 * `overhead` octets (the TSIG RR added after encoding), fits in `limit`.
 * Order is kept, so deletions placed before additions stay before them
 * across messages. A single RR too large for the limit gets a group of its
 * own (the caller sends that one over TCP).
 */
export function splitUpdate(zone: string, updates: readonly ResourceRecord[], limit: number, overhead: number): ResourceRecord[][] {
  // Measured, not encoded: header and zone section, then each RR.
  const base = encodingLength(buildUpdate({ id: 0, zone })) + overhead;
  const groups: ResourceRecord[][] = [];
  let current: ResourceRecord[] = [];
  let size = base;
  for (const rr of updates) {
    const len = recordLength(rr);
    if (current.length > 0 && size + len > limit) {
      groups.push(current);
      current = [];
      size = base;
    }
    current.push(rr);
    size += len;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Octets a TSIG RR adds to a message signed with `key` (fixed for a given key). */
export function tsigOverhead(key: TsigKey): number {
  return tsigLength(key);
}

/**
 * The forward update section of a change: removed names, then single
 * deletions, then additions. A removed name loses its A and AAAA RRsets
 * (RFC 2136 §2.5.2), never every RRset (§2.5.3): nsregd manages addresses
 * only, and the name may hold the operator's TXT, MX or NS records.
 */
export function forwardUpdates(change: UpstreamChange): ResourceRecord[] {
  return [
    ...change.removeNames.flatMap((n) => [deleteRRset(n.name, 'A'), deleteRRset(n.name, 'AAAA')]),
    ...change.remove.map((r) => deleteRecord(toResourceRecord(r))),
    ...change.add.map((r) => addRecord(toResourceRecord(r))),
  ];
}

function ptr(r: AddrRecord, owner: string): ResourceRecord {
  return { name: owner, type: 'PTR', class: RRClass.IN, ttl: r.ttl, data: r.name };
}

/**
 * PTR updates per reverse zone: removals (class NONE with the rdata, RFC
 * 2136 §2.5.4) for removed records and for every address of a removed name,
 * then additions. Addresses outside every reverse zone are left out.
 */
export function reverseUpdates(change: UpstreamChange, zones: readonly string[]): Map<string, ResourceRecord[]> {
  const out = new Map<string, { deletes: ResourceRecord[]; adds: ResourceRecord[] }>();
  const place = (r: AddrRecord, kind: 'deletes' | 'adds'): void => {
    const zone = reverseZoneFor(r.address, zones);
    const owner = reverseName(r.address);
    if (zone === undefined || owner === undefined) return;
    let entry = out.get(zone);
    if (entry === undefined) {
      entry = { deletes: [], adds: [] };
      out.set(zone, entry);
    }
    const rr = ptr(r, owner);
    entry[kind].push(kind === 'deletes' ? deleteRecord(rr) : addRecord(rr));
  };
  for (const n of change.removeNames) for (const r of n.addresses) place(r, 'deletes');
  for (const r of change.remove) place(r, 'deletes');
  for (const r of change.add) place(r, 'adds');
  const result = new Map<string, ResourceRecord[]>();
  for (const [zone, e] of out) result.set(zone, [...e.deletes, ...e.adds]);
  return result;
}

function hostPort(host: string, port: number): string {
  return formatHostPort(host, port);
}

function countChange(c: UpstreamChange): { add: number; remove: number; removeNames: number } {
  return { add: c.add.length, remove: c.remove.length, removeNames: c.removeNames.length };
}

class NsupdateUpstream implements Upstream {
  readonly description: string;
  readonly keepRecords: boolean;
  readonly #config: NsupdateUpstreamConfig;
  readonly #ctx: UpstreamContext;
  readonly #key: TsigKey;
  readonly #overhead: number;
  readonly #send: UpdateTransport;
  readonly #guard: RepublishGuard;
  #timer: TimerHandle | undefined;
  #closed = false;
  /** The reused TCP connection to the server (RFC 7766 §6.2.1), when no transport was given. */
  readonly #session: TcpSession | undefined;

  constructor(config: NsupdateUpstreamConfig, ctx: UpstreamContext, send: UpdateTransport | undefined) {
    this.#config = config;
    this.#ctx = ctx;
    if (send === undefined) {
      // One connection carries every TCP update and probe (protect-existing), instead of one each.
      const session = new TcpSession({ host: config.hostname, port: config.port });
      this.#session = session;
      this.#send = async (o) =>
        o.tcp ? { reply: await session.exchange(o.message, o.timeoutMs), transport: 'tcp' as const } : exchange(o);
    } else {
      this.#send = send;
    }
    this.keepRecords = config.keepRecords;
    this.description = `nsupdate ${hostPort(config.hostname, config.port)} (zone ${config.zone ?? '-'})`;
    this.#key = {
      name: config.tsigName,
      algorithm: `${config.tsigAlgorithm}.`,
      secret: Buffer.from(config.tsigSecret, 'base64'),
    };
    this.#overhead = tsigOverhead(this.#key);
    this.#guard = new RepublishGuard(() => ctx.allLiveRecords());
  }

  start(): Promise<void> {
    if (this.#config.reconcileInterval > 0) this.#later(this.#config.reconcileInterval, () => this.#round());
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#session?.close();
    return Promise.resolve();
  }

  #later(ms: number, fn: () => void): void {
    if (this.#closed) return;
    this.#timer = this.#ctx.clock.schedule(ms, () => {
      this.#timer = undefined;
      if (!this.#closed) fn();
    });
  }

  /** One reconciliation round: the live records now, in batches spaced interval / batches apart. */
  #round(): void {
    const records = filterRecords(this.#ctx.allLiveRecords(), this.#config);
    const batches: AddrRecord[][] = [];
    for (let i = 0; i < records.length; i += RECONCILE_BATCH) batches.push(records.slice(i, i + RECONCILE_BATCH));
    const interval = this.#config.reconcileInterval;
    const spacing = Math.max(1, Math.floor(interval / Math.max(1, batches.length)));
    const tally = { records: 0, batches: batches.length, failed: 0, started: this.#ctx.clock.now() };
    const next = (i: number): void => {
      if (i >= batches.length) {
        const fields = { upstream: this.description, records: tally.records, batches: tally.batches, failedBatches: tally.failed, ms: this.#ctx.clock.now() - tally.started };
        if (tally.failed > 0) this.#ctx.logger.warn(fields, 'reconciliation round done; failed batches are sent again next round');
        else this.#ctx.logger.info(fields, 'reconciliation round done');
        this.#later(batches.length === 0 ? interval : spacing, () => this.#round());
        return;
      }
      void this.#reconcile(batches[i] ?? []).then(
        (sent) => {
          tally.records += sent;
        },
        (err: unknown) => {
          tally.failed++;
          this.#ctx.logger.debug({ upstream: this.description, err }, 'reconciliation batch failed');
        },
      ).then(() => {
        if (i + 1 >= batches.length) next(i + 1);
        else this.#later(spacing, () => next(i + 1));
      });
    };
    next(0);
  }

  /** Sends a batch again, minus what stopped being live since the round began; resolves to the records sent. */
  #reconcile(batch: readonly AddrRecord[]): Promise<number> {
    return this.#guard.serial(async () => {
      const live = new Set<string>();
      for (const name of new Set(batch.map((r) => r.name))) for (const r of this.#ctx.liveRecords(name)) live.add(recordKey(r));
      const add = this.#guard.notRemoved(batch.filter((r) => live.has(recordKey(r))));
      if (add.length > 0) await this.#update({ add, remove: [], removeNames: [] });
      return add.length;
    });
  }

  /**
   * `protect-existing`: a name holding any record at all (RFC 2136 §2.4.5
   * "name is in use") may not be claimed. Asked as an UPDATE carrying only
   * that prerequisite, so the primary answers authoritatively, signed, and
   * changes nothing; YXDOMAIN means in use.
   */
  async checkUnused(name: string): Promise<void> {
    const zone = this.#config.zone;
    if (!this.#config.protectExisting || zone === null) return;
    try {
      await this.#sendOne(zone, [], [prereqNameNotInUse(name)]);
    } catch (err) {
      if (err instanceof UpstreamRcodeError && err.rcode === Rcode.YXDOMAIN) {
        throw new NameInUseError(this.description, name);
      }
      throw err;
    }
  }

  apply(change: UpstreamChange): Promise<void> {
    return this.#guard.serial(async () => {
      await this.#update(change);
      this.#guard.applied(change);
    });
  }

  async #update(change: UpstreamChange): Promise<void> {
    const filtered = filterChange(change, this.#config);
    const log = this.#ctx.logger;
    if (filtered.add.length === 0 && filtered.remove.length === 0 && filtered.removeNames.length === 0) {
      log.debug({ upstream: this.description }, 'nothing to send after filtering');
      return;
    }
    const zone = this.#config.zone;
    if (zone !== null) {
      const messages = await this.#sendAll(zone, forwardUpdates(filtered));
      log.debug({ upstream: this.description, zone, messages, ...countChange(filtered) }, 'forward update accepted');
    }
    if (this.#config.reverseZones.length === 0) return;
    for (const [revZone, updates] of reverseUpdates(filtered, this.#config.reverseZones)) {
      try {
        const messages = await this.#sendAll(revZone, updates);
        log.debug({ upstream: this.description, zone: revZone, messages, records: updates.length }, 'reverse update accepted');
      } catch (err) {
        // PTRs are a courtesy: the forward records are in, so the change stands.
        log.warn({ upstream: this.description, zone: revZone, err }, 'reverse update failed');
      }
    }
  }

  /** Sends `updates` for `zone` in as many messages as needed; resolves to the message count. */
  async #sendAll(zone: string, updates: readonly ResourceRecord[]): Promise<number> {
    const limit = this.#config.tcp ? MAX_TCP_UPDATE : MAX_UDP_UPDATE;
    const groups = splitUpdate(zone, updates, limit, this.#overhead);
    for (const group of groups) await this.#sendOne(zone, group);
    return groups.length;
  }

  async #sendOne(zone: string, updates: ResourceRecord[], prerequisites: ResourceRecord[] = []): Promise<void> {
    const id = randomInt(0, 0x10000);
    const unsigned = encodeMessage(buildUpdate({ id, zone, prerequisites, updates }));
    const signed = signTsig(unsigned, this.#key, unixSeconds(this.#ctx.clock));
    // A lone RR too big for UDP goes over TCP rather than not at all.
    const tcp = this.#config.tcp || signed.message.length > MAX_UDP_UPDATE;
    let reply: Buffer;
    try {
      ({ reply } = await this.#send({
        host: this.#config.hostname,
        port: this.#config.port,
        message: signed.message,
        timeoutMs: this.#config.timeout,
        tcp,
      }));
    } catch (err) {
      const what = err instanceof TransportError ? err.message : String(err);
      throw new UpstreamError(this.description, `update for ${zone} not delivered: ${what}`, { cause: err });
    }
    let decoded;
    try {
      decoded = decodeMessage(reply);
    } catch (err) {
      throw new UpstreamError(this.description, `malformed reply to update for ${zone}`, { cause: err });
    }
    // The TSIG check comes first: an unsigned or forged reply says nothing, whatever its rcode.
    try {
      verifyTsigResponse(decoded, this.#key, signed.mac, unixSeconds(this.#ctx.clock));
    } catch (err) {
      const why = err instanceof TsigError ? `${err.reason}${err.remote ? ' (reported by server)' : ''}` : String(err);
      throw new UpstreamError(this.description, `TSIG check of reply for ${zone} failed: ${why}`, { cause: err });
    }
    if (decoded.rcode !== Rcode.NOERROR) {
      throw new UpstreamRcodeError(this.description, decoded.rcode, `update for ${zone} failed: ${rcodeName(decoded.rcode)}`);
    }
  }
}

export function createNsupdateUpstream(config: NsupdateUpstreamConfig, ctx: UpstreamContext, send?: UpdateTransport): Upstream {
  return new NsupdateUpstream(config, ctx, send);
}
