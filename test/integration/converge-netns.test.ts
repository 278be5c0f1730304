/**
 * Restarts, reloads and upstream restarts are non-events for registered
 * hosts, shown end to end inside a network namespace made for the test
 * (issue 11, "Done when"): bin/nsregd, bin/nsregc registering the addresses
 * `ip` puts on a veth, and real upstreams (BIND named over nsupdate, the
 * built-in zone server, Unbound), all on the namespace's own loopback.
 *
 * For named and for the built-in zone server, after SIGTERM + start and
 * after kill -9 + start on the same data directory, with nsregc running
 * and with no client running (nsregc stopped with --keep), every name
 * resolves again within RESOLVE_MS of the new daemon process being
 * spawned. Upstreams added by SIGHUP get every live record within
 * RESOLVE_MS of the signal. A restarted Unbound gets every live record
 * again within REPAIR_MS (default status-interval). An nsregc with no
 * address keeps its claim past its key-ttl through key-only refreshes.
 * Each bound is asserted by waiting for the condition, never by sleeping.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { nsupdateUpstream, serveUpstream, unboundUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually } from '../helpers/eventually.js';
import type { TsigKeySpec } from '../helpers/named.js';
import { daemonYaml } from '../helpers/nsregd-lab.js';
import { addVeth, createNetns, digInNetns, LoggedProcess, REPO_ROOT, startNamedInNetns, type LogLine, type Netns, type NetnsNamed } from '../helpers/netns.js';
import { startUnbound, type UnboundLab } from '../helpers/unbound.js';

/** The bound: names resolvable again ≤ 5 s after the new daemon process starts, or after a SIGHUP. */
const RESOLVE_MS = 5000;
/** The bound for repairing a restarted Unbound (nsregd's default status-interval, 10 s, polls it). */
const REPAIR_MS = 30_000;
/** key-ttl of the address-less client: it refreshes its claim every half of it. */
const KEY_TTL_MS = 4000;

const NAMED_ZONE = 'named.example.org.';
const SERVED_ZONE = 'served.example.org.';
const UNBOUND_ZONE = 'unbound.example.org.';
const tsig: TsigKeySpec = { name: 'nsregd.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };

/** What `ip` puts on veth0: every registered name carries exactly these. */
const ADDRESSES = { A: ['192.0.2.10', '198.51.100.10'], AAAA: ['2001:db8::10'] } as const;
/** alpha: nsregc keeps running (until the no-client cases); beta: registered by an nsregc that exited with --keep. */
const HOSTS = ['alpha', 'beta'] as const;

type Settings = Record<string, unknown>;
type Lookup = (name: string, type: string) => Promise<string[]>;

let ns: Netns | undefined;
let named: NetnsNamed | undefined;
let unbound: UnboundLab | undefined;
let work = '';
/** Every nsregd and nsregc started, stopped in after(). */
const started: LoggedProcess[] = [];

function spawnLogged(label: string, bin: 'nsregd' | 'nsregc', args: readonly string[], env: NodeJS.ProcessEnv = {}): LoggedProcess {
  assert.ok(ns);
  const child = ns.spawn(process.execPath, [path.join(REPO_ROOT, 'bin', bin), ...args], { env: { ...process.env, ...env } });
  const p = new LoggedProcess(label, child);
  started.push(p);
  return p;
}

/** Every host's A and AAAA records as `lookup` sees them, one string (sorted), or the failure. */
async function published(lookup: Lookup, zone: string): Promise<string> {
  const parts = await Promise.all(
    HOSTS.flatMap((h) =>
      (['A', 'AAAA'] as const).map(async (type) => {
        const got = await lookup(`${h}.${zone}`, type).then(
          (l) => [...l].sort().join(','),
          () => 'no answer',
        );
        return `${h} ${type} ${got}`;
      }),
    ),
  );
  return parts.join('; ');
}

/** What published() returns once every host's records are there. */
const EVERYTHING = HOSTS.flatMap((h) => [`${h} A ${ADDRESSES.A.join(',')}`, `${h} AAAA ${ADDRESSES.AAAA.join(',')}`]).join('; ');

/** Waits until `lookup` shows every host's addresses; returns the ms since `since`, asserted ≤ `boundMs`. */
async function allPublishedWithin(what: string, lookup: Lookup, zone: string, since: number, boundMs: number): Promise<number> {
  await eventually(what, () => published(lookup, zone), (v) => v === EVERYTHING, boundMs - (Date.now() - since));
  const took = Date.now() - since;
  assert.ok(took <= boundMs, `${what}: took ${took} ms, bound ${boundMs} ms`);
  return took;
}

const servedBy =
  (port: number): Lookup =>
  (name, type) =>
    digInNetns(ns!, port, name, type);

before(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'converge-netns-'));
  ns = await createNetns('converge');
  await addVeth(ns, 'veth0', 'veth1');
  for (const a of ADDRESSES.A) await ns.ip('addr', 'add', `${a}/24`, 'dev', 'veth0');
  for (const a of ADDRESSES.AAAA) await ns.ip('addr', 'add', `${a}/64`, 'dev', 'veth0', 'nodad');
  // The address-less client's interface: down, so not even a link-local address.
  await addVeth(ns, 'idle0', 'idle1', { up: false });
  named = await startNamedInNetns(
    ns,
    [NAMED_ZONE, SERVED_ZONE].map((name) => ({ name, allowUpdateKey: tsig.name })),
    [tsig],
  );
});

