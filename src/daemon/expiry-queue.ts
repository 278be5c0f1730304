/**
 * Deadlines keyed by a string (or any value compared by identity): a binary
 * min-heap with a position index, so insert, move, remove and pop-min all
 * cost O(log n). The original daemon sorted its whole expiry list on every
 * add and searched it linearly; the record cache, the key store and the
 * replay guard keep their deadlines here instead.
 */

export interface QueueEntry<V, K = string> {
  readonly key: K;
  /** Milliseconds since the epoch. */
  readonly deadline: number;
  readonly value: V;
}

interface Node<V, K> {
  readonly key: K;
  deadline: number;
  /** Breaks ties between equal deadlines: first set, first out. */
  seq: number;
  value: V;
}

export class ExpiryQueue<V, K = string> {
  readonly #heap: Node<V, K>[] = [];
  readonly #index = new Map<K, number>();
  #seq = 0;

  get size(): number {
    return this.#heap.length;
  }

  has(key: K): boolean {
    return this.#index.has(key);
  }

  get(key: K): V | undefined {
    const i = this.#index.get(key);
    return i === undefined ? undefined : this.#heap[i].value;
  }

  deadlineOf(key: K): number | undefined {
    const i = this.#index.get(key);
    return i === undefined ? undefined : this.#heap[i].deadline;
  }

  /** Inserts `key` or moves it (either direction) to `deadline`, replacing its value. */
  set(key: K, deadline: number, value: V): 'inserted' | 'updated' {
    if (!Number.isFinite(deadline)) throw new RangeError(`deadline must be finite, got ${deadline}`);
    const i = this.#index.get(key);
    if (i === undefined) {
      const node: Node<V, K> = { key, deadline, seq: this.#seq++, value };
      this.#heap.push(node);
      this.#index.set(key, this.#heap.length - 1);
      this.#up(this.#heap.length - 1);
      return 'inserted';
    }
    const node = this.#heap[i];
    const old = node.deadline;
    node.deadline = deadline;
    node.value = value;
    // A moved entry queues behind others with the same deadline, as if newly set.
    node.seq = this.#seq++;
    if (deadline < old) this.#up(i);
    else this.#down(i);
    return 'updated';
  }

  delete(key: K): boolean {
    const i = this.#index.get(key);
    if (i === undefined) return false;
    this.#removeAt(i);
    return true;
  }

  peek(): QueueEntry<V, K> | undefined {
    const top = this.#heap[0];
    return top === undefined ? undefined : { key: top.key, deadline: top.deadline, value: top.value };
  }

  /** The earliest deadline, or undefined when empty. */
  nextDeadline(): number | undefined {
    return this.#heap[0]?.deadline;
  }

  pop(): QueueEntry<V, K> | undefined {
    const top = this.#heap[0];
    if (top === undefined) return undefined;
    this.#removeAt(0);
    return { key: top.key, deadline: top.deadline, value: top.value };
  }

  /** Removes and returns, earliest first, every entry whose deadline is <= now. */
  popDue(now: number): QueueEntry<V, K>[] {
    const out: QueueEntry<V, K>[] = [];
    while (this.#heap.length > 0 && this.#heap[0].deadline <= now) {
      out.push(this.pop()!);
    }
    return out;
  }

  /** Every entry, in no particular order. */
  *entries(): IterableIterator<QueueEntry<V, K>> {
    for (const n of this.#heap) yield { key: n.key, deadline: n.deadline, value: n.value };
  }

  clear(): void {
    this.#heap.length = 0;
    this.#index.clear();
  }

  #removeAt(i: number): void {
    const heap = this.#heap;
    const removed = heap[i];
    this.#index.delete(removed.key);
    const last = heap.pop()!;
    if (i === heap.length) return;
    heap[i] = last;
    this.#index.set(last.key, i);
    // The filler came from the bottom: it may need to go either way.
    if (this.#less(last, removed)) this.#up(i);
    else this.#down(i);
  }

  #less(a: Node<V, K>, b: Node<V, K>): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
  }

  #up(i: number): void {
    const heap = this.#heap;
    const node = heap[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p];
      if (!this.#less(node, parent)) break;
      heap[i] = parent;
      this.#index.set(parent.key, i);
      i = p;
    }
    heap[i] = node;
    this.#index.set(node.key, i);
  }

  #down(i: number): void {
    const heap = this.#heap;
    const n = heap.length;
    const node = heap[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.#less(heap[r], heap[l]) ? r : l;
      const child = heap[c];
      if (!this.#less(child, node)) break;
      heap[i] = child;
      this.#index.set(child.key, i);
      i = c;
    }
    heap[i] = node;
    this.#index.set(node.key, i);
  }
}
