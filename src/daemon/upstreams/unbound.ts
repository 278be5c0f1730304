/**
 * `type: unbound`: Unbound's remote-control protocol over TLS.
 *
 * Protocol (Unbound daemon/remote.c): one TLS connection per command; the
 * client sends `UBCT1 <command>\n`; the bulk commands (`local_datas`,
 * `local_datas_remove`) then read one item per line until a line holding a
 * lone 0x04 (end of transmission) or the end of the stream; the server
 * writes its reply and closes. Failures are reported as lines starting with
 * "error" (for bulk commands, one per bad line before the final count).
 *
 * Unbound cannot delete a single RR or RRset of a name, only the whole name
 * (`local_data_remove`), so an update removes every touched name and adds
 * back every record that name should still have: the live ones, minus this
 * change's removals, plus its additions (the original re-added only the
 * change's own records and wiped the name's other addresses). Data nsregd
 * does not manage at those names — anything but A/AAAA at a forward name,
 * anything but a PTR into the zone at a reverse name, e.g. an operator's
 * TXT or MX from unbound.conf — is read first (`list_local_data`) and put
 * back with them. Unbound offers no atomic way to do this: data the
 * operator adds to one of those names between the listing and the removal
 * is lost, and an operator's own A/AAAA at a claimed name is replaced by
 * the claim's (nsupdate's `protect-existing` has no Unbound counterpart).
 *
 * Unbound keeps runtime local data in memory only: a restart (or reload)
 * forgets the zone and every record. Every `status-interval` the upstream
 * asks `status` for Unbound's pid and uptime; a new pid or a later start
 * time, or any failed command (including the `local_zone` at start-up),
 * means data may be lost, and the upstream publishes everything again —
 * the local zone first, then every live record — retrying with back-off
 * while Unbound is down (README, "Running nsregd").
 */
import { readFile } from 'node:fs/promises';
import * as tls from 'node:tls';

import type { UnboundUpstreamConfig } from '../../config/upstreams/index.js';
import { Backoff } from '../../backoff.js';
import type { TimerHandle } from '../../clock.js';
import { canonicalName, isSubdomain } from '../../dns/names.js';
import { recordKey, type AddrRecord, type UpstreamChange } from '../records.js';
import { reverseName, reverseZoneFor } from '../reverse.js';
import { filterChange, filterRecords, type RecordFilter } from './filter.js';
import { RepublishGuard } from './republish.js';
import { UpstreamError, type Upstream, type UpstreamContext } from './upstream.js';
import { errorMessage } from '../../errors.js';
import { formatHostPort } from '../../net/address.js';

/** Protocol banner and version Unbound's control channel expects first on the line. */
export const CONTROL_PREFIX = 'UBCT1';
/** The line that ends the data of a bulk command. */
export const END_OF_DATA = '\x04';

/** Unbound's line buffer (remote.c reads at most 2048 octets a line, newline included). */
const MAX_LINE = 2047;

/** The bytes sent for one command; `data` lines (if any) are terminated by the end-of-data line. */
export function formatCommand(command: string, data?: readonly string[]): string {
  for (const line of [command, ...(data ?? [])]) {
    if (line.includes('\n') || line.includes('\r') || line.includes(END_OF_DATA)) throw new RangeError(`control line may not contain CR, LF or 0x04: ${JSON.stringify(line)}`);
    if (Buffer.byteLength(line) > MAX_LINE) throw new RangeError(`control line longer than ${MAX_LINE} octets`);
  }
  let out = `${CONTROL_PREFIX} ${command}\n`;
  if (data !== undefined) out += data.map((l) => `${l}\n`).join('') + `${END_OF_DATA}\n`;
  return out;
}

/** The reply reports a failure: some line starts with "error". */
export function isErrorReply(reply: string): boolean {
  return reply.split('\n').some((l) => l.startsWith('error'));
}

/** One `local_data` line in presentation format. */
export function addressDataLine(r: AddrRecord): string {
  return `${r.name} ${r.ttl} IN ${r.type} ${r.address}`;
}

export function ptrDataLine(owner: string, r: AddrRecord): string {
  return `${owner} ${r.ttl} IN PTR ${r.name}`;
}

/** Data lines sent per `local_datas` when publishing everything again. */
export const REPUBLISH_BATCH = 1000;

/** Retrying a re-publish while Unbound is down: 1 s, doubling, at most 30 s. */
const REPAIR_BACKOFF = { initialMs: 1_000, capMs: 30_000, jitter: 0.2 } as const;

/** A start time this much later than the last one seen is a restart, not rounding of the uptime. */
const RESTART_SLACK_MS = 5_000;

