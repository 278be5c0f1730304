/**
 * Request policy: one message in, one reply out: an RFC 2136 UPDATE signed
 * with SIG(0) (RFC 2931) by the name's key, trust on first use. No sockets
 * here; the server frames, the handler decides (a plan or a refusal), the
 * zone carries out. Each refusal is a `Refusal` (rcode + one TXT reason).
 */
import type { Logger } from 'pino';
import { Opcode, RRClass, RRType, Rcode } from '../dns/constants.js';
import { MalformedMessageError, Sig0Error } from '../dns/errors.js';
import { keyCostProblem, keyTag as computeKeyTag, publicKeyFromRData, sameKey } from '../dns/keys.js';
import type { KeyObject } from 'node:crypto';
import {
  decodeMessage,
  encodeMessage,
  emptyMessage,
  type DecodedMessage,
  type Message,
  type ResourceRecord,
} from '../dns/message.js';
import { canonicalName, childLabel, fqdn, isSubdomain, nameToLabels } from '../dns/names.js';
import { extractSig0, prepareSig0, verifyPreparedSig0, type PreparedSig0, type Sig0Extract, type Sig0Key } from '../dns/sig0.js';
import type { KeyRData } from '../dns/types.js';
import { inNets } from '../net/address.js';
import type { Clock } from '../clock.js';
import { replayKey, type RequestGuard } from './guard.js';
import { recordKey, type AddrRecord } from './records.js';
import { Refusal, Refusals, type RefusalId } from './refusals.js';
import { claimableName } from './labels.js';
import { keyObjects } from './keydb/stored-key.js';
import type { UpdatePlan, ServedZone } from './zone.js';

export interface HandlerContext {
  /** Served zones by canonical name. */
  zones: ReadonlyMap<string, ServedZone>;
  listenAddr: string;
  listenPort: number;
  clock: Clock;
  logger: Logger;
  /** Rate limits, in-flight cap and replay cache for signature checks (none: unguarded, as in unit tests). */
  guard?: RequestGuard;
  /** Longest SIG(0) validity (expiration − inception) accepted, ms (default DEFAULT_MAX_SIG_VALIDITY). */
  maxSigValidity?: number;
  /** The signature check itself (default verifyPreparedSig0, on libuv's thread pool); tests pass a controllable one. */
  verify?: (p: PreparedSig0) => Promise<void>;
  /**
   * Identifies this start of the daemon (random, new at each start): sent
   * with the SRV self-answer so a client's liveness probe notices a restart
   * it did not see happen. None: the answer carries no identifier.
   */
  instanceId?: string;
  /**
   * Names the site: every daemon sharing one store (and so one set of claims
   * and records) carries the same id. Sent with the SRV self-answer so a
   * client failing over between two of them knows it may simply register
   * at the other, removing nothing. None: no site TXT.
   */
  siteId?: string;
}

/** Prefix of the start-up identifier's TXT string in the SRV self-answer (README, "Running nsregc"). */
export const INSTANCE_TXT_PREFIX = 'nsregd-instance=';
/** Prefix of the site identifier's TXT string in the SRV self-answer (README, "Running nsregc"). */
export const SITE_TXT_PREFIX = 'nsregd-site=';

/** The default `max-sig-validity`: BIND's and nsregc's windows are ±5 minutes. */
export const DEFAULT_MAX_SIG_VALIDITY = 3600_000;

/** What happened, for the connection's log line. */
export interface HandlerOutcome {
  /** Null: the message was unreadable and the connection should close. */
  reply: Buffer | null;
  rcode: number;
  reason?: string;
  /** Which refusal, when the request was refused by policy. */
  refusal?: RefusalId;
  zone?: string;
  name?: string;
}

/** The longest served zone containing `name`. */
export function findZone(zones: ReadonlyMap<string, ServedZone>, name: string): ServedZone | undefined {
  let best: ServedZone | undefined;
  let bestLabels = -1;
  for (const zone of zones.values()) {
    if (!isSubdomain(name, zone.name)) continue;
    const n = nameToLabels(zone.name).length;
    if (n > bestLabels) {
      best = zone;
      bestLabels = n;
    }
  }
  return best;
}

/** The reply skeleton: ID, opcode, RD, CD and the question copied, QR set. */
function replyTo(req: Message, rcode: number): Message {
  const m = emptyMessage(req.id, req.opcode);
  m.qr = true;
  m.rd = req.rd;
  m.cd = req.cd;
  m.rcode = rcode;
  m.questions = req.questions.map((q) => ({ ...q }));
  return m;
}

