/**
 * `nsregd` command line: parse flags, make the logger, run the daemon until
 * a signal. SIGHUP reloads, SIGTERM exits 0, SIGINT exits 2 (README, "Running nsregd").
 */
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { loadDaemonConfig, DAEMON_CONFIG_CANDIDATES, type DaemonConfig } from '../config/daemon.js';
import { ConfigError } from '../config/errors.js';
import { formatDuration } from '../config/duration.js';
import { limitEntries } from '../config/limits.js';
import { Daemon } from '../daemon/daemon.js';
import { createLogger } from './logger.js';
import { packageVersion } from './version.js';
import { errorMessage } from '../errors.js';

interface DaemonFlags {
  conffile?: string;
  debug?: boolean;
  print?: boolean;
  checkConfig?: boolean;
}

function defaultConfigFile(): string {
  return DAEMON_CONFIG_CANDIDATES.find((f) => existsSync(f)) ?? (DAEMON_CONFIG_CANDIDATES[0]);
}

/** What `--check-config` prints: the effective settings, defaults included. */
export function configSummary(c: DaemonConfig): string {
  const lines = [
    `config ${c.file}: OK`,
    `listen ${c.listenAddr} port ${c.listenPort} (TCP), data-dir ${c.dataDir}`,
    `limits: ${limitEntries(c.limits).map(([key, value]) => `${key} ${value}`).join(', ')}`,
  ];
  for (const z of Object.values(c.zones)) {
    const ups = z.upstreams.map((u) => u.type).join(', ') || 'none';
    lines.push(
      `zone ${z.name}: max-key-ttl ${formatDuration(z.maxKeyTtl)}, max-addr-ttl ${formatDuration(z.maxAddrTtl)}, ` +
        `allowed-nets [${z.allowedNets.join(' ')}], max-records-per-name ${z.maxRecordsPerName}, upstreams: ${ups}` +
        (z.disabledUpstreams > 0 ? ` (+${z.disabledUpstreams} disabled)` : ''),
    );
  }
  return lines.join('\n');
}

function program(): Command {
  return new Command('nsregd')
    .description('Registration daemon: hosts claim a DNS name with a SIG(0) key (trust on first use) and keep its A/AAAA records current upstream.')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .addOption(new Option('-c, --conffile <file>', `configuration file (default: first of ${DAEMON_CONFIG_CANDIDATES.join(', ')})`))
    .option('--debug', 'log at debug level (default: off, or the config file\'s debug setting)')
    .option('--print', 'log every received message and reply in presentation form (default: off)')
    .option('--check-config', 'validate the configuration, print a summary and exit 0 (valid) or 1')
    .helpOption('-h, --help', 'show this help and exit')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
}

/** Runs nsregd; resolves with the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const cmd = program();
  try {
    cmd.parse(argv);
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    return code ?? 1;
  }
  const flags = cmd.opts<DaemonFlags>();
  const file = flags.conffile ?? defaultConfigFile();

  if (flags.checkConfig) {
    try {
      const { config, warnings } = await loadDaemonConfig(file);
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      process.stdout.write(configSummary(config) + '\n');
      return 0;
    } catch (err) {
      process.stderr.write(`nsregd: ${errorMessage(err)}\n`);
      return 1;
    }
  }

  let config: DaemonConfig;
  let warnings: readonly string[];
  try {
    ({ config, warnings } = await loadDaemonConfig(file));
  } catch (err) {
    process.stderr.write(`nsregd: ${errorMessage(err)}\n`);
    return 1;
  }
  const logger = createLogger({ name: 'nsregd', debug: flags.debug === true || config.debug });
  for (const w of warnings) logger.warn(w);

  let daemon: Daemon;
  try {
    daemon = await Daemon.startWith(config, { logger, print: flags.print === true });
  } catch (err) {
    const message = err instanceof ConfigError ? err.message : `start-up failed: ${errorMessage(err)}`;
    logger.fatal(message);
    process.stderr.write(`nsregd: ${message}\n`);
    return 1;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (code: number, signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down');
      daemon
        .shutdown()
        .catch((err: unknown) => logger.error({ err: err }, 'shutdown failed'))
        .finally(() => {
          process.off('SIGHUP', onHup);
          logger.info('stopped');
          resolve(code);
        });
    };
    const onHup = (): void => {
      logger.info('SIGHUP: reloading configuration');
      void daemon.reload(file);
    };
    process.on('SIGHUP', onHup);
    process.once('SIGTERM', () => stop(0, 'SIGTERM'));
    process.once('SIGINT', () => stop(2, 'SIGINT'));
  });
}
