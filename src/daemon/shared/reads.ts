/**
 * Paged reads of the shared store at one revision: the zone mirror's
 * snapshot, the publisher's deadline load and `nsregd store export` all
 * read a whole key range this way.
 */
import { Range, type IKeyValue, type IRangeResponse, type Namespace } from 'etcd3';
import type { SharedStore } from './contract.js';
import { ResponseTooLargeError } from './errors.js';

/**
 * Reads every key of `range` in `ns` at one revision, `page` keys per
 * request (each through `run`, so bounded by the store's timeout), and
 * hands each to `each` in key order; resolves with the revision read at.
 * `stop` is asked before each page: true ends the read early. `revision`
 * pins the read to an earlier one (default: the first page's). A page whose
 * answer is larger than the client takes (values someone made large) is
 * asked again with half as many keys, down to one; the smaller page stays.
 */
export async function readAtOneRevision(
  ns: Namespace,
  run: SharedStore['run'],
  what: string,
  range: Range,
  page: number,
  each: (kv: IKeyValue) => void,
  stop: () => boolean = () => false,
  revision?: bigint,
): Promise<bigint> {
  let limit = page;
  const read = async (from: Range, rev: bigint | undefined): Promise<IRangeResponse> => {
    for (;;) {
      try {
        return await run(what, () => {
          const q = ns.getAll().inRange(from).limit(limit);
          return (rev === undefined ? q : q.revision(rev.toString())).exec();
        });
      } catch (err) {
        if (!(err instanceof ResponseTooLargeError) || limit === 1) throw err;
        limit = Math.ceil(limit / 2);
      }
    }
  };
  let res = await read(range, revision);
  const at = revision ?? BigInt(res.header.revision);
  for (;;) {
    if (stop()) return at;
    for (const kv of res.kvs) each(kv);
    if (!res.more || res.kvs.length === 0) return at;
    const after = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    res = await read(new Range(after, range.end), at);
  }
}
