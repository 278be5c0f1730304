/**
 * A tiny program the netlink integration test runs inside a network
 * namespace (`ip netns exec NS node dist/test/helpers/address-driver.js
 * netlink [recvBufferSize] | child [recvBufferSize] | poll [intervalMs]`). `child` is the
 * supervised watcher (netlink-supervisor.ts); its log lines come out as {"type":"log",...}. It opens an address source and writes one
 * JSON object per line on stdout:
 *   {"type":"list","addresses":[...]}   the initial listing, and after each "list" command
 *   {"type":"ready"}                    subscribed; changes from now on are reported
 *   {"type":"event","event":{...}}      one AddressEvent
 *   {"type":"failure","message":"..."}  the source gave up
 * Commands on stdin, one per line: `list`; `pid` ({"type":"pid","pid":N}, the watcher child's). End of stdin closes the source and exits.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { pino } from 'pino';
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
  if (kind === 'child') {
    const logs = new Writable({
      write(chunk: Buffer, _enc, cb): void {
        for (const l of chunk.toString().split('\n')) if (l !== '') emit({ type: 'log', ...(JSON.parse(l) as object) });
        cb();
      },
    });
    supervised = await openChildNetlinkSource({
      logger: pino({ level: 'debug' }, logs),
      ...(argv[1] === undefined ? {} : { recvBufferSize: Number(argv[1]) }),
    });
    source = supervised;
  } else if (kind === 'netlink') source = await openNetlinkSource(argv[1] === undefined ? {} : { recvBufferSize: Number(argv[1]) });
  else if (kind === 'poll') source = new PollAddressSource({ intervalMs: Number(argv[1] ?? '200') });
  else {
    process.stderr.write('usage: address-driver netlink [recvBufferSize] | child [recvBufferSize] | poll [intervalMs]\n');
    return 2;
  }
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
