/**
 * nsregd's answers to a registration update, built in memory for the
 * client's registrar and failover tests (SendFn stand-ins).
 */
import { Opcode, RRClass, Rcode } from '../../src/dns/constants.js';
import { emptyMessage, encodeMessage, type DecodedMessage, type Message } from '../../src/dns/message.js';

/** How the fake server answers one update: this rcode (NOERROR echoing the inserts with `ttl`), with a TXT reason. */
export interface UpdateAnswer {
  readonly rcode?: number;
  readonly ttl?: number;
  readonly reason?: string;
}

/** The reply to `update`; `owner` names the TXT reason when the update has no record to name. */
export function updateReply(update: DecodedMessage, b: UpdateAnswer, owner: string): Buffer {
  const rcode = b.rcode ?? Rcode.NOERROR;
  const r: Message = {
    ...emptyMessage(update.id, Opcode.UPDATE),
    qr: true,
    rcode,
    questions: update.questions,
    // nsregd echoes the accepted records in the prerequisite (answer) slot.
    answers:
      rcode === Rcode.NOERROR
        ? update.authorities.map((rr) => (rr.class === RRClass.IN && b.ttl !== undefined ? { ...rr, ttl: b.ttl } : rr))
        : [],
    authorities: [],
    additionals:
      b.reason === undefined ? [] : [{ name: update.authorities[0]?.name ?? owner, type: 'TXT', class: RRClass.ANY, ttl: 0, data: [b.reason] }],
  };
  return encodeMessage(r);
}
