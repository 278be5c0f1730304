/** An in-memory key store with the daemon's KeyStorePort shape, for handler unit tests. */
import type { KeyObject } from 'node:crypto';
import { keyTag, publicKeyFromRData } from '../../src/dns/keys.js';
import type { KeyRData } from '../../src/dns/types.js';
import type { ClaimedKey, KeyStorePort } from '../../src/daemon/zone.js';

interface Tentative {
  readonly key: ClaimedKey;
  readonly settled: Promise<void>;
  readonly settle: () => void;
}

export class MemoryKeyStore implements KeyStorePort {
  /** Confirmed keys. */
  readonly keys = new Map<string, ClaimedKey>();
  /** Tentative claims: reserved, not visible through get(). Another claim of the name waits for it, as in KeyStore. */
  readonly tentative = new Map<string, Tentative>();
  /** When set, claim() rejects with it (a full disk, say). */
  failWith: Error | undefined;
  /** When set, confirm() rejects with it. */
  failConfirmWith: Error | undefined;
  claims = 0;

  get size(): number {
    return this.keys.size;
  }

  get(name: string): ClaimedKey | undefined {
    return this.keys.get(name);
  }

  put(name: string, rdata: KeyRData, expiry: number): void {
    this.keys.set(name, makeKey(name, rdata, expiry));
  }

  async claim(name: string, rdata: KeyRData, expiry: number): Promise<'claimed' | 'exists'> {
    await Promise.resolve();
    for (;;) {
      if (this.failWith) throw this.failWith;
      if (this.keys.has(name)) return 'exists';
      const held = this.tentative.get(name);
      if (held === undefined) break;
      await held.settled;
    }
    let settle = (): void => undefined;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    this.tentative.set(name, { key: makeKey(name, rdata, expiry), settled, settle });
    this.claims++;
    return 'claimed';
  }

  async confirm(name: string): Promise<void> {
    const t = this.tentative.get(name);
    if (t === undefined) throw new Error(`${name}: no tentative claim to confirm`);
    await Promise.resolve();
    if (this.failConfirmWith) throw this.failConfirmWith;
    if (this.tentative.get(name) !== t) return;
    this.tentative.delete(name);
    this.keys.set(name, t.key);
    t.settle();
  }

  abandon(name: string): void {
    const t = this.tentative.get(name);
    if (t === undefined) return;
    this.tentative.delete(name);
    t.settle();
  }

  refresh(name: string, expiry: number): void {
    const k = this.keys.get(name);
    if (k) this.keys.set(name, { ...k, expiry });
  }

  remove(name: string): boolean {
    return this.keys.delete(name);
  }

  claimedKeys(): Iterable<ClaimedKey> {
    return this.keys.values();
  }

  expireDue(now: number): ClaimedKey[] {
    const due = [...this.keys.values()].filter((k) => k.expiry <= now);
    for (const k of due) this.keys.delete(k.name);
    return due;
  }

  nextExpiry(): number | undefined {
    let min: number | undefined;
    for (const k of this.keys.values()) if (min === undefined || k.expiry < min) min = k.expiry;
    return min;
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {}
}

function makeKey(name: string, rdata: KeyRData, expiry: number): ClaimedKey {
  let cached: KeyObject | undefined;
  return {
    name,
    rdata,
    keyTag: keyTag(rdata),
    expiry,
    publicKey: () => (cached ??= publicKeyFromRData(rdata)),
  };
}
