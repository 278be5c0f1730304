/**
 * Every way the daemon turns a request down: one value per failure, carrying
 * the rcode and the single human-readable TXT reason sent back.
 * The reason texts are the original daemon's, so clients of either
 * implementation log the same words; `id` is what code compares.
 */
import { NsregError } from '../errors.js';
import { Rcode } from '../dns/constants.js';

/** A refusal's stable identifier: what code (logging, metrics, tests) compares. */
export type RefusalId = keyof typeof TABLE;

export class Refusal extends NsregError {
  readonly code = 'ERR_REFUSAL';
  constructor(
    readonly id: RefusalId,
    readonly rcode: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

const TABLE = {
  malformed: [Rcode.FORMERR, 'Malformed message'],
  noQuestion: [Rcode.FORMERR, 'No zone section'],
  notInZone: [Rcode.REFUSED, 'Name not in a served zone'],
  notZoneApex: [Rcode.NOTZONE, 'Zone section must name a served zone (class IN, type SOA)'],
  nonUpdate: [Rcode.REFUSED, 'Non-update query refused'],
  duplicateKey: [Rcode.FORMERR, 'Duplicate KEY RR'],
  duplicateSig: [Rcode.FORMERR, 'Duplicate SIG RR'],
  noSig: [Rcode.FORMERR, 'No SIG RR found'],
  noKey: [Rcode.FORMERR, 'No KEY RR found'],
  keyTtlZero: [Rcode.FORMERR, 'KEY RR must have TTL>0'],
  wrongKey: [Rcode.REFUSED, 'Invalid key for name'],
  wrongKeyRecord: [Rcode.REFUSED, 'Invalid KEY for name'],
  badSignature: [Rcode.NOTAUTH, 'Signature verification failed'],
  remoteNotAllowed: [Rcode.REFUSED, 'Remote addr not allowed to add new key'],
  nameDisallowed: [Rcode.REFUSED, 'Name disallowed by server config'],
  foreignName: [Rcode.REFUSED, 'Found record with non-authorized name'],
  ttlZeroClass: [Rcode.FORMERR, 'TTL 0 record with class != NONE'],
  addClass: [Rcode.FORMERR, 'Record with TTL>0 must have class IN'],
  badType: [Rcode.REFUSED, 'Invalid record type in query'],
  upstreamFailed: [Rcode.SERVFAIL, 'Unable to update upstream servers'],
  keyStoreFailed: [Rcode.SERVFAIL, 'Unable to store key'],
  busy: [Rcode.SERVFAIL, 'Server busy, try again later'],
  // SERVFAIL, not REFUSED: a client backs off and retries after SERVFAIL, but gives up after REFUSED.
  rateLimited: [Rcode.SERVFAIL, 'Too many requests from this address, try again later'],
  replayed: [Rcode.REFUSED, 'Replayed request'],
  // Sent with the zone's limit appended: "Too many records for name (limit 16)".
  tooManyRecords: [Rcode.REFUSED, 'Too many records for name'],
  // Hijack protection (README "Names and existing records").
  labelNotHostname: [Rcode.REFUSED, 'Name must be a host name (letters, digits, hyphens)'],
  nameInUse: [Rcode.REFUSED, 'Name is in use by other records'],
  // Replay and signature defences (issue 10).
  sigValidityTooLong: [Rcode.NOTAUTH, 'Signature validity period too long'],
  keyTooExpensive: [Rcode.REFUSED, 'Key too expensive to verify or too weak (RSA: 2048-4096 bits, exponent at most 2^32)'],
  prerequisites: [Rcode.REFUSED, 'Prerequisites are not supported'],
  // A zone with no enabled upstream (`upstreams: []`, or every entry `type: disabled`) would accept
  // records that go nowhere; SERVFAIL, as the original answered.
  noUpstreams: [Rcode.SERVFAIL, 'No upstream servers configured for zone'],
  // Several daemons on one shared store (README, "Several daemons as one service"): SERVFAIL, so that
  // the client retries, at another daemon of the site if it knows one.
  storeUnavailable: [Rcode.SERVFAIL, 'Shared store unavailable, try another server'],
  changedElsewhere: [Rcode.SERVFAIL, 'Name changed at another server meanwhile, try again'],
} as const satisfies Record<string, readonly [number, string]>;

/** One factory per refusal: `Refusals.wrongKey()` and so on. */
export const Refusals = Object.fromEntries(
  Object.entries(TABLE).map(([id, [rcode, reason]]) => [id, () => new Refusal(id as RefusalId, rcode, reason)]),
) as { readonly [K in RefusalId]: () => Refusal };