/** An error reply: exactly one TXT reason (owner = zone or claimed name, class ANY, TTL 0). */
function refusalReply(req: Message, refusal: Refusal, owner: string): Buffer {
  const m = replyTo(req, refusal.rcode);
  m.additionals.push({ name: owner, type: 'TXT', class: RRClass.ANY, ttl: 0, data: [refusal.reason] });
  return encodeMessage(m);
}

/**
 * RFC 1035 §4.1.1: a FORMERR for a message whose header was readable but
 * nothing else. No question can be echoed; the one TXT reason every error
 * reply carries is owned by the root.
 */
function formerrFromId(id: number, raw: Buffer): Buffer {
  const m = emptyMessage(id, raw.length >= 3 ? ((raw[2]) >> 3) & 0xf : Opcode.QUERY);
  m.qr = true;
  m.rcode = Rcode.FORMERR;
  m.additionals.push({ name: '.', type: 'TXT', class: RRClass.ANY, ttl: 0, data: [Refusals.malformed().reason] });
  return encodeMessage(m);
}

export async function handleMessage(raw: Buffer, remote: string, ctx: HandlerContext): Promise<HandlerOutcome> {
  let req: DecodedMessage;
  try {
    req = decodeMessage(raw);
  } catch (err) {
    if (!(err instanceof MalformedMessageError)) throw err;
    if (err.id === undefined) return { reply: null, rcode: Rcode.FORMERR, reason: err.message, refusal: 'malformed' };
    return { reply: formerrFromId(err.id, raw), rcode: Rcode.FORMERR, reason: err.message, refusal: 'malformed' };
  }
  if (req.qr) return { reply: null, rcode: Rcode.FORMERR, reason: 'received a response', refusal: 'malformed' };
  const question = req.questions[0];
  if (question === undefined || req.questions.length !== 1) {
    const r = Refusals.noQuestion();
    return { reply: refusalReply(req, r, '.'), rcode: r.rcode, reason: r.reason, refusal: r.id };
  }
  const zone = findZone(ctx.zones, question.name);
  if (zone === undefined) {
    const r = Refusals.notInZone();
    return { reply: refusalReply(req, r, fqdn(question.name)), rcode: r.rcode, reason: r.reason, refusal: r.id };
  }
  if (req.opcode === Opcode.QUERY && question.type === RRType.SRV) {
    return { reply: srvAnswer(req, ctx), rcode: Rcode.NOERROR, zone: zone.name };
  }
  if (req.opcode !== Opcode.UPDATE) {
    const r = Refusals.nonUpdate();
    return { reply: refusalReply(req, r, zone.name), rcode: r.rcode, reason: r.reason, refusal: r.id, zone: zone.name };
  }
  // RFC 2136 §3.1.1: the zone section names the zone itself (the original took any name inside it).
  if (canonicalName(question.name) !== zone.name || question.type !== RRType.SOA || question.class !== RRClass.IN) {
    const r = Refusals.notZoneApex();
    return { reply: refusalReply(req, r, zone.name), rcode: r.rcode, reason: r.reason, refusal: r.id, zone: zone.name };
  }
  if (zone.upstreams.length === 0) {
    const r = Refusals.noUpstreams();
    return { reply: refusalReply(req, r, zone.name), rcode: r.rcode, reason: r.reason, refusal: r.id, zone: zone.name };
  }
  let claimed: string | undefined;
  try {
    const sig = sigOf(req);
    claimed = canonicalName(sig.sig.signerName);
    const name = claimed;
    const replay = screenRequest(req, sig, remote, ctx);
    const answers = await zone.withNameLock(name, () => processUpdate(req, sig, replay, name, remote, zone, ctx));
    const m = replyTo(req, Rcode.NOERROR);
    m.answers = answers;
    return { reply: encodeMessage(m), rcode: Rcode.NOERROR, zone: zone.name, name };
  } catch (err) {
    if (!(err instanceof Refusal)) throw err;
    return {
      reply: refusalReply(req, err, claimed ?? zone.name),
      rcode: err.rcode,
      reason: err.reason,
      refusal: err.id,
      zone: zone.name,
      ...(claimed === undefined ? {} : { name: claimed }),
    };
  }
}

