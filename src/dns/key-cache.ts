/**
 * Imported public keys, kept for reuse; when full, a new key takes the
 * place of one picked at random.
 *
 * Importing KEY rdata into node:crypto (publicKeyFromRData) costs about
 * 0.1–0.15 ms for a P-384 key (OpenSSL 3 sets up its decoders anew for
 * every import), against a few microseconds to find it here. So a name's
 * key is imported once and reused while the name is in use.
 *
 * An imported key holds about 3 KB of OpenSSL memory that the JavaScript
 * heap does not see, so the cache is bounded: a daemon with 100,000 names
 * keeps only the keys of the names used lately (bench/README.md, "Hot
 * path" and "Where the main thread's time went").
 *
 * Why random and not least-recently-used: hosts refresh in a cycle (each
 * every half TTL), so with more names than places LRU always drops exactly
 * the key needed next and never hits, while random replacement keeps
 * about capacity/names of them (bench/README.md, "Hot path").
 *
 * The cache key is the algorithm and the exact public key bytes, and a
 * KeyObject is a function of nothing else: a name whose key changed can
 * never get the old KeyObject back, whatever the name, flags or key tag.
 */
import type { KeyObject } from 'node:crypto';
import { publicKeyFromRData } from './keys.js';
import type { KeyRData } from './types.js';

export class KeyObjectCache {
  readonly #capacity: number;
  readonly #keys = new Map<string, { readonly key: KeyObject; readonly slot: number }>();
  /** The cache keys by place, for picking one at random. */
  readonly #slots: string[] = [];
  readonly #random: () => number;
  #hits = 0;
  #misses = 0;

  /** `random`: a number in [0, 1) (tests); default Math.random — which key goes matters to nobody but the hit rate. */
  constructor(capacity: number, random: () => number = Math.random) {
    if (!Number.isInteger(capacity) || capacity < 0) throw new RangeError(`key cache capacity must be an integer ≥ 0, got ${capacity}`);
    this.#capacity = capacity;
    this.#random = random;
  }

  /** The KeyObject of `rdata`, imported now or earlier. Throws what publicKeyFromRData throws; failures are not kept. */
  get(rdata: Readonly<KeyRData>): KeyObject {
    return this.lookup(rdata.algorithm, rdata.publicKey.toString('latin1'), () => rdata);
  }

  /**
   * get() for a caller that holds the key bytes as a latin1 string: the
   * rdata is built only when the key has to be imported.
   */
  lookup(algorithm: number, bytes: string, rdataOf: () => Readonly<KeyRData>): KeyObject {
    const id = `${algorithm} ${bytes}`;
    const hit = this.#keys.get(id);
    if (hit !== undefined) {
      this.#hits++;
      return hit.key;
    }
    this.#misses++;
    const key = publicKeyFromRData(rdataOf());
    this.#insert(id, key);
    return key;
  }

  /**
   * Keeps `key`, imported by the caller from `rdata`, unless that key is
   * cached already. For keys that had to be imported before they could be
   * trusted (a first claim): only once their signature checked out do they
   * take a place, so forged claims cannot push the keys in use out.
   */
  remember(rdata: Readonly<KeyRData>, key: KeyObject): void {
    const id = `${rdata.algorithm} ${rdata.publicKey.toString('latin1')}`;
    if (!this.#keys.has(id)) this.#insert(id, key);
  }

  #insert(id: string, key: KeyObject): void {
    if (this.#capacity === 0) return;
    let slot = this.#slots.length;
    if (slot >= this.#capacity) {
      slot = Math.min(this.#capacity - 1, Math.floor(this.#random() * this.#capacity));
      this.#keys.delete(this.#slots[slot]);
    }
    this.#slots[slot] = id;
    this.#keys.set(id, { key, slot });
  }

  get size(): number {
    return this.#keys.size;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** Lookups answered from the cache and lookups that imported, since construction. */
  get stats(): { hits: number; misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }
}
