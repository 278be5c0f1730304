import type { KeyObject } from 'node:crypto';
import { KeyObjectCache } from '../../dns/key-cache.js';
import { keyTag } from '../../dns/keys.js';
import { canonicalName } from '../../dns/names.js';
import type { KeyRData } from '../../dns/types.js';

/**
 * Keys imported for signature checks, shared by every zone: a key used
 * lately is found here (src/dns/key-cache.ts). A P-384 key holds 3–3.5 KB of
 * OpenSSL memory once it has checked a signature, so 7,168 keys hold
 * ~24 MB: ~250 B per name at 100,000 names, inside the ≤ 1 KB per name
 * budget with the rest of a name (~690 B) (bench/memory.ts; bench/README.md,
 * "Hot path (issue 12)"). Hosts refresh in a cycle, so a daemon whose
 * active names all fit here imports each key once.
 */
export const KEY_CACHE_CAPACITY = 7168;
export const keyObjects = new KeyObjectCache(KEY_CACHE_CAPACITY);

/** Lets the key store move a key's expiry; nobody else can. */
export const SET_EXPIRY = Symbol('setExpiry');

/**
 * One claimed name and its key. Kept compact — flags, protocol and algorithm
 * packed in one number, the key bytes in a string, no per-key rdata object —
 * because one of these lives in memory for every claimed name.
 */
export class StoredKey {
  /** Canonical (lower-case) FQDN. */
  readonly name: string;
  /** RFC 4034 appendix B key tag. */
  readonly keyTag: number;
  /** flags << 16 | protocol << 8 | algorithm. */
  readonly #header: number;
  /** The key bytes as a latin1 string: a third of a small Buffer's memory. */
  readonly #publicKey: string;
  #expiry: number;

  constructor(name: string, rdata: KeyRData, expiry: number, tag: number = keyTag(rdata)) {
    this.name = canonicalName(name);
    this.#header = ((rdata.flags & 0xffff) << 16) | ((rdata.protocol & 0xff) << 8) | (rdata.algorithm & 0xff);
    this.#publicKey = rdata.publicKey.toString('latin1');
    this.keyTag = tag;
    this.#expiry = expiry;
  }

  /**
   * The stand-in for a locked name (locks.ts): its key tag, -1, matches no
   * signature's, so every request for the name is refused as "Invalid key
   * for name"; it never expires and is never written anywhere.
   */
  static locked(name: string): StoredKey {
    return new StoredKey(name, { flags: 0, protocol: 3, algorithm: 0, publicKey: Buffer.alloc(0) }, Infinity, -1);
  }

  /** The KEY rdata (a fresh copy each call). */
  get rdata(): Readonly<KeyRData> {
    return {
      flags: this.#header >>> 16,
      protocol: (this.#header >>> 8) & 0xff,
      algorithm: this.#header & 0xff,
      publicKey: Buffer.from(this.#publicKey, 'latin1'),
    };
  }

  /** Milliseconds since the epoch. */
  get expiry(): number {
    return this.#expiry;
  }

  /**
   * The key imported into node:crypto, from the shared cache of keys used
   * lately (not kept per name: an imported key costs more memory than the
   * rest of the name). Throws UnsupportedAlgorithmError / InvalidKeyError
   * for a key that cannot be used.
   */
  publicKey(): KeyObject {
    return keyObjects.lookup(this.#header & 0xff, this.#publicKey, () => this.rdata);
  }

  [SET_EXPIRY](ms: number): void {
    this.#expiry = ms;
  }
}
