/**
 * The rtnetlink watcher as a program of its own, run by
 * netlink-supervisor.ts: `node netlink-child.js [recvBufferSize]`.
 *
 * Why a separate process: the npm `netlink` package (0.3.0) aborts the
 * whole process from native code when the kernel reports ENOBUFS on the
 * notification socket (a burst of changes overran its receive buffer).
 * That cannot be caught in JavaScript; here it only ends this process, and
 * the parent notices, re-reads the addresses and starts a new watcher.
 *
 * Protocol, one JSON object per line:
 *   stdout  {"type":"ready"}                      subscribed; events follow
 *           {"type":"event","event":AddressEvent}
 *           {"type":"route"}                      a default route appeared, went away or changed
 *           {"type":"list","id":N,"addresses":[…]}  answer to a list request
 *           {"type":"error","message":"…","code":"…"}  could not start (then exit 1)
 *   stdin   {"id":N}                              list request
 * End of stdin (the parent closed it, or died) ends the program.
 */
import { createInterface } from 'node:readline';
import { openNetlinkSource } from './netlink.js';
import { errnoCode, errorMessage } from '../../errors.js';

function emit(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main(argv: readonly string[]): Promise<void> {
  const size = argv[0] === undefined ? undefined : Number(argv[0]);
  let source;
  try {
    source = await openNetlinkSource(size === undefined || !Number.isFinite(size) ? {} : { recvBufferSize: size });
  } catch (err) {
    emit({ type: 'error', message: errorMessage(err), code: errnoCode(err) ?? null });
    process.exitCode = 1;
    return;
  }
  source.onDefaultRouteChange(() => emit({ type: 'route' }));
  // Subscribe before the first listing, so nothing between them is lost.
  await source.subscribe(
    (event) => emit({ type: 'event', event }),
    (err) => {
      process.stderr.write(`netlink watcher: ${err.message}\n`);
      // The parent sees the exit and starts over.
      process.exit(3);
    },
  );
  emit({ type: 'ready' });
  for await (const line of createInterface({ input: process.stdin })) {
    let id: unknown;
    try {
      id = (JSON.parse(line) as { id?: unknown }).id;
    } catch {
      continue;
    }
    if (typeof id !== 'number') continue;
    emit({ type: 'list', id, addresses: await source.list() });
  }
  await source.close();
  process.exit(0);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`netlink watcher: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
