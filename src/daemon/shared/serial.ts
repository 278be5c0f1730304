/**
 * The built-in zone server's SOA serial on a shared store: the serial base
 * written once when the zone was first used (the Unix time then), plus the
 * revision at which the zone's published data last changed — every daemon
 * of the site computes the same serial from the same data, and it moves on
 * with every change (RFC 1982 arithmetic: it wraps at 2^32).
 */
import type { SerialSource } from '../upstreams/upstream.js';
import type { ZoneMirror } from './contract.js';

export function sharedSerial(mirror: ZoneMirror): SerialSource {
  const value = (): number => (Number(mirror.serialBase) + Number(mirror.dataVersion)) >>> 0;
  return {
    get value(): number {
      return value();
    },
    // The serial is the data's: it cannot move on by itself.
    next: value,
    settle: async () => undefined,
  };
}
