/**
 * The key store's journal lines: one change each, carrying absolute values
 * (the whole key, the new expiry), so that replaying a line twice, or over
 * a snapshot that already holds it, changes nothing.
 *
 *   {"op":"claim","tentative":true,"name":…,"flags":…,"protocol":…,"algorithm":…,"key":<base64>,"expiry":<ms>}
 *       the name is reserved for this key while the request is carried out;
 *   {"op":"claim","name":…,…}   the claim is confirmed (the only claim line
 *       older versions wrote, which therefore reads as confirmed);
 *   {"op":"refresh","name":…,"expiry":<ms>}
 *   {"op":"remove","name":…}    the key, or a tentative claim, is gone.
 */
import { canonicalName } from '../../dns/names.js';
import { isBase64, isRecord, isUint, type KeyEntry } from './snapshot.js';

export type KeyOp =
  | {
      readonly op: 'claim';
      readonly tentative?: true;
      readonly name: string;
      readonly flags: number;
      readonly protocol: number;
      readonly algorithm: number;
      readonly key: string;
      readonly expiry: number;
    }
  | { readonly op: 'refresh'; readonly name: string; readonly expiry: number }
  | { readonly op: 'remove'; readonly name: string };

/** The claim line of `e`: tentative, or the confirmation. */
export function claimOp(e: KeyEntry, tentative: boolean): KeyOp {
  const base = {
    name: e.name,
    flags: e.rdata.flags,
    protocol: e.rdata.protocol,
    algorithm: e.rdata.algorithm,
    key: e.rdata.publicKey.toString('base64'),
    expiry: e.expiry,
  };
  return tentative ? { op: 'claim', tentative: true, ...base } : { op: 'claim', ...base };
}

const isTime = (t: unknown): t is number => typeof t === 'number' && Number.isFinite(t);

/** A journal value as an operation, or undefined when it is none. */
export function parseKeyOp(v: unknown): KeyOp | undefined {
  if (!isRecord(v) || typeof v.name !== 'string' || !v.name.endsWith('.')) return undefined;
  const name = v.name;
  switch (v.op) {
    case 'claim': {
      if (!isUint(v.flags, 0xffff) || !isUint(v.protocol, 0xff) || !isUint(v.algorithm, 0xff)) return undefined;
      if (!isBase64(v.key) || !isTime(v.expiry)) return undefined;
      if (v.tentative !== undefined && v.tentative !== true) return undefined;
      const base = { name, flags: v.flags, protocol: v.protocol, algorithm: v.algorithm, key: v.key, expiry: v.expiry };
      return v.tentative === true ? { op: 'claim', tentative: true, ...base } : { op: 'claim', ...base };
    }
    case 'refresh':
      return isTime(v.expiry) ? { op: 'refresh', name, expiry: v.expiry } : undefined;
    case 'remove':
      return { op: 'remove', name };
    default:
      return undefined;
  }
}

/** What a replay builds: confirmed keys, and claims not (yet) confirmed. */
export interface ReplayState {
  readonly keys: Map<string, KeyEntry>;
  readonly tentative: Map<string, KeyEntry>;
}

/**
 * Applies one operation. A tentative claim means the name had no key then,
 * so it replaces any; its confirmation makes it the key.
 */
export function applyKeyOp(state: ReplayState, op: KeyOp): void {
  const name = canonicalName(op.name);
  switch (op.op) {
    case 'claim': {
      const entry: KeyEntry = {
        name,
        rdata: { flags: op.flags, protocol: op.protocol, algorithm: op.algorithm, publicKey: Buffer.from(op.key, 'base64') },
        expiry: op.expiry,
      };
      if (op.tentative === true) {
        state.keys.delete(name);
        state.tentative.set(name, entry);
      } else {
        state.tentative.delete(name);
        state.keys.set(name, entry);
      }
      return;
    }
    case 'refresh': {
      const e = state.keys.get(name);
      if (e !== undefined) state.keys.set(name, { ...e, expiry: op.expiry });
      return;
    }
    case 'remove':
      state.keys.delete(name);
      state.tentative.delete(name);
      return;
  }
}
