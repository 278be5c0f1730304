/**
 * NOTIFY (RFC 1996) to the secondaries of the built-in zone server: after
 * a change of the zone, each listed secondary is told of each zone (the
 * forward zone and its reverse zones) over UDP, at most once per second,
 * and told again with growing pauses until it acknowledges. It then asks
 * for the SOA and transfers the changes (IXFR, ./transfer.ts).
 */
import { randomInt } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import type { Logger } from 'pino';
import { unixSeconds, type Clock, type TimerHandle } from '../../clock.js';
import { Opcode, RRClass, RRType, Rcode, rcodeName } from '../../dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage, type ResourceRecord } from '../../dns/message.js';
import { canonicalName } from '../../dns/names.js';
import { signTsig, verifyTsigResponse, type TsigKey } from '../../dns/tsig.js';
import { formatHostPort } from '../../net/address.js';

export interface NotifyTarget {
  readonly address: string;
  readonly port: number;
}

export interface NotifierOptions {
  readonly targets: readonly NotifyTarget[];
  /** Sign each NOTIFY with this key and check the answer's signature (RFC 1996 §3.1, RFC 8945). */
  readonly key: TsigKey | undefined;
  /** The zones to announce: apex and its current SOA. */
  readonly zones: () => ReadonlyArray<{ apex: string; soa: ResourceRecord }>;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** RFC 1996 §4.7 asks for at most one NOTIFY per zone and change burst: changes within a second go out together. */
const MIN_INTERVAL_MS = 1000;
/** Pauses before telling an unacknowledging secondary again (RFC 1996 §3.6 retransmits): 1 s doubling to 60 s. */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 60_000;

/** One zone's NOTIFY to one secondary, until acknowledged or replaced by a newer one. */
interface Pending {
  id: number;
  mac: Buffer | undefined;
  timer: TimerHandle | undefined;
  attempts: number;
}

export class Notifier {
  private readonly sockets = new Map<'udp4' | 'udp6', dgram.Socket>();
  /** By `apex|address|port`. */
  private readonly pending = new Map<string, Pending>();
  private lastSent = -Infinity;
  private scheduled: TimerHandle | undefined;
  private closed = false;
  /** NOTIFYs acknowledged since start (tests, logs). */
  acknowledged = 0;

  constructor(private readonly opts: NotifierOptions) {}

  /** The zone changed: tell the secondaries, now or when a second has passed since the last time. */
  changed(): void {
    if (this.closed || this.opts.targets.length === 0 || this.scheduled !== undefined) return;
    const wait = this.lastSent + MIN_INTERVAL_MS - this.opts.clock.now();
    this.scheduled = this.opts.clock.schedule(Math.max(0, wait), () => {
      this.scheduled = undefined;
      this.notifyAll();
    });
  }

  close(): void {
    this.closed = true;
    this.scheduled?.cancel();
    this.scheduled = undefined;
    for (const p of this.pending.values()) p.timer?.cancel();
    this.pending.clear();
    for (const s of this.sockets.values()) s.close();
    this.sockets.clear();
  }

  private notifyAll(): void {
    if (this.closed) return;
    this.lastSent = this.opts.clock.now();
    for (const { apex, soa } of this.opts.zones()) {
      for (const target of this.opts.targets) {
        const k = `${apex}|${target.address}|${target.port}`;
        this.pending.get(k)?.timer?.cancel();
        const p: Pending = { id: 0, mac: undefined, timer: undefined, attempts: 0 };
        this.pending.set(k, p);
        this.send(k, p, apex, soa, target);
      }
    }
  }

  private send(k: string, p: Pending, apex: string, soa: ResourceRecord, target: NotifyTarget): void {
    if (this.closed || this.pending.get(k) !== p) return;
    p.attempts++;
    p.id = randomInt(0x10000);
    // RFC 1996 §3.7: AA set, the zone's SOA in the question and (as a hint) in the answer.
    const m = emptyMessage(p.id, Opcode.NOTIFY);
    m.aa = true;
    m.questions.push({ name: apex, type: RRType.SOA, class: RRClass.IN });
    m.answers.push(soa);
    let bytes = encodeMessage(m);
    p.mac = undefined;
    if (this.opts.key !== undefined) {
      const signed = signTsig(bytes, this.opts.key, unixSeconds(this.opts.clock));
      bytes = signed.message;
      p.mac = signed.mac;
    }
    this.socket(target).send(bytes, target.port, target.address, (err) => {
      if (err) this.opts.logger.debug({ err, secondary: formatHostPort(target.address, target.port) }, 'cannot send NOTIFY');
    });
    const pause = Math.min(FIRST_RETRY_MS * 2 ** (p.attempts - 1), MAX_RETRY_MS);
    p.timer = this.opts.clock.schedule(pause, () => {
      if (p.attempts === 3) {
        this.opts.logger.warn({ zone: apex, secondary: formatHostPort(target.address, target.port) }, 'secondary does not acknowledge NOTIFY; still trying');
      }
      this.send(k, p, apex, soa, target);
    });
  }

  private socket(target: NotifyTarget): dgram.Socket {
    const type = net.isIPv6(target.address) ? 'udp6' : 'udp4';
    let s = this.sockets.get(type);
    if (s === undefined) {
      s = dgram.createSocket(type);
      s.on('error', (err) => this.opts.logger.warn({ err }, 'NOTIFY socket error'));
      s.on('message', (msg, rinfo) => this.onReply(msg, rinfo));
      s.unref();
      this.sockets.set(type, s);
    }
    return s;
  }

  /** An acknowledgement: a NOTIFY response from the secondary with the ID we sent (and a good TSIG when we signed). */
  private onReply(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let reply;
    try {
      reply = decodeMessage(msg);
    } catch {
      return;
    }
    if (!reply.qr || reply.opcode !== Opcode.NOTIFY) return;
    for (const [k, p] of this.pending) {
      const [apex, address, port] = k.split('|');
      if (p.id !== reply.id || address !== rinfo.address || Number(port) !== rinfo.port) continue;
      const q = reply.questions[0];
      if (q === undefined || canonicalName(q.name) !== apex) continue;
      if (this.opts.key !== undefined && p.mac !== undefined) {
        try {
          verifyTsigResponse(reply, this.opts.key, p.mac, unixSeconds(this.opts.clock));
        } catch (err) {
          this.opts.logger.warn({ err, zone: apex, secondary: formatHostPort(rinfo.address, rinfo.port) }, 'NOTIFY answer fails its TSIG check');
          return;
        }
      }
      p.timer?.cancel();
      this.pending.delete(k);
      this.acknowledged++;
      const fields = { zone: apex, secondary: formatHostPort(rinfo.address, rinfo.port), rcode: rcodeName(reply.rcode) };
      // RFC 1996 §4.2: any answer ends the retransmissions; one that is not NOERROR means the secondary will not act on it.
      if (reply.rcode === Rcode.NOERROR) this.opts.logger.debug(fields, 'NOTIFY acknowledged');
      else this.opts.logger.warn(fields, 'secondary refused NOTIFY');
      return;
    }
  }
}
