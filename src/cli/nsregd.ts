/**
 * `nsregd` command line: parse flags, make the logger, run the daemon until
 * a signal. SIGHUP reloads, SIGTERM exits 0, SIGINT exits 2 (README, "Running nsregd").
 * The admin subcommands (`status`, `names …`) talk to a running daemon
 * over its control socket instead (README, "Operating nsregd"); `store
 * export|import` move claims and records between stores (README, "Moving
 * between stores").
 */
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { loadDaemonConfig, DAEMON_CONFIG_CANDIDATES, type DaemonConfig } from '../config/daemon.js';
import { ConfigError } from '../config/errors.js';
import { formatDuration } from '../config/duration.js';
import { limitEntries } from '../config/limits.js';
import { storeEntries } from '../config/store.js';
import { Daemon } from '../daemon/daemon.js';
import { runAdmin, type AdminInvocation } from './admin.js';
import { createLogger } from './logger.js';
import { runStore, type StoreInvocation } from './store.js';
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
    `store: ${storeEntries(c.store).map(([key, value]) => `${key}: ${value}`).join(', ')}`,
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

function program(onAdmin: (a: AdminInvocation) => void, onStore: (s: StoreInvocation) => void): Command {
  const root = new Command('nsregd')
    .description('Registration daemon: hosts claim a DNS name with a SIG(0) key (trust on first use) and keep its A/AAAA records current upstream.')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .addOption(new Option('-c, --conffile <file>', `configuration file (default: first of ${DAEMON_CONFIG_CANDIDATES.join(', ')})`))
    .option('--debug', 'log at debug level (default: off, or the config file\'s debug setting)')
    .option('--print', 'log every received message and reply in presentation form (default: off)')
    .option('--check-config', 'validate the configuration, print a summary and exit 0 (valid) or 1')
    .helpOption('-h, --help', 'show this help and exit')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    // Without a subcommand: run the daemon.
    .action(() => undefined);
  const json = '--json';
  const jsonHelp = 'print the answer as JSON';
  root
    .command('status')
    .description('the running daemon\'s version, uptime, zones, upstream health, outbox depths and limits')
    .option(json, jsonHelp)
    .action((o: { json?: boolean }) => onAdmin({ request: { command: 'status' }, json: o.json === true }));
  const names = root.command('names').description('claimed names: list, show, release (a lost key, a retired host)');
  names
    .command('list')
    .description('every claimed name with its key and live records, per upstream installed or pending')
    .option('--zone <zone>', 'only this zone')
    .option(json, jsonHelp)
    .action((o: { zone?: string; json?: boolean }) =>
      onAdmin({ request: o.zone === undefined ? { command: 'names-list' } : { command: 'names-list', zone: o.zone }, json: o.json === true }),
    );
  names
    .command('show')
    .description('one claimed name')
    .argument('<name>', 'the full name, e.g. host.dynamic.example.org')
    .option(json, jsonHelp)
    .action((name: string, o: { json?: boolean }) => onAdmin({ request: { command: 'names-show', name }, json: o.json === true }));
  names
    .command('release')
    .description('free a name: its key is forgotten and its records removed from every upstream; the next claim is a new one')
    .argument('<name>', 'the full name, e.g. host.dynamic.example.org')
    .option('--keep-records', 'leave its records until their own deadlines')
    .option(json, jsonHelp)
    .action((name: string, o: { keepRecords?: boolean; json?: boolean }) =>
      onAdmin({ request: { command: 'names-release', name, keepRecords: o.keepRecords === true }, json: o.json === true }),
    );
  const store = root.command('store').description('move claims and records between stores (files in data-dir, etcd), as JSON lines');
  store
    .command('export')
    .description('write every live claim and its records from the configured store (a files store only while no daemon runs on it)')
    .option('-o, --output <file>', 'write to this file (default: standard output)')
    .action((o: { output?: string }) => onStore({ command: 'export', ...(o.output === undefined ? {} : { file: o.output }) }));
  store
    .command('import')
    .description('read an export into the configured store; names claimed there by another key stop it before anything is written')
    .option('-i, --input <file>', 'read this file (default: standard input)')
    .action((o: { input?: string }) => onStore({ command: 'import', ...(o.input === undefined ? {} : { file: o.input }) }));
  for (const c of [...root.commands, ...names.commands, ...store.commands]) c.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s) });
  return root;
}

/** Runs nsregd; resolves with the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let admin: AdminInvocation | undefined;
  let store: StoreInvocation | undefined;
  const cmd = program(
    (a) => (admin = a),
    (s) => (store = s),
  );
  try {
    cmd.parse(argv);
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    return code ?? 1;
  }
  const flags = cmd.opts<DaemonFlags>();
  const file = flags.conffile ?? defaultConfigFile();

  if (admin !== undefined) {
    // The configuration names the socket; nothing else of it matters here.
    let socket: string;
    try {
      socket = (await loadDaemonConfig(file)).config.controlSocket;
    } catch (err) {
      process.stderr.write(`nsregd: ${errorMessage(err)}\n`);
      return 1;
    }
    return runAdmin(admin, socket, process);
  }

  if (store !== undefined) {
    try {
      const { config, warnings } = await loadDaemonConfig(file);
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      // Standard output may carry the export: logs go to standard error.
      const logger = createLogger({ name: 'nsregd', debug: flags.debug === true, destination: process.stderr });
      return await runStore(store, config, process, logger);
    } catch (err) {
      process.stderr.write(`nsregd: ${errorMessage(err)}\n`);
      return 1;
    }
  }

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
    daemon = await Daemon.startWith(config, { logger, print: flags.print === true, version: packageVersion() });
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
