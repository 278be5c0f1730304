/**
 * Every way the daemon turns a request down: one value per failure, carrying
 * the rcode and the single human-readable TXT reason sent back (SPEC §3).
 * The reason texts are the original's, so clients of either implementation
 * log the same words.
 */
import { Rcode } from '../dns/constants.js';

export class Refusal extends Error {
  readonly code = 'ERR_REFUSAL';
  constructor(
    readonly rcode: number,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'Refusal';
  }
}

const make = (rcode: number, reason: string) => (): Refusal => new Refusal(rcode, reason);

export const Refusals = {
  malformed: make(Rcode.FORMERR, 'Malformed message'),
  noQuestion: make(Rcode.FORMERR, 'No zone section'),
  notInZone: make(Rcode.REFUSED, 'Name not in a served zone'),
  notZoneApex: make(Rcode.NOTZONE, 'Zone section must name a served zone (class IN, type SOA)'),
  nonUpdate: make(Rcode.REFUSED, 'Non-update query refused'),
  duplicateKey: make(Rcode.FORMERR, 'Duplicate KEY RR'),
  duplicateSig: make(Rcode.FORMERR, 'Duplicate SIG RR'),
  noSig: make(Rcode.FORMERR, 'No SIG RR found'),
  noKey: make(Rcode.FORMERR, 'No KEY RR found'),
  keyTtlZero: make(Rcode.FORMERR, 'KEY RR must have TTL>0'),
  wrongKey: make(Rcode.REFUSED, 'Invalid key for name'),
  wrongKeyRecord: make(Rcode.REFUSED, 'Invalid KEY for name'),
  badSignature: make(Rcode.NOTAUTH, 'Signature verification failed'),
  remoteNotAllowed: make(Rcode.REFUSED, 'Remote addr not allowed to add new key'),
  nameDisallowed: make(Rcode.REFUSED, 'Name disallowed by server config'),
  foreignName: make(Rcode.REFUSED, 'Found record with non-authorized name'),
  ttlZeroClass: make(Rcode.FORMERR, 'TTL 0 record with class != NONE'),
  addClass: make(Rcode.FORMERR, 'Record with TTL>0 must have class IN'),
  badType: make(Rcode.REFUSED, 'Invalid record type in query'),
  upstreamFailed: make(Rcode.SERVFAIL, 'Unable to update upstream servers'),
  keyStoreFailed: make(Rcode.SERVFAIL, 'Unable to store key'),
  busy: make(Rcode.SERVFAIL, 'Server busy, try again later'),
  // SERVFAIL, not REFUSED: a client backs off and retries after SERVFAIL, but gives up after REFUSED.
  rateLimited: make(Rcode.SERVFAIL, 'Too many requests from this address, try again later'),
  replayed: make(Rcode.REFUSED, 'Replayed request'),
} as const;
