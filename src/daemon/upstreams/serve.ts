/**
 * `type: serve`: nsregd is itself the authoritative server for the zone (and
 * its reverse zones), answering from the live record cache — so a parent
 * zone can simply delegate to it. Records are visible exactly while the
 * zone counts them as installed: the cache is the single source of truth,
 * and this upstream only keeps an address → names index for PTR answers
 * (checked against the cache on every lookup) and the SOA serial.
 */
import * as net from 'node:net';
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { ServeUpstreamConfig } from '../../config/upstreams/index.js';
import { inNets } from '../../net/address.js';
import { RRClass } from '../../dns/constants.js';
import type { ResourceRecord } from '../../dns/message.js';
import { canonicalName, childLabel, fqdn, isSubdomain } from '../../dns/names.js';
import { unixSeconds } from '../../clock.js';
import type { AddrRecord, UpstreamChange } from '../records.js';
import { reverseName } from '../reverse.js';
import type { Authority, NameData, TransferPolicy } from '../zoneserver/authority.js';
import { attachAuthorities, type ListenerLease } from '../zoneserver/listener.js';
import { SerialCounter } from '../zoneserver/serial.js';
import { ZoneHistory, type Difference } from '../zoneserver/history.js';
import { Notifier } from '../zoneserver/notify.js';
import type { LabelSyntax } from '../../config/daemon.js';
import { claimableName } from '../labels.js';
import { UpstreamError, type SerialSource, type Upstream, type UpstreamContext } from './upstream.js';
import { errnoCode, errorMessage } from '../../errors.js';
import { atomicWrite } from '../../fs/atomic.js';

/** TTL of the apex NS records and the primary's glue: they change only with the configuration. */
const NS_TTL = 3600;

const seconds = (ms: number): number => Math.floor(ms / 1000);

/**
 * How much of each zone's history IXFR can answer from: the last 1,000
 * versions, at most 100,000 records in all (a few MB, in memory and in the
 * history file). A secondary further behind gets the whole zone, which it
 * would need anyway.
 */
const HISTORY_LIMITS = { differences: 1000, records: 100_000 };
/**
 * A history file larger than this is not read: the snapshot of a zone of a
 * few hundred thousand records plus HISTORY_LIMITS' differences stays well
 * below it, and a damaged or planted file must not cost gigabytes at start.
 */
const MAX_HISTORY_FILE = 128 * 1024 * 1024;

class ServeUpstream implements Upstream {
  readonly description: string;
  readonly keepRecords: boolean;
  readonly local = true;
  readonly perHost = true;
  private serial: SerialSource | undefined;
  private lease: ListenerLease | undefined;
  /** Reverse owner name → forward names that had that address. */
  private readonly ptrIndex = new Map<string, Set<string>>();
  /** Names above PTR owners inside reverse zones, with how many owners they cover (empty non-terminals). */
  private readonly reverseEnts = new Map<string, number>();
  private readonly zone: string;
  private readonly ttl: number;
  private readonly primary: string;
  private readonly primaryGlue: string | undefined;
  private readonly labelSyntax: LabelSyntax;
  private readonly transfer: TransferPolicy;
  private notifier: Notifier | undefined;
  /** IXFR histories by apex (forward and reverse zones). */
  private readonly histories = new Map<string, ZoneHistory>();
  private historySaving: Promise<void> | undefined;
  private historyDirty = false;
  private historiesLoaded = false;

  constructor(
    private readonly config: ServeUpstreamConfig,
    private readonly ctx: UpstreamContext,
  ) {
    this.zone = canonicalName(ctx.zone);
    this.description = `serve ${config.listenAddr}:${config.listenPort}`;
    this.keepRecords = config.keepRecords;
    this.ttl = Math.floor(config.recordTtl / 1000);
    this.labelSyntax = ctx.labelSyntax ?? 'hostname';
    this.transfer = {
      keys: config.transferKeys.map((k) => ({ name: k.name, algorithm: k.algorithm, secret: Buffer.from(k.secret, 'base64') })),
      nets: config.allowTransfer,
    };
    // With an address to listen on, the primary is ns.<zone> and we serve its glue; a host name is used as it is.
    if (config.primary !== null) {
      this.primary = config.primary;
    } else if (net.isIP(config.listenAddr) !== 0) {
      this.primary = `ns.${this.zone}`;
      this.primaryGlue = config.listenAddr;
    } else {
      this.primary = canonicalName(config.listenAddr);
    }
  }