/** What `status` says about the running Unbound. */
export interface UnboundStatus {
  readonly pid: number | undefined;
  /** Seconds. */
  readonly uptime: number | undefined;
}

/** Reads the pid ("unbound (pid 123) is running...") and uptime ("uptime: 42 seconds") of a `status` reply. */
export function parseStatus(reply: string): UnboundStatus {
  const pid = /\(pid (\d+)\)/.exec(reply)?.[1];
  const uptime = /^uptime: (\d+) seconds/m.exec(reply)?.[1];
  return { pid: pid === undefined ? undefined : Number(pid), uptime: uptime === undefined ? undefined : Number(uptime) };
}

/**
 * Whether Unbound restarted between two `status` replies read at `prevAt`
 * and `nowAt` (ms): another pid, an uptime that went backwards, or a start
 * time (read time minus uptime) that moved forward by more than the slack.
 */
export function restartedBetween(prev: UnboundStatus, prevAt: number, cur: UnboundStatus, nowAt: number): boolean {
  if (prev.pid !== undefined && cur.pid !== undefined && prev.pid !== cur.pid) return true;
  if (prev.uptime === undefined || cur.uptime === undefined) return false;
  if (cur.uptime < prev.uptime) return true;
  return nowAt - cur.uptime * 1000 > prevAt - prev.uptime * 1000 + RESTART_SLACK_MS;
}

/** The `local_data` lines of records as published: each address, then its PTR when it falls in a reverse zone. */
export function recordLines(records: readonly AddrRecord[], reverseZones: readonly string[]): string[] {
  const lines: string[] = [];
  for (const r of records) {
    lines.push(addressDataLine(r));
    const owner = reverseZoneFor(r.address, reverseZones) === undefined ? undefined : reverseName(r.address);
    if (owner !== undefined) lines.push(ptrDataLine(owner, r));
  }
  return lines;
}

export interface UnboundPlan {
  /** Every touched name, forward and reverse, for `local_datas_remove`. */
  readonly removeNames: string[];
  /** What those names hold afterwards, for `local_datas`. */
  readonly addLines: string[];
}

/**
 * The commands for a (filtered) change. `live` gives a name's records as
 * installed before this change (already filtered for this upstream).
 */
export function planChange(
  change: UpstreamChange,
  live: (name: string) => readonly AddrRecord[],
  reverseZones: readonly string[],
): UnboundPlan {
  const wiped = new Set(change.removeNames.map((n) => n.name));
  const touched = new Set<string>([...wiped]);
  for (const r of change.add) touched.add(r.name);
  for (const r of change.remove) touched.add(r.name);

  const forwardNames: string[] = [];
  const reverseNames = new Set<string>();
  const addLines: string[] = [];
  const touchReverse = (r: AddrRecord): string | undefined => {
    if (reverseZoneFor(r.address, reverseZones) === undefined) return undefined;
    const owner = reverseName(r.address);
    if (owner !== undefined) reverseNames.add(owner);
    return owner;
  };
  for (const n of change.removeNames) for (const r of n.addresses) touchReverse(r);
  for (const r of change.remove) touchReverse(r);

  for (const name of touched) {
    forwardNames.push(name);
    const final = new Map<string, AddrRecord>();
    for (const r of live(name)) {
      // A live record's PTR name is rewritten too, whether or not it survives.
      touchReverse(r);
      if (!wiped.has(name)) final.set(recordKey(r), r);
    }
    for (const r of change.remove) if (r.name === name) final.delete(recordKey(r));
    for (const r of change.add) if (r.name === name) final.set(recordKey(r), r);
    for (const r of final.values()) {
      addLines.push(addressDataLine(r));
      const owner = touchReverse(r);
      if (owner !== undefined) addLines.push(ptrDataLine(owner, r));
    }
  }
  return { removeNames: [...forwardNames, ...reverseNames], addLines };
}

/**
 * The lines of a `list_local_data` reply that nsregd did not write but that
 * sit at names it is about to remove (`owners`): at names inside `zone`
 * everything but A and AAAA, elsewhere (reverse names) everything but PTRs
 * pointing into `zone`. Returned as Unbound printed them, to be put back.
 */
export function foreignDataLines(listing: string, owners: readonly string[], zone: string): string[] {
  const wanted = new Set(owners.map((o) => canonicalOrUndefined(o) ?? o));
  const out: string[] = [];
  for (const line of listing.split('\n')) {
    const [owner, , , type, target] = line.trim().split(/\s+/);
    const name = owner === undefined ? undefined : canonicalOrUndefined(owner);
    if (name === undefined || type === undefined || !wanted.has(name)) continue;
    const t = type.toUpperCase();
    const pointsIn = (): boolean => {
      const to = target === undefined ? undefined : canonicalOrUndefined(target);
      return to !== undefined && isSubdomain(to, zone);
    };
    const ours = isSubdomain(name, zone) ? t === 'A' || t === 'AAAA' : t === 'PTR' && pointsIn();
    if (!ours) out.push(line.trim());
  }
  return out;
}

