/**
 * A tiny program the netlink integration test runs inside a network
 * namespace (`ip netns exec NS node dist/test/helpers/address-driver.js
 * netlink [recvBufferSize] | child [recvBufferSize] | poll [intervalMs] | open | open-poll [intervalMs]`).
 * `child` is the supervised watcher (netlink-supervisor.ts); `open` and `open-poll` go through
 * openAddressSource, as nsregc does (the latter with forcePoll); their log lines come out as
 * {"type":"log",...}. It opens an address source and writes one JSON object per line on stdout:
 *   {"type":"list","addresses":[...]}   the initial listing, and after each "list" command
 *   {"type":"ready"}                    subscribed; changes from now on are reported
 *   {"type":"event","event":{...}}      one AddressEvent
 *   {"type":"failure","message":"..."}  the source gave up
 *   {"type":"route"}                    the source's default-route listener was called
 * Commands on stdin, one per line: `list`; `pid` ({"type":"pid","pid":N}, the
 * watcher child's). End of stdin closes the source and exits.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { openAddressSource } from '../../src/client/addresses/index.js';
import { openChildNetlinkSource, type ChildNetlinkSource } from '../../src/client/addresses/netlink-supervisor.js';
import { openNetlinkSource } from '../../src/client/addresses/netlink.js';
import { PollAddressSource } from '../../src/client/addresses/poll.js';
import type { AddressSource } from '../../src/client/addresses/source.js';

function emit(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main(argv: readonly string[]): Promise<number> {
  const kind = argv[0];
  let source: AddressSource;
  let supervised: ChildNetlinkSource | undefined;
  const logs = new Writable({
    write(chunk: Buffer, _enc, cb): void {
      for (const l of chunk.toString().split('\n')) if (l !== '') emit({ type: 'log', ...(JSON.parse(l) as object) });
      cb();
    },
  });
  const logger = pino({ level: 'debug' }, logs);
  const bufferOpts = argv[1] === undefined ? {} : { recvBufferSize: Number(argv[1]) };
  const intervalMs = Number(argv[1] ?? '200');
  if (kind === 'child') {
    supervised = await openChildNetlinkSource({ logger, ...bufferOpts });
    source = supervised;
  } else if (kind === 'open') {
    source = await openAddressSource(logger);
  } else if (kind === 'open-poll') {
    source = await openAddressSource(logger, { forcePoll: true, poll: { intervalMs } });
  } else if (kind === 'netlink') {
    source = await openNetlinkSource(bufferOpts);
  } else if (kind === 'poll') {
    source = new PollAddressSource({ intervalMs });
  } else {
    process.stderr.write(
      'usage: address-driver netlink [recvBufferSize] | child [recvBufferSize] | poll [intervalMs] | open | open-poll [intervalMs]\n',
    );
    return 2;
  }
  source.onDefaultRouteChange?.(() => emit({ type: 'route' }));
  emit({ type: 'list', kind: source.kind, addresses: await source.list() });
  await source.subscribe(
    (event) => emit({ type: 'event', event }),
    (err) => emit({ type: 'failure', message: err.message }),
  );
  emit({ type: 'ready' });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() === 'pid') emit({ type: 'pid', pid: supervised?.watcherPid ?? null });
    if (line.trim() === 'list') emit({ type: 'list', kind: source.kind, addresses: await source.list() });
  }
  await source.close();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`address-driver: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  },
);
