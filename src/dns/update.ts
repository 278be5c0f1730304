/**
 * RFC 2136 UPDATE message builders. Section mapping (§2): zone = question,
 * prerequisite = answer, update = authority.
 */
import { Opcode, RRClass, RRType } from './constants.js';
import { emptyMessage, type Message, type ResourceRecord } from './message.js';
import { fqdn } from './names.js';

export interface UpdateOptions {
  id: number;
  zone: string;
  prerequisites?: ResourceRecord[];
  updates?: ResourceRecord[];
  additionals?: ResourceRecord[];
}

/** An UPDATE for `zone` (zone section: one SOA question of class IN, §2.3). */
export function buildUpdate(opts: UpdateOptions): Message {
  const m = emptyMessage(opts.id, Opcode.UPDATE);
  m.questions.push({ name: fqdn(opts.zone), type: RRType.SOA, class: RRClass.IN });
  m.answers.push(...(opts.prerequisites ?? []));
  m.authorities.push(...(opts.updates ?? []));
  m.additionals.push(...(opts.additionals ?? []));
  return m;
}

/** "Add to an RRset" (§2.5.1): the record as given, class IN. */
export function addRecord(rr: ResourceRecord): ResourceRecord {
  return { ...rr, name: fqdn(rr.name), class: RRClass.IN };
}

/** "Delete an RR from an RRset" (§2.5.4): class NONE, TTL 0, rdata kept. */
export function deleteRecord(rr: ResourceRecord): ResourceRecord {
  return { ...rr, name: fqdn(rr.name), class: RRClass.NONE, ttl: 0 };
}

type EmptyRDataType = Exclude<ResourceRecord['type'], 'OPT' | 'UNKNOWN' | 'ANY'>;

/** "Delete an RRset" (§2.5.2): class ANY, TTL 0, empty rdata. */
export function deleteRRset(name: string, type: EmptyRDataType): ResourceRecord {
  return { name: fqdn(name), type, class: RRClass.ANY, ttl: 0, data: null };
}

/** "Delete all RRsets from a name" (§2.5.3): type ANY, class ANY, TTL 0, empty rdata. */
export function deleteName(name: string): ResourceRecord {
  return { name: fqdn(name), type: 'ANY', class: RRClass.ANY, ttl: 0, data: null };
}

/** Prerequisite "name is in use" (§2.4.4): type ANY, class ANY. */
export function prereqNameInUse(name: string): ResourceRecord {
  return { name: fqdn(name), type: 'ANY', class: RRClass.ANY, ttl: 0, data: null };
}

/** Prerequisite "name is not in use" (§2.4.5): type ANY, class NONE. */
export function prereqNameNotInUse(name: string): ResourceRecord {
  return { name: fqdn(name), type: 'ANY', class: RRClass.NONE, ttl: 0, data: null };
}

/** Prerequisite "RRset exists (value independent)" (§2.4.1): class ANY, empty rdata. */
export function prereqRRsetExists(name: string, type: EmptyRDataType): ResourceRecord {
  return { name: fqdn(name), type, class: RRClass.ANY, ttl: 0, data: null };
}

/** Prerequisite "RRset does not exist" (§2.4.3): class NONE, empty rdata. */
export function prereqRRsetNotExists(name: string, type: EmptyRDataType): ResourceRecord {
  return { name: fqdn(name), type, class: RRClass.NONE, ttl: 0, data: null };
}
