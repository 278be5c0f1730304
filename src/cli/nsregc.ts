/**
 * `nsregc` command line (README, "Running nsregc"): parse flags, make the
 * logger, run the client until a signal or until every server refused us.
 * SIGTERM exits 0, SIGINT exits 2 (records removed first unless --keep);
 * nothing to register with, or every server refusing, exits 1.
 */
import * as os from 'node:os';
import { Command, Option } from 'commander';
import { clientConfigCandidates, type ClientFlags } from '../config/client.js';
import { ClientStartError } from '../client/errors.js';
import { loadClientSetup, NsregClient, prepareClientKey, type ClientSetup } from '../client/client.js';
import type { ClientKey } from '../client/keys.js';
import { createLogger } from './logger.js';
import { packageVersion } from './version.js';
import { errorMessage } from '../errors.js';

/** Where main() writes and what it takes from the environment (tests replace them). */
export interface MainIO {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** The user's home directory (~/.nsregc). */
  readonly home: string;
  /** Overrides the system host name (tests). */
  readonly hostname?: string;
  /** Configuration files tried without -c (tests). */
  readonly searchPaths?: readonly string[];
}

/** What the command line asked for. */
export interface ParsedCommandLine {
  readonly conffile?: string;
  readonly print: boolean;
  readonly flags: ClientFlags;
}