/**
 * Step 1: the SRV self-answer that lets a client pointed at the daemon find
 * it. With an instance id, the Additional section also carries one TXT
 * record (owner the queried name, TTL 0) `nsregd-instance=<id>`: nsregc
 * compares it between liveness probes to notice a restart; clients that do
 * not know it ignore additional data they did not ask for. With a site id,
 * a second TXT record `nsregd-site=<id>` follows: daemons answering with
 * the same one share their claims and records.
 */
function srvAnswer(req: Message, ctx: HandlerContext): Buffer {
  const q = req.questions[0];
  const m = replyTo(req, Rcode.NOERROR);
  m.answers.push({
    name: fqdn(q.name),
    type: 'SRV',
    class: RRClass.IN,
    ttl: 0,
    data: { priority: 0, weight: 0, port: ctx.listenPort, target: fqdn(ctx.listenAddr) },
  });
  if (ctx.instanceId !== undefined) {
    m.additionals.push({ name: fqdn(q.name), type: 'TXT', class: RRClass.IN, ttl: 0, data: [`${INSTANCE_TXT_PREFIX}${ctx.instanceId}`] });
  }
  if (ctx.siteId !== undefined) {
    m.additionals.push({ name: fqdn(q.name), type: 'TXT', class: RRClass.IN, ttl: 0, data: [`${SITE_TXT_PREFIX}${ctx.siteId}`] });
  }
  return encodeMessage(m);
}

/** Step 3, structural part: one SIG, one KEY with TTL > 0. */
function sigOf(req: DecodedMessage): Sig0Extract {
  let keys = 0;
  let sigs = 0;
  for (const rr of req.additionals) {
    if (rr.type === 'KEY') keys++;
    else if (rr.type === 'SIG') sigs++;
  }
  if (keys > 1) throw Refusals.duplicateKey();
  if (sigs > 1) throw Refusals.duplicateSig();
  if (sigs === 0) throw Refusals.noSig();
  if (keys === 0) throw Refusals.noKey();
  const key = req.additionals.find((rr) => rr.type === 'KEY');
  if (key === undefined || key.type !== 'KEY' || key.data === null) throw Refusals.noKey();
  if (key.ttl === 0) throw Refusals.keyTtlZero();
  try {
    return extractSig0(req);
  } catch (err) {
    if (err instanceof Sig0Error) throw Refusals.badSignature();
    throw err;
  }
}

function keyRecordOf(req: DecodedMessage): { name: string; ttl: number; rdata: KeyRData } {
  for (const rr of req.additionals) {
    if (rr.type === 'KEY' && rr.data !== null) return { name: rr.name, ttl: rr.ttl, rdata: rr.data };
  }
  throw Refusals.noKey();
}

/**
 * The checks that cost next to nothing, before the request waits on its
 * name's lock: RFC 2136 §2.4 prerequisites (refused: see below), the
 * signature's validity window, the replay cache and the source's rate.
 * Returns the request's replay key. Throws a Refusal.
 */
function screenRequest(req: DecodedMessage, sig: Sig0Extract, remote: string, ctx: HandlerContext): string {
  // RFC 2136 §3.2: prerequisites would have to be evaluated against every
  // RRset of the name, and nsregd knows only the A/AAAA records it manages;
  // answering for the rest would be guessing, so a request carrying any is
  // refused rather than applied with them ignored. nsregc sends none.
  if (req.answers.length > 0) throw Refusals.prerequisites();
  // A long window makes a captured request replayable for long, and the
  // replay cache would have to remember it as long (RFC 2931 §3 leaves the
  // window to the signer).
  const maxValidity = ctx.maxSigValidity ?? DEFAULT_MAX_SIG_VALIDITY;
  if ((sig.sig.expiration - sig.sig.inception) * 1000 > maxValidity) throw Refusals.sigValidityTooLong();
  const key = replayKey(sig.signedData);
  if (ctx.guard) {
    const nowMs = ctx.clock.now();
    if (ctx.guard.isReplay(key, nowMs)) throw Refusals.replayed();
    // A flood from one source is turned away here instead of queueing behind a name.
    if (!ctx.guard.withinRate(remote, nowMs)) throw Refusals.rateLimited();
  }
  return key;
}

/**
 * The signature check, holding one of the guard's check slots only while
 * it runs: a request waiting on its name's lock holds none, and the slots
 * are shared fairly between sources (see guard.ts).
 */
