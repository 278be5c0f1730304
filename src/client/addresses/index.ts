/**
 * Choosing the address source: rtnetlink when it can
 * be opened, else the polled interface list — and the log says which.
 */
import type { Logger } from 'pino';
import type { NetlinkSourceOptions } from './netlink.js';
import { openChildNetlinkSource } from './netlink-supervisor.js';
import { DEFAULT_POLL_INTERVAL_MS, PollAddressSource, type PollSourceOptions } from './poll.js';
import type { AddressSource } from './source.js';
import { errnoCode, errorMessage } from '../../errors.js';

export * from './source.js';
export * from './policy.js';
export { PollAddressSource } from './poll.js';

export interface OpenAddressSourceOptions {
  /** Skip netlink and poll (tests, or hosts where netlink is known to be broken). */
  readonly forcePoll?: boolean;
  readonly netlink?: NetlinkSourceOptions;
  readonly poll?: PollSourceOptions;
  /** Replaces the default, openChildNetlinkSource (tests). */
  readonly openNetlink?: () => Promise<AddressSource>;
}

function reasonOf(err: unknown): string {
  const message = errorMessage(err);
  const code = errnoCode(err);
  return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
}

/** Open rtnetlink, or fall back to polling with a warning naming the reason. */
export async function openAddressSource(logger: Logger, opts: OpenAddressSourceOptions = {}): Promise<AddressSource> {
  const intervalMs = opts.poll?.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  if (!opts.forcePoll) {
    try {
      // The watcher runs in a child process: the netlink package can abort
      // its process from native code (see netlink-child.ts).
      const source = await (opts.openNetlink ?? (() => openChildNetlinkSource({ ...opts.netlink, logger })))();
      logger.debug({ source: source.kind }, 'watching addresses through rtnetlink');
      return source;
    } catch (err) {
      const reason = reasonOf(err);
      logger.warn(
        { err, source: 'poll', intervalMs },
        `netlink unavailable (${reason}); falling back to polling the interface list every ${intervalMs / 1000}s`,
      );
    }
  } else {
    logger.info({ source: 'poll', intervalMs }, `polling the interface list every ${intervalMs / 1000}s`);
  }
  return new PollAddressSource(opts.poll);
}
