/**
 * Replies a recursive server would give, built in memory for the client's
 * discovery tests (QueryFn stand-ins).
 */
import type { QueryType } from '../../src/client/discover.js';
import { Opcode, RRClass, RRType, Rcode } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage, type DecodedMessage, type ResourceRecord } from '../../src/dns/message.js';

/** A decoded reply to `name type` with these answers and rcode. */
export function answer(name: string, type: QueryType, answers: ResourceRecord[], rcode: number = Rcode.NOERROR): DecodedMessage {
  const m = emptyMessage(1, Opcode.QUERY);
  m.qr = true;
  m.rcode = rcode;
  m.questions.push({ name, type: RRType[type], class: RRClass.IN });
  m.answers.push(...answers);
  return decodeMessage(encodeMessage(m));
}

export const ptr = (name: string, target: string): ResourceRecord => ({ name, type: 'PTR', class: RRClass.IN, ttl: 60, data: target });

export const srv = (name: string, target: string, port: number): ResourceRecord => ({
  name,
  type: 'SRV',
  class: RRClass.IN,
  ttl: 60,
  data: { priority: 0, weight: 0, port, target },
});