  async start(): Promise<void> {
    this.serial ??= this.ctx.sharedSerial ?? await SerialCounter.open(
      path.join(this.ctx.dataDir, `${this.zone}serial`),
      unixSeconds(this.ctx.clock),
      (err) => this.ctx.logger.error({ err }, 'cannot reserve SOA serials; a crash now could reuse serials'),
    );
    if (!this.historiesLoaded) {
      this.historiesLoaded = true;
      await this.loadHistories();
    }
    this.ptrIndex.clear();
    this.reverseEnts.clear();
    this.index(this.ctx.allLiveRecords(), []);
    if (this.lease === undefined) {
      const authorities: Authority[] = [this.forwardAuthority(), ...this.config.reverseZones.map((z) => this.reverseAuthority(z))];
      try {
        this.lease = await attachAuthorities(this.config.listenAddr, this.config.listenPort, authorities, {
          rateLimit: this.config.rateLimit,
          tcp: { maxConnections: this.config.tcpConnections, maxPerSource: this.config.tcpPerSource, idleTimeoutMs: this.config.tcpIdleTimeout },
          logger: this.ctx.logger,
        });
      } catch (err) {
        throw new UpstreamError(this.description, `cannot listen: ${errorMessage(err)}`, { cause: err });
      }
    }
    if (this.notifier === undefined && this.config.notify.length > 0) {
      const zones = [this.zone, ...this.config.reverseZones];
      this.notifier = new Notifier({
        targets: this.config.notify,
        key: this.transfer.keys.find((k) => k.name === this.config.notifyKey),
        zones: () => zones.map((apex) => ({ apex, soa: this.soaFor(apex) })),
        clock: this.ctx.clock,
        logger: this.ctx.logger,
      });
    }
    // The zone may have changed while nsregd was down: secondaries check now rather than at their next refresh.
    this.notifier?.changed();
  }

  async apply(change: UpstreamChange): Promise<void> {
    this.index(change.add, [...change.remove, ...change.removeNames.flatMap((n) => n.addresses)]);
    this.serial?.next();
    this.notifier?.changed();
  }

  async close(): Promise<void> {
    await this.lease?.release();
    this.lease = undefined;
    this.notifier?.close();
    this.notifier = undefined;
    await this.historySaving;
    await this.serial?.settle();
  }

  private visible(r: AddrRecord): boolean {
    return !inNets(r.address, this.config.excludeNets);
  }

  /**
   * Defence in depth: the handler refuses claims of names that are not host
   * names (./labels.ts), but records stored by an earlier version may still
   * hold one — a `*` label above all, which would act as a wildcard for
   * every unclaimed name. Such names are never published.
   */
  private publishable(name: string): boolean {
    return claimableName(name, this.zone, this.labelSyntax);
  }

  private index(added: readonly AddrRecord[], removed: readonly AddrRecord[]): void {
    const skipped = new Set<string>();
    for (const r of removed) {
      const owner = reverseName(r.address);
      const names = owner === undefined ? undefined : this.ptrIndex.get(owner);
      if (owner === undefined || names === undefined || !names.delete(r.name)) continue;
      if (names.size === 0) {
        this.ptrIndex.delete(owner);
        this.countEnts(owner, -1);
      }
    }
    for (const r of added) {
      if (!this.publishable(r.name)) {
        skipped.add(r.name);
        continue;
      }
      const owner = reverseName(r.address);
      if (owner === undefined || !this.config.reverseZones.some((z) => isSubdomain(owner, z))) continue;
      let names = this.ptrIndex.get(owner);
      if (names === undefined) {
        names = new Set();
        this.ptrIndex.set(owner, names);
        this.countEnts(owner, +1);
      }
      names.add(r.name);
    }
    if (skipped.size > 0) this.ctx.logger.warn({ names: [...skipped] }, 'not publishing records of names that are not host names');
  }