interface RawOptions {
  conffile?: string;
  name?: string;
  interface?: string[];
  address?: string[];
  dnsServer?: string;
  dnsTcp?: boolean;
  keep?: boolean;
  debug?: boolean;
  print?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function program(io: MainIO): Command {
  const candidates = clientConfigCandidates(io.home);
  const cmd = new Command('nsregc')
    .description(
      'Registration client: claims <name>.<zone> with a SIG(0) key at the zone\'s nsregd server and keeps ' +
        'this host\'s A/AAAA records there current as addresses come and go.',
    )
    .argument('[zone...]', 'zones to register in, added to the configuration\'s `zones` (default: none)')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .addOption(
      new Option(
        '-c, --conffile <file>',
        `configuration file (default: ${candidates[0]}, else ${candidates[3]}, .yml/.json accepted too; ` +
          'none found: built-in defaults, keys in ~/.nsregc)',
      ),
    )
    .addOption(
      new Option('-n, --name <name>', `label to register in each zone (default: the configuration's name, else the host name "${io.hostname ?? os.hostname()}")`),
    )
    .addOption(
      new Option('-i, --interface <ifname>', 'watch this interface; repeat or comma-separate for more (default: the configuration\'s interfaces, else all)').argParser(collect),
    )
    .addOption(
      new Option('-a, --address <ip>', 'also register this address; repeatable (default: the configuration\'s extra-addresses, else none)').argParser(collect),
    )
    .addOption(
      new Option(
        '--dns-server <host[@port]>',
        'DNS server for zone discovery and SRV look-ups, alias -s/--server (default: the configuration\'s dns-server, else the first nameserver of /etc/resolv.conf, port 53)',
      ),
    )
    .addOption(new Option('-s, --server <host[@port]>').hideHelp())
    .addOption(
      new Option('--dns-tcp', 'send those look-ups over TCP, alias -t/--tcp (default: the configuration\'s dns-tcp, else UDP); registration is always TCP'),
    )
    .addOption(new Option('-t, --tcp').hideHelp())
    .addOption(new Option('-k, --keep', 'leave the records in DNS on exit (default: the configuration\'s keep-records, else off)'))
    .addOption(new Option('--debug', 'log at debug level (default: the configuration\'s debug, else off)'))
    .addOption(new Option('--print', 'log every update sent and every reply in presentation form (default: off)'))
    .helpOption('-h, --help', 'show this help and exit')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  // True aliases: whichever spelling comes last on the command line wins.
  cmd.on('option:server', (value: string) => cmd.setOptionValue('dnsServer', value));
  cmd.on('option:tcp', () => cmd.setOptionValue('dnsTcp', true));
  return cmd;
}

/**
 * Parses argv (node, script, args…). Returns the exit code instead when
 * commander already handled the command line (--help, --version, a usage
 * error it has reported on stderr).
 */
export function parseCommandLine(argv: readonly string[], io: MainIO): ParsedCommandLine | { exitCode: number } {
  const cmd = program(io);
  try {
    cmd.parse(argv);
  } catch (err) {
    return { exitCode: (err as { exitCode?: number }).exitCode ?? 1 };
  }
  const o = cmd.opts<RawOptions>();
  const zones = cmd.args;
  const flags: ClientFlags = {
    ...(o.name === undefined ? {} : { name: o.name }),
    ...(o.interface === undefined ? {} : { interfaces: o.interface }),
    ...(o.address === undefined ? {} : { addresses: o.address }),
    ...(o.dnsServer === undefined ? {} : { dnsServer: o.dnsServer }),
    ...(o.dnsTcp === undefined ? {} : { dnsTcp: o.dnsTcp }),
    ...(o.keep === undefined ? {} : { keepRecords: o.keep }),
    ...(o.debug === undefined ? {} : { debug: o.debug }),
    ...(zones.length === 0 ? {} : { zones }),
  };
  return { ...(o.conffile === undefined ? {} : { conffile: o.conffile }), print: o.print === true, flags };
}

function defaultIO(): MainIO {
  return { stdout: process.stdout, stderr: process.stderr, home: os.homedir() };
}

type Stop = { code: number; signal: 'SIGTERM' | 'SIGINT' };

/** Runs nsregc; resolves with the process exit code. */
export async function main(argv: readonly string[], io: MainIO = defaultIO()): Promise<number> {
  const parsed = parseCommandLine(argv, io);
  if ('exitCode' in parsed) return parsed.exitCode;
  const fail = (message: string): number => {
    io.stderr.write(`nsregc: ${message}\n`);
    return 1;
  };

  let setup: ClientSetup;
  try {
    setup = await loadClientSetup({
      ...(parsed.conffile === undefined ? {} : { conffile: parsed.conffile }),
      home: io.home,
      flags: parsed.flags,
      ...(io.hostname === undefined ? {} : { hostname: io.hostname }),
      ...(io.searchPaths === undefined ? {} : { searchPaths: io.searchPaths }),
    });
  } catch (err) {
    return fail(errorMessage(err));
  }
  const { config } = setup;
  const logger = createLogger({ name: 'nsregc', debug: config.debug, destination: io.stdout });
  for (const w of setup.warnings) logger.warn(w);
  logger.info(
    { config: config.file ?? '(none: built-in defaults)', label: config.name, keepRecords: config.keepRecords },
    'nsregc starting',
  );

  let key: ClientKey;
  try {
    key = await prepareClientKey(setup, logger);
  } catch (err) {
    const message = `cannot use the key pair: ${errorMessage(err)}`;
    logger.fatal(message);
    return fail(message);
  }

  // Signals are watched from here on, so one arriving during discovery is not lost.
  const abort = new AbortController();
  let onTerm: () => void = () => undefined;
  let onInt: () => void = () => undefined;
  const stopped = new Promise<Stop>((resolve) => {
    onTerm = (): void => {
      abort.abort();
      resolve({ code: 0, signal: 'SIGTERM' });
    };
    onInt = (): void => {
      abort.abort();
      resolve({ code: 2, signal: 'SIGINT' });
    };
  });
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  const unhook = (): void => {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  };

  // Discovery can wait a whole dns-timeout before its retry: a signal meanwhile ends the run at
  // once. Nothing is registered before start() resolves, so there is nothing to remove.
  const starting = NsregClient.start({ config, key, logger, print: parsed.print, signal: abort.signal });
  const first = await Promise.race([
    starting.then(
      (c) => ({ client: c }),
      (err: unknown) => ({ error: err }),
    ),
    stopped.then((stop) => ({ stop })),
  ]);
  if ('stop' in first) {
    unhook();
    // start() notices the abort at its next step; should it get further, undo that.
    void starting.then((c) => c.shutdown(false)).catch(() => undefined);
    logger.info({ signal: first.stop.signal }, 'stopped during start-up');
    return first.stop.code;
  }
  if ('error' in first) {
    unhook();
    const err = first.error;
    const message = err instanceof ClientStartError ? err.message : `start-up failed: ${errorMessage(err)}`;
    logger.fatal(message);
    return fail(message);
  }
  const client = first.client;

  // The client's own timers do not hold the process open (they are unref'd); this does, until the end.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const outcome = await Promise.race([stopped, client.allRefused.then(() => 'refused' as const)]);
  clearInterval(keepAlive);
  if (outcome === 'refused') {
    unhook();
    const message = 'every nsregd server refused the registration; giving up';
    logger.error(message);
    await client.shutdown(true);
    io.stderr.write(`nsregc: ${message}\n`);
    return 1;
  }
  logger.info({ signal: outcome.signal, keepRecords: config.keepRecords }, 'shutting down');
  try {
    await client.shutdown(config.keepRecords);
  } catch (err) {
    logger.error({ err: err }, 'shutdown failed');
  }
  unhook();
  logger.info('stopped');
  return client.refusedEverywhere ? 1 : outcome.code;
}