after(async () => {
  try {
    for (const p of started.reverse()) await p.kill();
    await unbound?.stop();
    await named?.stop();
  } finally {
    await ns?.destroy();
    if (work !== '') await rm(work, { recursive: true, force: true });
  }
});

/** One nsregd (restartable on the same data directory) for one zone. */
class Daemon {
  proc: LoggedProcess | undefined;

  constructor(
    readonly id: string,
    readonly zone: string,
    readonly port: number,
  ) {}

  /** In the work directory, which exists once the file's before() ran. */
  get conf(): string {
    assert.notEqual(work, '');
    return path.join(work, `${this.id}.yaml`);
  }

  get dataDir(): string {
    assert.notEqual(work, '');
    return path.join(work, `${this.id}-data`);
  }

  async configure(upstreams: readonly Settings[]): Promise<void> {
    const zone = zoneYaml(this.zone, {
      'max-key-ttl': '720h',
      'max-addr-ttl': '1h',
      'allowed-nets': ['127.0.0.0/8'],
      'allow-any-addr': true,
      upstreams,
    });
    await writeFile(this.conf, daemonYaml(this.port, this.dataDir, zone));
  }

  /** Spawns bin/nsregd; resolves with the spawn time once it listens. */
  async start(): Promise<{ spawned: number; listening: number }> {
    const spawned = Date.now();
    this.proc = spawnLogged(`nsregd ${this.id}`, 'nsregd', ['-c', this.conf, '--debug']);
    await this.proc.waitForMsg('listening for registrations');
    return { spawned, listening: Date.now() };
  }

  /** Ends the running process with `signal`; SIGTERM must be a clean exit. */
  async stop(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const p = this.proc;
    assert.ok(p);
    p.child.kill(signal);
    const code = await p.exited();
    if (signal === 'SIGTERM') assert.equal(code, 0, p.dump());
  }

  /** nsregc for `host` in this daemon's zone, asking the daemon itself for its SRV record (no zone discovery). */
  client(host: string, ...extra: string[]): LoggedProcess {
    const args = ['--dns-server', `127.0.0.1@${this.port}`, '--dns-tcp', '-n', host, ...extra, this.zone];
    return spawnLogged(`nsregc ${host}.${this.zone}`, 'nsregc', args, { HOME: path.join(work, `home-${this.id}-${host}`) });
  }
}

/** Registers alpha (nsregc left running) and beta (nsregc exited with --keep); resolves with alpha's client. */
async function registerHosts(d: Daemon, lookup: Lookup): Promise<LoggedProcess> {
  const beta = d.client('beta', '-i', 'veth0', '-k');
  for (const a of [...ADDRESSES.A, ...ADDRESSES.AAAA]) await beta.waitForMsg('address registered', { address: a });
  beta.child.kill('SIGTERM');
  assert.equal(await beta.exited(), 0, beta.dump());
  await beta.waitForMsg('keeping records on exit');
  const alpha = d.client('alpha', '-i', 'veth0', '-k');
  await allPublishedWithin('both hosts registered', lookup, d.zone, Date.now(), RESOLVE_MS);
  return alpha;
}

interface Kind {
  readonly title: string;
  readonly id: string;
  readonly zone: string;
  readonly port: number;
  readonly upstreams: () => Settings[];
  /** Where the records are looked up. */
  readonly lookup: Lookup;
  /** Upstreams a SIGHUP adds, with where each is looked up. */
  readonly added: () => Array<{ what: string; upstream: Settings; lookup: Lookup }>;
}

/** Zone server ports inside the namespace (it is ours alone: any port is free). */
const SERVE_PORT = 5301;
const ADDED_SERVE_PORT = 5302;
const ADDED_TO_NAMED_SERVE_PORT = 5303;
const IDLE_SERVE_PORT = 5304;

