/**
 * Watches that survive large revisions. When a watcher catches up (it
 * starts at an earlier revision, or etcd fell behind sending to it), etcd
 * puts up to 1,000 revisions into one watch response. A revision can carry
 * as much as etcd takes in one request (--max-request-bytes, 1.5 MiB by
 * default), so values someone wrote large from outside nsregd can make one
 * response larger than the client accepts in one message; the watch would
 * then fail, be set up again and fail the same way. With the watch's
 * `fragment` option (etcd 3.4 and later; older members ignore it) etcd
 * splits such a response into parts no larger than its own request limit,
 * every part but the last marked `fragment`. WatchAssembler takes the parts
 * and hands on whole revisions only: a reader of the mirror never sees half
 * of a transaction, and the mirror never counts a revision as seen before
 * all of its events have arrived.
 */
import type { IEvent, IWatchCreateRequest, IWatchResponse, WatchBuilder, Watcher } from 'etcd3';

/**
 * The watcher `builder` describes, from revision `from`, with `fragment`
 * set. etcd3 (1.1) has no builder method for the option, so it is set on
 * the request the builder keeps; should a later etcd3 keep it elsewhere,
 * this throws rather than watch without it.
 */
export function fragmentingWatcher(builder: WatchBuilder, from: bigint): Watcher {
  const b = builder.startRevision(from.toString());
  const request = (b as unknown as { request?: IWatchCreateRequest }).request;
  if (request === undefined || typeof request !== 'object') throw new TypeError('etcd3 WatchBuilder keeps no request: cannot ask etcd to fragment watch responses');
  request.fragment = true;
  return b.watcher();
}

/** What one watch response completes. */
export interface WholeRevisions {
  /** Events of complete revisions, in order. */
  readonly events: readonly IEvent[];
  /** Every revision up to this one has been seen whole; undefined: none new. */
  readonly revision: bigint | undefined;
}

/**
 * Puts one watcher's fragmented responses back together. Events come in
 * revision order, so a revision is complete once an event of a later one
 * arrives, or at the last part of a response. What it holds is the events
 * of one revision at most, bounded by what etcd takes in one request.
 */
export class WatchAssembler {
  #held: IEvent[] = [];

  take(res: IWatchResponse): WholeRevisions {
    const events = this.#held.length === 0 ? res.events : [...this.#held, ...res.events];
    if (res.fragment !== true) {
      this.#held = [];
      // A whole response: everything up to its header's revision has been sent.
      return { events, revision: BigInt(res.header.revision) };
    }
    const last = events.at(-1)?.kv.mod_revision;
    let whole = events.length;
    while (whole > 0 && events[whole - 1].kv.mod_revision === last) whole--;
    this.#held = events.slice(whole);
    return whole === 0 ? { events: [], revision: undefined } : { events: events.slice(0, whole), revision: BigInt(events[whole - 1].kv.mod_revision) };
  }

  /** Events held back, waiting for the rest of their revision (tests look). */
  get held(): number {
    return this.#held.length;
  }
}