async function checkSignature(
  sig: Sig0Extract,
  key: Sig0Key,
  now: number,
  remote: string,
  ctx: HandlerContext,
): Promise<void> {
  let prepared: PreparedSig0;
  try {
    prepared = prepareSig0(sig, key, Math.floor(now / 1000));
  } catch (err) {
    if (err instanceof Sig0Error) throw Refusals.badSignature();
    throw err;
  }
  const slot = ctx.guard === undefined ? undefined : await ctx.guard.acquire(remote, ctx.clock.now());
  if (slot === null) throw Refusals.busy();
  try {
    await (ctx.verify ?? verifyPreparedSig0)(prepared);
  } catch (err) {
    if (err instanceof Sig0Error) throw Refusals.badSignature();
    throw err;
  } finally {
    slot?.release();
  }
}

/** What the update section asks for, after vetting (step 4). */
interface Vetted {
  adds: AddrRecord[];
  removes: AddrRecord[];
  removeTypes: Array<'A' | 'AAAA'>;
  removeAll: boolean;
  echo: ResourceRecord[];
}

function vetRecords(req: DecodedMessage, name: string, zone: ServedZone): Vetted {
  const cfg = zone.config;
  const maxTtl = Math.floor(cfg.maxAddrTtl / 1000);
  const out: Vetted = { adds: [], removes: [], removeTypes: [], removeAll: false, echo: [] };
  for (const rr of req.authorities) {
    if (canonicalName(rr.name) !== name) throw Refusals.foreignName();
    if (rr.type === 'ANY') {
      // RFC 2136 §2.5.3 delete all RRsets from a name (the original answered FORMERR).
      if (rr.class !== RRClass.ANY || rr.ttl !== 0) throw Refusals.badType();
      out.removeAll = true;
      out.echo.push({ ...rr, name });
      continue;
    }
    if (rr.type !== 'A' && rr.type !== 'AAAA') throw Refusals.badType();
    if (rr.ttl === 0) {
      if (rr.class === RRClass.ANY && rr.data === null) {
        // RFC 2136 §2.5.2 delete an RRset.
        out.removeTypes.push(rr.type);
        out.echo.push({ ...rr, name });
        continue;
      }
      if (rr.class !== RRClass.NONE || rr.data === null) throw Refusals.ttlZeroClass();
      if (!addressAllowed(rr.data, zone)) continue;
      out.removes.push({ name, type: rr.type, address: rr.data, ttl: 0 });
      out.echo.push({ name, type: rr.type, class: RRClass.NONE, ttl: 0, data: rr.data });
      continue;
    }
    if (rr.class !== RRClass.IN || rr.data === null) throw Refusals.addClass();
    if (!addressAllowed(rr.data, zone)) continue;
    const ttl = Math.min(rr.ttl, maxTtl);
    out.adds.push({ name, type: rr.type, address: rr.data, ttl });
    out.echo.push({ name, type: rr.type, class: RRClass.IN, ttl, data: rr.data });
  }
  return out;
}

/**
 * The zone's `max-records-per-name`: a request that adds records and would
 * leave `name` with more live A/AAAA records than that is refused as a whole
 * (nothing applied), so no name can grow answers and echoes without bound.
 * Counted as the zone applies a plan: deletions first, then additions;
 * re-adding a live record does not count twice.
 */
function checkRecordCap(vetted: Vetted, name: string, zone: ServedZone): void {
  if (vetted.adds.length === 0) return;
  const limit = zone.config.maxRecordsPerName;
  const after = new Set<string>();
  if (!vetted.removeAll) {
    for (const r of zone.liveRecords(name)) if (!vetted.removeTypes.includes(r.type)) after.add(recordKey(r));
  }
  for (const r of vetted.removes) after.delete(recordKey(r));
  for (const r of vetted.adds) after.add(recordKey(r));
  if (after.size <= limit) return;
  const r = Refusals.tooManyRecords();
  throw new Refusal(r.id, r.rcode, `${r.reason} (limit ${limit})`);
}

function addressAllowed(address: string, zone: ServedZone): boolean {
  return zone.config.allowAnyAddr || inNets(address, zone.config.allowedNets);
}

/**
 * Authenticates and vets one update for one claimed name (under that name's
 * lock), then hands the zone a plan to carry out. Returns the records to
 * echo; throws a Refusal.
 */