const kinds: Kind[] = [
  {
    title: 'real named (nsupdate upstream)',
    id: 'named',
    zone: NAMED_ZONE,
    port: 8053,
    upstreams: () => [nsupdateUpstream(NAMED_ZONE, named!.port, tsig, { timeout: '3s' })],
    lookup: (name, type) => named!.query(name, type),
    added: () => [{ what: 'a built-in zone server', upstream: serveUpstream(ADDED_TO_NAMED_SERVE_PORT), lookup: servedBy(ADDED_TO_NAMED_SERVE_PORT) }],
  },
  {
    title: 'the built-in zone server (serve upstream)',
    id: 'serve',
    zone: SERVED_ZONE,
    port: 8054,
    upstreams: () => [serveUpstream(SERVE_PORT)],
    lookup: servedBy(SERVE_PORT),
    added: () => [
      { what: 'a second built-in zone server', upstream: serveUpstream(ADDED_SERVE_PORT), lookup: servedBy(ADDED_SERVE_PORT) },
      {
        what: 'named (nsupdate)',
        upstream: nsupdateUpstream(SERVED_ZONE, named!.port, tsig, { timeout: '3s' }),
        lookup: (name, type) => named!.query(name, type),
      },
    ],
  },
];

for (const kind of kinds) {
  describe(`daemon restarts and reloads in a network namespace, with ${kind.title}`, () => {
    const d = new Daemon(kind.id, kind.zone, kind.port);
    let alpha: LoggedProcess | undefined;

    before(async () => {
      await d.configure(kind.upstreams());
      await d.start();
      alpha = await registerHosts(d, kind.lookup);
    });

    /** Stops the daemon with `signal`, starts it again; every name resolves ≤ RESOLVE_MS after the spawn. */
    async function restart(t: TestContext, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
      assert.equal(await published(kind.lookup, d.zone), EVERYTHING, 'every name published before the stop');
      await d.stop(signal);
      const gone = await published(kind.lookup, d.zone);
      const { spawned, listening } = await d.start();
      const took = await allPublishedWithin(`every name after ${signal} and a start`, kind.lookup, d.zone, spawned, RESOLVE_MS);
      t.diagnostic(`${kind.id} ${signal}: while stopped: ${gone}; listening ${listening - spawned} ms after the spawn, resolvable ${took} ms after it`);
    }

    const alphaRunning = (): boolean => alpha !== undefined && alpha.child.exitCode === null && alpha.child.signalCode === null;

    it('nsregc running: SIGTERM + start on the same data directory, every name resolves ≤ 5 s after the new process is spawned', async (t) => {
      await restart(t, 'SIGTERM');
      assert.ok(alphaRunning(), alpha?.dump());
    });

    it('nsregc running: kill -9 + start, every name resolves ≤ 5 s after the new process is spawned', async (t) => {
      await restart(t, 'SIGKILL');
      assert.ok(alphaRunning(), alpha?.dump());
    });

    it('no client running (nsregc stopped with --keep): SIGTERM + start, then kill -9 + start, every name resolves ≤ 5 s each time', async (t) => {
      assert.ok(alpha);
      alpha.child.kill('SIGTERM');
      assert.equal(await alpha.exited(), 0, alpha.dump());
      await alpha.waitForMsg('keeping records on exit');
      assert.equal(await published(kind.lookup, d.zone), EVERYTHING, 'the records stay after nsregc --keep exits');
      await restart(t, 'SIGTERM');
      await restart(t, 'SIGKILL');
    });

    it('SIGHUP adding upstreams: every live record on each ≤ 5 s after the signal', async (t) => {
      const added = kind.added();
      for (const a of added) assert.notEqual(await published(a.lookup, d.zone), EVERYTHING, `${a.what} has nothing before the reload`);
      await d.configure([...kind.upstreams(), ...added.map((a) => a.upstream)]);
      const signalled = Date.now();
      d.proc!.child.kill('SIGHUP');
      for (const a of added) {
        const took = await allPublishedWithin(`every live record on ${a.what}`, a.lookup, d.zone, signalled, RESOLVE_MS);
        t.diagnostic(`${kind.id} SIGHUP: ${a.what} complete ${took} ms after the signal`);
      }
      assert.equal(await published(kind.lookup, d.zone), EVERYTHING, 'still published on the first upstream');
    });
  });
}