/** The canonical form of a name printed by Unbound, or undefined when it is not one. */
function canonicalOrUndefined(name: string): string | undefined {
  if (!name.endsWith('.')) return undefined;
  try {
    return canonicalName(name);
  } catch {
    return undefined;
  }
}

function hostPort(host: string, port: number): string {
  return formatHostPort(host, port);
}

/**
 * Unbound's certificates (unbound-control-setup) carry the server name only
 * as the subject CN, with no subjectAltName; accept the CN when it equals
 * the configured server-name, else fall back to Node's RFC 6125 check.
 */
function checkServerName(expected: string, cert: tls.PeerCertificate): Error | undefined {
  const cn = cert.subject?.CN;
  const cns = Array.isArray(cn) ? cn : cn === undefined ? [] : [cn];
  if (cns.some((c) => c.toLowerCase() === expected.toLowerCase())) return undefined;
  return tls.checkServerIdentity(expected, cert);
}

interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

class UnboundUpstream implements Upstream {
  readonly description: string;
  readonly keepRecords: boolean;
  readonly perHost = true;
  readonly #config: UnboundUpstreamConfig;
  readonly #ctx: UpstreamContext;
  readonly #guard: RepublishGuard;
  readonly #backoff = new Backoff(REPAIR_BACKOFF);
  #material: Promise<TlsMaterial> | undefined;
  /** Data may be missing upstream: publish everything again at the next check. */
  #lost = false;
  #seen: { status: UnboundStatus; at: number } | undefined;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #closed = false;

  constructor(config: UnboundUpstreamConfig, ctx: UpstreamContext) {
    this.#config = config;
    this.#ctx = ctx;
    this.keepRecords = config.keepRecords;
    this.description = `unbound ${hostPort(config.hostname, config.port)}`;
    this.#guard = new RepublishGuard(() => ctx.allLiveRecords());
  }

