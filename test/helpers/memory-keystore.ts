/** An in-memory key store with the daemon's KeyStorePort shape, for handler unit tests. */
import type { KeyObject } from 'node:crypto';
import { keyTag, publicKeyFromRData } from '../../src/dns/keys.js';
import type { KeyRData } from '../../src/dns/types.js';
import type { ClaimedKey, KeyStorePort } from '../../src/daemon/zone.js';

export class MemoryKeyStore implements KeyStorePort {
  readonly keys = new Map<string, ClaimedKey>();
  /** Tentative claims: reserved, not visible through get(). */
  readonly tentative = new Map<string, { rdata: KeyRData; expiry: number }>();
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
    let cached: KeyObject | undefined;
    this.keys.set(name, {
      name,
      rdata,
      keyTag: keyTag(rdata),
      expiry,
      publicKey: () => (cached ??= publicKeyFromRData(rdata)),
    });
  }

  async claim(name: string, rdata: KeyRData, expiry: number): Promise<'claimed' | 'exists'> {
    await Promise.resolve();
    if (this.failWith) throw this.failWith;
    if (this.keys.has(name) || this.tentative.has(name)) return 'exists';
    this.claims++;
    this.tentative.set(name, { rdata, expiry });
    return 'claimed';
  }

  async confirm(name: string): Promise<void> {
    await Promise.resolve();
    if (this.failConfirmWith) throw this.failConfirmWith;
    const t = this.tentative.get(name);
    if (t === undefined) throw new Error(`no tentative claim of ${name}`);
    this.tentative.delete(name);
    this.put(name, t.rdata, t.expiry);
  }

  abandon(name: string): void {
    this.tentative.delete(name);
  }

  refresh(name: string, expiry: number): void {
    const k = this.keys.get(name);
    if (k) this.keys.set(name, { ...k, expiry });
  }

  remove(name: string): void {
    this.keys.delete(name);
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