describe('an Unbound upstream restarted inside a network namespace', () => {
  const d = new Daemon('unbound', UNBOUND_ZONE, 8055);

  before(async () => {
    assert.ok(ns);
    unbound = await startUnbound({ netns: ns });
    // status-interval left at its default (10 s): the bound holds with the shipped setting.
    await d.configure([unboundUpstream(unbound)]);
    await d.start();
    await registerHosts(d, (name, type) => unbound!.query(name, type));
  });

  it('every live record is published again ≤ 30 s after Unbound is killed and started again', async (t) => {
    const lab = unbound!;
    const lookup: Lookup = (name, type) => lab.query(name, type);
    const pid = lab.pid();
    const killed = Date.now();
    await lab.start(); // SIGTERM, then a new Unbound on the same ports, waited for until it serves
    assert.notEqual(lab.pid(), pid);
    const serving = Date.now();
    const took = await allPublishedWithin('every live record in the restarted Unbound', lookup, d.zone, killed, REPAIR_MS);
    t.diagnostic(`unbound: serving again ${serving - killed} ms after the kill, every record back ${took} ms after it`);
    await d.proc!.waitForMsg('unbound: every live record published again');
  });
});

describe('an address-less nsregc in a network namespace', () => {
  const d = new Daemon('idle', 'idle.example.org.', 8056);

  before(async () => {
    await d.configure([serveUpstream(IDLE_SERVE_PORT)]);
    await d.start();
  });

  /** An nsregc with key-ttl KEY_TTL_MS (its own configuration file and key) watching only idle0, which has no address. */
  async function addressLess(host: string): Promise<LoggedProcess> {
    const dir = path.join(work, `nsregc-${host}`);
    await mkdir(dir);
    await writeFile(path.join(dir, 'nsregc.yaml'), `key-ttl: ${KEY_TTL_MS / 1000}s\n`);
    return d.client(host, '-c', path.join(dir, 'nsregc.yaml'), '-i', 'idle0');
  }

  const claimedAt = async (host: string, nth = 1): Promise<number> => {
    const name = `${host}.${d.zone}`;
    const claims = (): LogLine[] => d.proc!.lines.filter((l) => l['msg'] === 'new name claimed' && l['name'] === name);
    const seen = await eventually(`claim ${nth} of ${name}`, claims, (c) => c.length >= nth, RESOLVE_MS);
    return Number(seen[nth - 1]['time']);
  };

  it('keeps its claim past key-ttl with key-only refreshes: a second key is refused after more than one key-ttl', async (t) => {
    const owner = await addressLess('idle');
    // The control: the same client killed (-9) right after its claim sends no refresh, and its claim lapses.
    const lapsing = await addressLess('lapse');
    const ownerClaim = await claimedAt('idle');
    const lapseClaim = await claimedAt('lapse');
    lapsing.child.kill('SIGKILL');
    await lapsing.exited();
    assert.equal(lapsing.lines.filter((l) => String(l['msg']).startsWith('refreshing the key claim')).length, 0);

    const refreshes = (): number => owner.lines.filter((l) => String(l['msg']).startsWith('refreshing the key claim')).length;
    // Three refreshes, every half key-ttl: 1.5 key-ttls after the claim, so its first expiry is long past.
    await eventually('three key-only refreshes', refreshes, (n) => n >= 3, 3 * KEY_TTL_MS);
    assert.equal(owner.lines.filter((l) => l['msg'] === 'address registered').length, 0, 'nothing but the key was sent');

    const intruder = d.client('idle', '-i', 'veth0');
    const thief = d.client('lapse', '-i', 'veth0');
    assert.equal(await intruder.exited(), 1, intruder.dump());
    const refused = await intruder.waitForMsg('server refused registration');
    const refusedAfter = Number(refused['time']) - ownerClaim;
    assert.ok(refusedAfter > KEY_TTL_MS, `refused ${refusedAfter} ms after the claim, key-ttl ${KEY_TTL_MS} ms`);
    assert.equal(refused['reason'], 'Invalid key for name');

    // Whereas the claim nobody refreshed lapsed: another key takes that name.
    const stolenAfter = (await claimedAt('lapse', 2)) - lapseClaim;
    assert.ok(stolenAfter > KEY_TTL_MS, `taken ${stolenAfter} ms after the claim, key-ttl ${KEY_TTL_MS} ms`);
    await thief.waitForMsg('address registered', { address: ADDRESSES.A[0] });
    t.diagnostic(`idle: second key refused ${refusedAfter} ms after the claim; the unrefreshed claim taken ${stolenAfter} ms after it (key-ttl ${KEY_TTL_MS} ms)`);
  });
});
