/**
 * The daemon process the load benchmark runs: bin/nsregd's start-up
 * (configuration file, info-level JSON log on stdout, SIGTERM shuts down)
 * with one difference, the request guard's per-source limits. The
 * benchmark's 32 connections all come from 127.0.0.1 and stand for 32
 * clients; the default limits (50 checks/s and 16 checks at once per
 * address) would measure the limiter, not the daemon. Every other guard
 * (the check slots, the replay cache) stays as shipped.
 *
 *   node dist/bench/nsregd-child.js <config.yaml> [per-source-rate]
 */
import { loadDaemonConfig } from '../src/config/daemon.js';
import { createLogger } from '../src/cli/logger.js';
import { Daemon } from '../src/daemon/daemon.js';

async function main(): Promise<number> {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: nsregd-child <config.yaml> [per-source-rate]\n');
    return 1;
  }
  const perSourceRate = Number(process.argv[3] ?? '0');
  const { config, warnings } = await loadDaemonConfig(file);
  const logger = createLogger({ name: 'nsregd', debug: config.debug });
  for (const w of warnings) logger.warn(w);
  const daemon = await Daemon.startWith(config, { logger, guard: { perSourceRate, ...(perSourceRate === 0 ? { maxPerSource: 4096 } : {}) } });
  return new Promise<number>((resolve) => {
    process.once('SIGTERM', () => {
      logger.info({ signal: 'SIGTERM' }, 'shutting down');
      daemon
        .shutdown()
        .catch((err: unknown) => logger.error({ err }, 'shutdown failed'))
        .finally(() => resolve(0));
    });
  });
}

process.exit(await main());