  async start(): Promise<void> {
    try {
      await this.#guard.serial(async () => {
        await this.#createZone();
        await this.#observe();
      });
    } catch (err) {
      this.#dataLost(err);
      throw err;
    }
    this.#checkIn(this.#config.statusInterval);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    return Promise.resolve();
  }

  apply(change: UpstreamChange): Promise<void> {
    return this.#guard.serial(async () => {
      try {
        await this.#apply(change);
      } catch (err) {
        this.#dataLost(err);
        throw err;
      }
      this.#guard.applied(change);
    });
  }

  async #apply(change: UpstreamChange): Promise<void> {
    const f: RecordFilter = this.#config;
    const filtered = filterChange(change, f);
    if (filtered.add.length === 0 && filtered.remove.length === 0 && filtered.removeNames.length === 0) {
      this.#ctx.logger.debug({ upstream: this.description }, 'nothing to send after filtering');
      return;
    }
    const plan = planChange(filtered, (name) => filterRecords(this.#ctx.liveRecords(name), f), this.#config.reverseZones);
    const kept = foreignDataLines(await this.command('list_local_data', undefined, { mayBeEmpty: true }), plan.removeNames, this.#ctx.zone);
    await this.command('local_datas_remove', plan.removeNames);
    const addLines = [...kept, ...plan.addLines];
    if (addLines.length > 0) await this.command('local_datas', addLines);
    this.#ctx.logger.debug(
      { upstream: this.description, removedNames: plan.removeNames.length, added: plan.addLines.length, keptForeign: kept.length },
      'unbound update accepted',
    );
  }

  async #createZone(): Promise<void> {
    if (this.#config.zoneType === 'none') return;
    await this.command(`local_zone ${this.#ctx.zone} ${this.#config.zoneType}`);
    this.#ctx.logger.debug({ upstream: this.description, zone: this.#ctx.zone, type: this.#config.zoneType }, 'local zone created');
  }

  /** Reads `status`; marks the data lost when Unbound restarted since the last reading. */
  async #observe(): Promise<void> {
    const status = parseStatus(await this.command('status'));
    const at = this.#ctx.clock.now();
    const prev = this.#seen;
    this.#seen = { status, at };
    if (prev !== undefined && restartedBetween(prev.status, prev.at, status, at)) {
      this.#ctx.logger.warn({ upstream: this.description, pid: status.pid, uptime: status.uptime }, 'unbound restarted: publishing every live record again');
      this.#lost = true;
    }
  }

  /** A command failed: Unbound may have lost data (or never got the zone); repair soon. */
  #dataLost(err: unknown): void {
    if (this.#closed) return;
    if (!this.#lost) this.#ctx.logger.debug({ upstream: this.description, err }, 'unbound command failed: every live record will be published again');
    this.#lost = true;
    this.#checkIn(this.#backoff.peek());
  }

  /** Runs the next check in `ms` (0: no periodic check), unless one is due sooner. */
  #checkIn(ms: number): void {
    if (this.#closed || ms <= 0) return;
    const at = this.#ctx.clock.now() + ms;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = this.#ctx.clock.schedule(ms, () => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      void this.#check();
    });
  }

  async #check(): Promise<void> {
    try {
      await this.#guard.serial(async () => {
        if (!this.#lost) await this.#observe();
        if (this.#lost) await this.#republish();
      });
      this.#backoff.reset();
      this.#checkIn(this.#config.statusInterval);
    } catch (err) {
      if (this.#closed) return;
      this.#lost = true;
      const delay = this.#backoff.next();
      const fields = { upstream: this.description, retryInMs: delay, err };
      if (this.#backoff.attempts === 1) this.#ctx.logger.warn(fields, 'unbound unreachable: live records are published again once it answers');
      else this.#ctx.logger.debug(fields, 'unbound still unreachable');
      this.#checkIn(delay);
    }
  }

  /** The local zone, then every live record (with its PTR), in batches. */
  async #republish(): Promise<void> {
    await this.#createZone();
    const records = this.#guard.stillLive(filterRecords(this.#ctx.allLiveRecords(), this.#config));
    const lines = recordLines(records, this.#config.reverseZones);
    for (let i = 0; i < lines.length; i += REPUBLISH_BATCH) await this.command('local_datas', lines.slice(i, i + REPUBLISH_BATCH));
    // A fresh reading, so the restart just repaired is not taken for another.
    await this.#observe();
    this.#lost = false;
    this.#ctx.logger.info({ upstream: this.description, records: records.length }, 'unbound: every live record published again');
  }

  /**
   * Runs one control command; resolves to Unbound's reply, rejects with
   * UpstreamError. An empty reply is an error unless `mayBeEmpty` (a
   * listing of nothing).
   */
  async command(command: string, data?: readonly string[], opts: { mayBeEmpty?: boolean } = {}): Promise<string> {
    const payload = formatCommand(command, data);
    const material = await this.#loadMaterial();
    const verb = command.split(' ')[0] ?? command;
    const reply = await this.#exchange(payload, material, verb);
    if (isErrorReply(reply)) {
      throw new UpstreamError(this.description, `${verb} failed: ${reply.trim()}`);
    }
    if (reply.trim() === '' && opts.mayBeEmpty !== true) throw new UpstreamError(this.description, `${verb}: empty reply`);
    return reply;
  }

  #loadMaterial(): Promise<TlsMaterial> {
    this.#material ??= (async (): Promise<TlsMaterial> => {
      const [cert, key, ca] = await Promise.all([
        readFile(this.#config.clientCert),
        readFile(this.#config.clientKey),
        readFile(this.#config.serverCert),
      ]);
      return { cert, key, ca };
    })().catch((err: unknown) => {
      // Let a later call retry once the operator fixed the files.
      this.#material = undefined;
      throw new UpstreamError(this.description, `cannot read TLS files: ${errorMessage(err)}`, { cause: err });
    });
    return this.#material;
  }

  #exchange(payload: string, m: TlsMaterial, verb: string): Promise<string> {
    const { hostname, port, serverName, timeout } = this.#config;
    return new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (err: Error | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (err) reject(err);
        else resolve(Buffer.concat(chunks).toString('utf8'));
      };
      const timer = setTimeout(() => {
        finish(new UpstreamError(this.description, `${verb}: no complete reply within ${timeout} ms`));
      }, timeout);
      const socket = tls.connect({
        host: hostname,
        port,
        cert: m.cert,
        key: m.key,
        ca: m.ca,
        // SNI may not be an IP literal (RFC 6066 §3).
        ...(/^[0-9.]+$|:/.test(serverName) ? {} : { servername: serverName }),
        checkServerIdentity: (_host, cert) => checkServerName(serverName, cert),
      });
      socket.on('secureConnect', () => socket.write(payload));
      socket.on('data', (c: Buffer) => chunks.push(c));
      // Unbound closes the connection once the reply is written.
      socket.on('end', () => finish(undefined));
      socket.on('close', () => finish(undefined));
      socket.on('error', (err: Error) => {
        finish(new UpstreamError(this.description, `${verb}: ${err.message}`, { cause: err }));
      });
    });
  }
}

export function createUnboundUpstream(config: UnboundUpstreamConfig, ctx: UpstreamContext): Upstream {
  return new UnboundUpstream(config, ctx);
}