async function processUpdate(
  req: DecodedMessage,
  sig: Sig0Extract,
  replay: string,
  name: string,
  remote: string,
  zone: ServedZone,
  ctx: HandlerContext,
): Promise<ResourceRecord[]> {
  const cfg = zone.config;
  const now = ctx.clock.now();
  // Again under the lock: an identical message may have been accepted while this one waited.
  if (ctx.guard?.isReplay(replay, now)) throw Refusals.replayed();
  if (!claimableName(name, zone.name, cfg.labelSyntax)) throw Refusals.labelNotHostname();
  const keyRR = keyRecordOf(req);
  let existing = zone.keyOf(name);
  if (existing !== undefined && zone.refreshClaim !== undefined && !sameKey(keyRR.rdata, existing.rdata)) {
    // A shared store's view may lag behind a release and a new claim at another daemon: look again before refusing.
    await zone.refreshClaim(name);
    existing = zone.keyOf(name);
  }
  if (existing !== undefined) {
    // Cheap comparisons first; the signature check is the expensive part.
    if (sig.sig.keyTag !== existing.keyTag) throw Refusals.wrongKey();
    const stored = existing.rdata;
    if (canonicalName(keyRR.name) !== name || !sameKey(keyRR.rdata, stored)) throw Refusals.wrongKeyRecord();
    await checkSignature(sig, { name, rdata: stored, keyTag: existing.keyTag, importKey: () => existing.publicKey() }, now, remote, ctx);
  } else {
    if (!inNets(remote, cfg.allowedNets)) throw Refusals.remoteNotAllowed();
    const label = childLabel(name, zone.name);
    if (label === undefined || cfg.reservedNames.includes(label)) throw Refusals.nameDisallowed();
    if (canonicalName(keyRR.name) !== name) throw Refusals.wrongKeyRecord();
    refuseCostlyKey(keyRR.rdata, name, remote, zone);
    // Imported outside the shared cache, and kept there only once the signature checked out: the
    // name's first refresh finds it, and forged claims cannot push out the keys of names in use.
    let imported: KeyObject | undefined;
    const key = {
      name,
      rdata: keyRR.rdata,
      keyTag: computeKeyTag(keyRR.rdata),
      importKey: (k: KeyRData): KeyObject => (imported = publicKeyFromRData(k)),
    };
    await checkSignature(sig, key, now, remote, ctx);
    if (imported !== undefined) keyObjects.remember(keyRR.rdata, imported);
  }
  const vetted = vetRecords(req, name, zone);
  checkRecordCap(vetted, name, zone);
  const plan: UpdatePlan = {
    name,
    ...(existing === undefined ? { newKey: keyRR.rdata } : {}),
    signer: keyRR.rdata,
    signedAt: sig.sig.inception * 1000,
    keyExpiry: now + Math.min(keyRR.ttl * 1000, cfg.maxKeyTtl),
    adds: vetted.adds,
    removes: vetted.removes,
    removeTypes: vetted.removeTypes,
    removeAll: vetted.removeAll,
  };
  const result = await zone.applyUpdate(plan, now);
  if (!result.ok) throw REFUSAL_OF[result.failure]();
  if (existing === undefined) zone.logger.info({ name, keyTag: computeKeyTag(keyRR.rdata), remote }, 'new name claimed');
  await rememberAccepted(replay, sig, now, zone, ctx);
  return vetted.echo;
}

/** A new claim's key must be cheap to check: every later update of the name is checked with it. */
function refuseCostlyKey(rdata: KeyRData, name: string, remote: string, zone: ServedZone): void {
  const problem = keyCostProblem(rdata);
  if (problem === undefined) return;
  zone.logger.info({ name, remote, problem }, 'claim refused: key too expensive to verify');
  throw Refusals.keyTooExpensive();
}

/**
 * Remembers an accepted request until its signature expires, durably when
 * the guard persists (a restart must not reopen the replay). The update is
 * applied already, so a failure to persist is logged, not refused.
 */
async function rememberAccepted(replay: string, sig: Sig0Extract, now: number, zone: ServedZone, ctx: HandlerContext): Promise<void> {
  try {
    await ctx.guard?.remember(replay, sig.sig.expiration * 1000, now);
  } catch (err) {
    zone.logger.error({ err }, 'replay cache could not be written; a restart may accept this request again');
  }
}

const REFUSAL_OF = {
  exists: Refusals.wrongKey,
  'key-store': Refusals.keyStoreFailed,
  upstream: Refusals.upstreamFailed,
  'in-use': Refusals.nameInUse,
  'store-unavailable': Refusals.storeUnavailable,
  changed: Refusals.changedElsewhere,
  replayed: Refusals.replayed,
} as const;