  private countEnts(owner: string, delta: number): void {
    let name = owner;
    for (;;) {
      const dot = name.indexOf('.');
      if (dot < 0 || dot === name.length - 1) break;
      name = name.slice(dot + 1);
      const n = (this.reverseEnts.get(name) ?? 0) + delta;
      if (n <= 0) this.reverseEnts.delete(name);
      else this.reverseEnts.set(name, n);
    }
  }

  private soaFor(apex: string): ResourceRecord {
    const negative = Math.floor(this.config.negativeTtl / 1000);
    return {
      name: apex,
      type: 'SOA',
      class: RRClass.IN,
      ttl: negative,
      data: {
        mname: this.primary,
        rname: this.config.hostmaster ?? `hostmaster.${this.zone}`,
        serial: this.serial?.value ?? 0,
        refresh: seconds(this.config.soaRefresh),
        retry: seconds(this.config.soaRetry),
        expire: seconds(this.config.soaExpire),
        minimum: this.config.soaMinimum === null ? negative : seconds(this.config.soaMinimum),
      },
    };
  }

  private apexRecords(apex: string): ResourceRecord[] {
    const ns = this.config.nameservers.length > 0 ? this.config.nameservers : [this.primary];
    return [
      this.soaFor(apex),
      ...ns.map((n): ResourceRecord => ({ name: apex, type: 'NS', class: RRClass.IN, ttl: NS_TTL, data: fqdn(n) })),
    ];
  }

  private glue(name: string): ResourceRecord[] {
    if (name !== canonicalName(this.primary) || this.primaryGlue === undefined) return [];
    const type = net.isIPv6(this.primaryGlue) ? 'AAAA' : 'A';
    return [{ name, type, class: RRClass.IN, ttl: NS_TTL, data: this.primaryGlue }];
  }

  private forwardAuthority(): Authority {
    const zone = this.zone;
    const srvName = `_nsreg._tcp.${zone}`;
    return {
      apex: zone,
      soa: () => this.soaFor(zone),
      glue: (n) => this.glue(n),
      transfer: this.transfer,
      records: () => this.observed(zone, () => this.forwardRecords()),
      changesSince: (serial) => this.changesSince(zone, () => this.forwardRecords(), serial),
      lookup: (name): NameData => {
        if (name === zone) return { records: this.apexRecords(zone), exists: true };
        if (name === srvName) {
          const reg = this.ctx.registration();
          const target = this.config.registrationTarget ?? fqdn(reg.host);
          return {
            records: [{ name, type: 'SRV', class: RRClass.IN, ttl: this.ttl, data: { priority: 0, weight: 0, port: reg.port, target } }],
            exists: true,
          };
        }
        if (name === `_tcp.${zone}`) return { records: [], exists: true };
        const glue = this.glue(name);
        const records: ResourceRecord[] = [...glue];
        if (childLabel(name, zone) !== undefined && this.publishable(name)) {
          for (const r of this.ctx.liveRecords(name)) {
            if (!this.visible(r)) continue;
            records.push({ name, type: r.type, class: RRClass.IN, ttl: Math.min(r.ttl, this.ttl), data: r.address });
          }
        }
        return { records, exists: records.length > 0 };
      },
    };
  }

  /**
   * The zone's records now, recorded in its IXFR history; when they changed
   * under an unchanged serial (a change visible before apply() moved the
   * serial on), the serial moves on first, so every version has its own.
   */
  private observed(apex: string, compute: () => ResourceRecord[]): ResourceRecord[] {
    let history = this.histories.get(apex);
    if (history === undefined) {
      history = new ZoneHistory(HISTORY_LIMITS);
      this.histories.set(apex, history);
    }
    const records = compute();
    const before = history.serial;
    if (this.serial !== undefined && history.observe(records, this.serial.value) === 'stale') {
      this.serial.next();
      history.observe(records, this.serial.value);
    }
    if (history.serial !== before) this.saveHistories();
    return records;
  }

  private get historyFile(): string {
    return path.join(this.ctx.dataDir, `${this.zone}xfr-history`);
  }

