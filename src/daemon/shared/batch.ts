/**
 * Group commit for the request path on a shared store: the transactions of
 * requests arriving while one batch is on its way to etcd go together in
 * the next, as nested transactions of one outer transaction (etcd 3.3 and
 * later). Each name's transaction keeps its own compare and its own outcome
 * (the outer one has no compare), so one name's conflict fails nobody
 * else's; the batch costs one round trip and one raft entry instead of one
 * per request.
 *
 * etcd refuses a transaction that writes one key twice. Names in one batch
 * are distinct (a daemon runs one request per name at a time, Zone
 * withNameLock), so only the zone's `serial` could repeat: it is taken out
 * of the nested transactions and written once, by the outer one, when any
 * of them writes it. It is then written even if that name's compare fails,
 * which moves the zone's version on without a change (harmless: secondaries
 * transfer an unchanged zone once).
 */
import { CompareResult, CompareTarget, Range, type IKeyValue, type IRequestOp, type ITxnRequest, type Namespace } from 'etcd3';
import type { SharedStore } from './contract.js';
import { StoreUnavailableError } from './errors.js';
import { fullKey, SERIAL_KEY } from './layout.js';

/** At most this many names per batch (etcd's default --max-txn-ops is 128 operations per level). */
export const MAX_BATCH = 64;
/**
 * And at most about this many octets of keys and values (etcd's default
 * --max-request-bytes is 1.5 MiB): 64 names each replacing all of their
 * records could pass it, and a refused request would fail every name in it.
 * A batch takes at least one transaction, whatever its size.
 */
export const MAX_BATCH_BYTES = 1024 * 1024;

/** The octets a transaction adds to a batch's request: its keys (each behind the namespace's `prefix` octets) and values. */
function txnBytes(t: NameTxn, prefix: number): number {
  let n = 0;
  for (const [k, v] of t.puts) n += prefix + k.length + v.length;
  for (const k of t.deletes) n += prefix + k.length;
  for (const c of t.compares) n += prefix + c.key.length;
  return n;
}

/** One compare of a name's transaction: the key's create or mod revision equals `revision` (0: absent). */
export interface NameCompare {
  readonly key: string;
  readonly target: 'Create' | 'Mod';
  readonly revision: string;
}

/** One name's transaction. Keys are relative to the zone namespace. */
export interface NameTxn {
  /** All must hold. */
  readonly compares: readonly NameCompare[];
  readonly puts: ReadonlyArray<readonly [key: string, value: string]>;
  readonly deletes: readonly string[];
  /** What to read back when a compare fails: some keys and one prefix. */
  readonly readBack: { readonly keys: readonly string[]; readonly prefix: string };
}

export interface NameTxnResult {
  readonly succeeded: boolean;
  /** The revision of the batch (the writes' mod revision when it succeeded). */
  readonly revision: string;
  /** After a failed compare: what readBack found, keys as etcd returns them (namespace prefix included). */
  readonly kvs: readonly IKeyValue[];
}

interface Pending {
  readonly txn: NameTxn;
  readonly resolve: (r: NameTxnResult) => void;
  readonly reject: (err: unknown) => void;
}

export class TxnBatcher {
  private queue: Pending[] = [];
  private flushing = false;

  constructor(
    private readonly ns: Namespace,
    private readonly run: SharedStore['run'],
  ) {}

  submit(txn: NameTxn): Promise<NameTxnResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ txn, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        // The requests of this turn of the event loop join the first batch.
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      let bytes = txnBytes(this.queue[0].txn, this.ns.prefix.length);
      let take = 1;
      while (take < Math.min(MAX_BATCH, this.queue.length)) {
        bytes += txnBytes(this.queue[take].txn, this.ns.prefix.length);
        if (bytes > MAX_BATCH_BYTES) break;
        take++;
      }
      const batch = this.queue.splice(0, take);
      try {
        const results = await this.commit(batch.map((p) => p.txn));
        batch.forEach((p, i) => p.resolve(results[i]));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.flushing = false;
  }

  private key(k: string): Buffer {
    return fullKey(this.ns, k);
  }

  private inner(t: NameTxn): ITxnRequest {
    const prefix = Range.prefix(this.key(t.readBack.prefix));
    return {
      compare: t.compares.map((c) => ({
        key: this.key(c.key),
        result: CompareResult.Equal,
        ...(c.target === 'Create' ? { target: CompareTarget.Create, create_revision: c.revision } : { target: CompareTarget.Mod, mod_revision: c.revision }),
      })),
      success: [
        ...t.puts.filter(([k]) => k !== SERIAL_KEY).map(([k, v]): IRequestOp => ({ request_put: { key: this.key(k), value: Buffer.from(v) } })),
        ...t.deletes.map((k): IRequestOp => ({ request_delete_range: { key: this.key(k) } })),
      ],
      failure: [
        ...t.readBack.keys.map((k): IRequestOp => ({ request_range: { key: this.key(k) } })),
        { request_range: { key: prefix.start, range_end: prefix.end } },
      ],
    };
  }

  private async commit(txns: readonly NameTxn[]): Promise<NameTxnResult[]> {
    const serial = txns.flatMap((t) => t.puts.filter(([k]) => k === SERIAL_KEY)).at(-1);
    const outer: ITxnRequest = {
      compare: [],
      success: [
        ...txns.map((t): IRequestOp => ({ request_txn: this.inner(t) })),
        ...(serial === undefined ? [] : [{ request_put: { key: this.key(SERIAL_KEY), value: Buffer.from(serial[1]) } }]),
      ],
      failure: [],
    };
    const res = await this.run('update', () => this.ns.kv.txn(outer));
    const revision = res.header.revision;
    return txns.map((_, i) => {
      const inner = res.responses[i]?.response_txn;
      if (inner === undefined) throw new StoreUnavailableError(`etcd answered a batch of ${txns.length} without the result of transaction ${i}`);
      return {
        succeeded: inner.succeeded,
        revision,
        kvs: inner.succeeded ? [] : inner.responses.flatMap((r) => r.response_range?.kvs ?? []),
      };
    });
  }
}
