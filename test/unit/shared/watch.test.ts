import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IEvent, IWatchResponse, WatchBuilder, Watcher } from 'etcd3';
import { fragmentingWatcher, WatchAssembler } from '../../../src/daemon/shared/watch.js';

/** A put event of `key` at revision `mod`. */
function put(key: string, mod: number): IEvent {
  return {
    type: 'Put',
    kv: { key: Buffer.from(key), value: Buffer.from('v'), create_revision: String(mod), mod_revision: String(mod), version: '1', lease: '0' },
    prev_kv: undefined as unknown as IEvent['prev_kv'],
  };
}

/** A watch response with these events; `header` is the store's revision when it was sent. */
function response(events: IEvent[], fragment: boolean, header = 100): IWatchResponse {
  return {
    header: { cluster_id: '1', member_id: '1', revision: String(header), raft_term: '1' },
    watch_id: '1',
    created: false,
    canceled: false,
    compact_revision: '0',
    cancel_reason: '',
    fragment,
    events,
  };
}

const mods = (r: { events: readonly IEvent[] }): number[] => r.events.map((e) => Number(e.kv.mod_revision));

describe('WatchAssembler', () => {
  it('passes a whole response on, up to its header revision', () => {
    const parts = new WatchAssembler();
    const r = parts.take(response([put('a', 5), put('b', 5), put('c', 6)], false, 9));
    assert.deepEqual(mods(r), [5, 5, 6]);
    assert.equal(r.revision, 9n);
    assert.equal(parts.held, 0);
  });

  it('holds the last revision of a part until the next part shows it complete', () => {
    const parts = new WatchAssembler();
    const first = parts.take(response([put('a', 5), put('b', 6), put('c', 6)], true));
    assert.deepEqual(mods(first), [5]);
    assert.equal(first.revision, 5n, 'revision 6 may go on in the next part');
    assert.equal(parts.held, 2);
    const second = parts.take(response([put('d', 6), put('e', 7)], true));
    assert.deepEqual(
      second.events.map((e) => e.kv.key.toString()),
      ['b', 'c', 'd'],
    );
    assert.equal(second.revision, 6n);
    const last = parts.take(response([put('f', 7)], false, 12));
    assert.deepEqual(
      last.events.map((e) => e.kv.key.toString()),
      ['e', 'f'],
    );
    assert.equal(last.revision, 12n);
    assert.equal(parts.held, 0);
  });

  it('a part of one revision only completes nothing', () => {
    const parts = new WatchAssembler();
    const r = parts.take(response([put('a', 8), put('b', 8)], true));
    assert.deepEqual(r, { events: [], revision: undefined });
    assert.equal(parts.held, 2);
    assert.deepEqual(parts.take(response([], true)), { events: [], revision: undefined });
    assert.equal(parts.held, 2);
    assert.deepEqual(mods(parts.take(response([], false, 8))), [8, 8]);
  });
});

describe('fragmentingWatcher', () => {
  it('asks etcd to fragment, from the revision given', () => {
    const request: Record<string, unknown> = {};
    const made = {} as Watcher;
    const builder = {
      request,
      startRevision(rev: string) {
        request.start_revision = rev;
        return builder;
      },
      watcher: () => made,
    };
    assert.equal(fragmentingWatcher(builder as unknown as WatchBuilder, 42n), made);
    assert.deepEqual(request, { start_revision: '42', fragment: true });
  });

  it('refuses to watch without the option when the builder keeps no request', () => {
    const builder = { startRevision: () => builder, watcher: () => assert.fail('watched without fragment') };
    assert.throws(() => fragmentingWatcher(builder as unknown as WatchBuilder, 1n), /cannot ask etcd to fragment/);
  });
});
