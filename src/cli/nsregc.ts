/**
 * `nsregc` command line (README, "Running nsregc"): parse flags, make the
 * logger, run the client until a signal or until every server refused us.
 * SIGTERM exits 0, SIGINT exits 2 (records removed first unless --keep);
 * nothing to register with, or every server refusing, exits 1. The
 * original's Go flag syntax (`-keep`, `--tcp=true`, `-k=false`) is accepted too.
 */
import * as os from 'node:os';
import { Command, Option } from 'commander';
import { clientConfigCandidates, type ClientFlags } from '../config/client.js';
import { ClientStartError } from '../client/errors.js';
import { loadClientSetup, NsregClient, prepareClientKey, type ClientSetup } from '../client/client.js';
import type { ClientKey } from '../client/keys.js';
import { createLogger } from './logger.js';
import { packageVersion } from './version.js';
import { errorMessage, NsregError } from '../errors.js';

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

/**
 * Every option by each of its names: the long name it is given to
 * commander as, whether it is a switch, and (switches) the hidden option
 * that turns it off.
 */
const OPTION_NAMES: ReadonlyMap<string, { readonly long: string; readonly off?: string }> = new Map(
  (
    [
      [['c', 'conffile'], 'conffile'],
      [['n', 'name'], 'name'],
      [['i', 'interface'], 'interface'],
      [['a', 'address'], 'address'],
      [['dns-server'], 'dns-server'],
      [['s', 'server'], 'server'],
      [['dns-tcp'], 'dns-tcp', 'no-dns-tcp'],
      [['t', 'tcp'], 'tcp', 'no-dns-tcp'],
      [['k', 'keep'], 'keep', 'no-keep'],
      [['debug'], 'debug', 'no-debug'],
      [['print'], 'print', 'no-print'],
      [['h', 'help'], 'help', ''],
      [['V', 'version'], 'version', ''],
    ] as Array<[string[], string, string?]>
  ).flatMap(([names, long, off]) => names.map((n) => [n, off === undefined ? { long } : { long, off }] as const)),
);

/** Go's strconv.ParseBool, which its flag package uses for `-flag=value`. */
const GO_BOOLS: ReadonlyMap<string, boolean> = new Map([
  ...['1', 't', 'T', 'TRUE', 'true', 'True'].map((v) => [v, true] as const),
  ...['0', 'f', 'F', 'FALSE', 'false', 'False'].map((v) => [v, false] as const),
]);

/**
 * The original client's flag syntax (Go's flag package) in the form
 * commander reads: `-name` and `--name` alike, `-flag=value` and
 * `--flag=value` for every option, and a switch given a boolean
 * (`--keep=false`, `-t=1`). Tokens after `--` and the arguments of options
 * are left alone. Throws UsageError for a switch given a value Go would
 * refuse.
 */
function goFlagSyntax(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const token = args[i];
    if (token === '--') {
      out.push(...args.slice(i));
      break;
    }
    const m = /^(-{1,2})([A-Za-z][A-Za-z0-9-]*)(?:=(.*))?$/s.exec(token);
    const opt = m === null ? undefined : OPTION_NAMES.get(m[2]);
    if (m === null || opt === undefined) {
      out.push(token);
      continue;
    }
    const value = m[3];
    if (opt.off === undefined) {
      // An option with an argument: the argument goes with it, whatever it looks like.
      if (value !== undefined) out.push(`--${opt.long}=${value}`);
      else if (i + 1 < args.length) out.push(`--${opt.long}=${args[++i]}`);
      else out.push(`--${opt.long}`);
      continue;
    }
    if (value === undefined) {
      out.push(`--${opt.long}`);
      continue;
    }
    const on = GO_BOOLS.get(value);
    if (on === undefined) throw new UsageError(`invalid boolean value "${value}" for ${m[1]}${m[2]}`);
    if (on) out.push(`--${opt.long}`);
    else if (opt.off !== '') out.push(`--${opt.off}`);
  }
  return out;
}

/** A command line the original's flag parser would refuse too. */
class UsageError extends NsregError {
  readonly code = 'ERR_USAGE';
}

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
    // What `--dns-tcp=false` and the like become (goFlagSyntax).
    .addOption(new Option('--no-dns-tcp').hideHelp())
    .addOption(new Option('--no-keep').hideHelp())
    .addOption(new Option('--no-debug').hideHelp())
    .addOption(new Option('--no-print').hideHelp())
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
    cmd.parse([...argv.slice(0, 2), ...goFlagSyntax(argv.slice(2))]);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`nsregc: ${err.message}\n`);
      return { exitCode: 1 };
    }
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

  // Opening the address source can take a moment: a signal meanwhile ends the run at once.
  // Nothing is registered before start() resolves, so there is nothing to remove.
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

  // The client's own timers do not hold the process open (they are unref'd); this does, until shutdown is over.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const outcome = await Promise.race([stopped, client.allRefused.then(() => 'refused' as const)]);
  if (outcome === 'refused') {
    unhook();
    const message = 'every nsregd server refused the registration; giving up';
    logger.error(message);
    await client.shutdown(true);
    clearInterval(keepAlive);
    io.stderr.write(`nsregc: ${message}\n`);
    return 1;
  }
  logger.info({ signal: outcome.signal, keepRecords: config.keepRecords }, 'shutting down');
  try {
    // Removals are retried until the stop timeout; their back-off timers must not let the process end first.
    await client.shutdown(config.keepRecords);
  } catch (err) {
    logger.error({ err: err }, 'shutdown failed');
  }
  clearInterval(keepAlive);
  unhook();
  logger.info('stopped');
  return client.refusedEverywhere ? 1 : outcome.code;
}