  /**
   * The IXFR histories as the last process left them (./zoneserver/history.ts),
   * of the zones still served; none when the file is missing, unreadable or
   * larger than any history the limits allow (then it is not read at all).
   */
  private async loadHistories(): Promise<void> {
    let saved: unknown;
    try {
      const { size } = await stat(this.historyFile);
      if (size > MAX_HISTORY_FILE) throw new RangeError(`${size} octets, more than the ${MAX_HISTORY_FILE} a history can take`);
      saved = JSON.parse(await readFile(this.historyFile, 'utf8'));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') this.ctx.logger.warn({ err, file: this.historyFile }, 'cannot read the zone transfer history; secondaries get the whole zone once');
      return;
    }
    const zones = typeof saved === 'object' && saved !== null ? (saved as Record<string, unknown>)['zones'] : undefined;
    if (typeof zones !== 'object' || zones === null) return;
    const served = new Set([this.zone, ...this.config.reverseZones]);
    for (const [apex, h] of Object.entries(zones)) if (served.has(apex)) this.histories.set(apex, ZoneHistory.restore(h, HISTORY_LIMITS));
  }

  /** Writes the histories after a new version was served: at most one write at a time, the last state always written. */
  private saveHistories(): void {
    this.historyDirty = true;
    if (this.historySaving !== undefined) return;
    this.historySaving = (async () => {
      while (this.historyDirty) {
        this.historyDirty = false;
        const zones = Object.fromEntries([...this.histories].map(([apex, h]) => [apex, h.save()]));
        await atomicWrite(this.historyFile, JSON.stringify({ zones }));
      }
    })()
      .catch((err: unknown) => this.ctx.logger.warn({ err, file: this.historyFile }, 'cannot save the zone transfer history; after a restart secondaries get the whole zone once'))
      .finally(() => (this.historySaving = undefined));
  }

  private changesSince(apex: string, compute: () => ResourceRecord[], serial: number): Difference[] | undefined {
    this.observed(apex, compute);
    return this.histories.get(apex)?.since(serial);
  }

  /** Every RR of the forward zone but the SOA, as lookups answer them (a zone transfer). */
  private forwardRecords(): ResourceRecord[] {
    const names = new Set([this.zone, `_nsreg._tcp.${this.zone}`, canonicalName(this.primary)]);
    for (const r of this.ctx.allLiveRecords()) names.add(canonicalName(r.name));
    const auth = this.forwardAuthority();
    const out: ResourceRecord[] = [];
    for (const name of names) {
      if (!isSubdomain(name, this.zone)) continue;
      out.push(...auth.lookup(name).records.filter((rr) => rr.type !== 'SOA'));
    }
    return out;
  }

  /** Every RR of a reverse zone but the SOA. */
  private reverseRecords(apex: string): ResourceRecord[] {
    const auth = this.reverseAuthority(apex);
    const out: ResourceRecord[] = this.apexRecords(apex).filter((rr) => rr.type !== 'SOA');
    for (const owner of this.ptrIndex.keys()) {
      if (isSubdomain(owner, apex)) out.push(...auth.lookup(owner).records);
    }
    return out;
  }

  private reverseAuthority(apex: string): Authority {
    return {
      apex,
      soa: () => this.soaFor(apex),
      glue: (n) => this.glue(n),
      transfer: this.transfer,
      records: () => this.observed(apex, () => this.reverseRecords(apex)),
      changesSince: (serial) => this.changesSince(apex, () => this.reverseRecords(apex), serial),
      lookup: (name): NameData => {
        if (name === apex) return { records: this.apexRecords(apex), exists: true };
        const records: ResourceRecord[] = [];
        for (const forward of this.ptrIndex.get(name) ?? []) {
          const live = this.ctx.liveRecords(forward).find((r) => reverseName(r.address) === name && this.visible(r));
          if (live) records.push({ name, type: 'PTR', class: RRClass.IN, ttl: Math.min(live.ttl, this.ttl), data: forward });
        }
        return { records, exists: records.length > 0 || this.reverseEnts.has(name) };
      },
    };
  }
}

export function createServeUpstream(config: ServeUpstreamConfig, ctx: UpstreamContext): Upstream {
  return new ServeUpstream(config, ctx);
}
