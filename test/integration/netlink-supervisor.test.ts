/**
 * The supervised rtnetlink watcher (src/client/addresses/netlink-supervisor.ts)
 * against a real kernel, inside a throw-away network namespace: the watcher
 * child is killed (SIGKILL), and driven into the netlink package's native
 * ENOBUFS abort (tiny receive buffer, child stopped while 200 addresses
 * arrive); the parent survives, restarts the watcher and its consumer ends
 * up with the right address list, and its default-route listener is told
 * once that a route change may have been missed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { instanceKey, type AddressEvent, type LocalAddress } from '../../src/client/addresses/source.js';
import { requireTool, run } from '../helpers/tools.js';

const DRIVER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'helpers', 'address-driver.js');

type Line = Record<string, unknown> & { type: string };

/** The driver (`child` mode) and what its consumer has been told. */
class Supervised {
  readonly lines: Line[] = [];
  /** The consumer's view: the first listing plus every event since. */
  readonly view = new Map<string, LocalAddress>();
  stderr = '';
  exited = false;
  #waiters: Array<() => void> = [];

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (raw) => {
      const l = JSON.parse(raw) as Line;
      this.lines.push(l);
      if (l.type === 'list' && !this.lines.some((x) => x.type === 'ready')) {
        for (const a of l['addresses'] as LocalAddress[]) this.view.set(instanceKey(a), a);
      } else if (l.type === 'event') {
        const e = l['event'] as AddressEvent;
        if (e.kind === 'added') this.view.set(instanceKey(e.address), e.address);
        else this.view.delete(instanceKey(e.address));
      }
      this.#wake();
    });
    child.stderr.on('data', (c: Buffer) => (this.stderr += c.toString()));
    child.on('exit', () => {
      this.exited = true;
      this.#wake();
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  async waitFor(what: string, pred: (l: Line) => boolean, fromIndex = 0, timeoutMs = 10_000): Promise<Line> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.slice(fromIndex).find(pred);
      if (found !== undefined) return found;
      if (this.exited) throw new Error(`driver exited before ${what}; stderr: ${this.stderr}\n${this.dump()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}\n${this.dump()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  dump(): string {
    return this.lines.map((l) => JSON.stringify(l).slice(0, 300)).join('\n');
  }

  async watcherPid(): Promise<number> {
    const from = this.lines.length;
    this.child.stdin.write('pid\n');
    const l = await this.waitFor('pid', (x) => x.type === 'pid', from);
    assert.equal(typeof l['pid'], 'number');
    return l['pid'] as number;
  }

  async list(): Promise<LocalAddress[]> {
    const from = this.lines.length;
    this.child.stdin.write('list\n');
    return (await this.waitFor('a listing', (x) => x.type === 'list', from))['addresses'] as LocalAddress[];
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  }
}

function keysOf(list: readonly LocalAddress[]): string[] {
  return list.map((a) => instanceKey(a)).sort();
}

describe('supervised netlink watcher in a network namespace', () => {
  const ns = `nsregc-sup-${randomBytes(4).toString('hex')}`;
  let ip: string;
  const drivers: Supervised[] = [];

  before(async () => {
    ip = requireTool('ip');
    const r = await run(ip, ['netns', 'add', ns]);
    assert.equal(r.code, 0, `ip netns add: ${r.stderr}`);
    for (const args of [
      ['link', 'set', 'lo', 'up'],
      ['link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1'],
      ['link', 'set', 'veth0', 'up'],
    ]) {
      const res = await run(ip, ['-n', ns, ...args]);
      assert.equal(res.code, 0, `ip ${args.join(' ')}: ${res.stderr}`);
    }
  });

  after(async () => {
    for (const d of drivers) await d.stop();
    await run(ip, ['netns', 'del', ns]);
  });

  async function start(...args: string[]): Promise<Supervised> {
    const child = spawn(ip, ['netns', 'exec', ns, process.execPath, DRIVER, 'child', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const d = new Supervised(child);
    drivers.push(d);
    await d.waitFor('ready', (l) => l.type === 'ready');
    return d;
  }

  async function addr(...args: string[]): Promise<void> {
    const r = await run(ip, ['-n', ns, 'addr', ...args]);
    assert.equal(r.code, 0, `ip addr ${args.join(' ')}: ${r.stderr}`);
  }

  it('a killed watcher is restarted and changes made meanwhile are reported', async () => {
    const d = await start();
    await addr('add', '10.61.0.1/24', 'dev', 'veth0');
    await d.waitFor('10.61.0.1 added', (l) => l.type === 'event' && (l['event'] as AddressEvent).address.address === '10.61.0.1');
    const pid = await d.watcherPid();
    const mark = d.lines.length;
    process.kill(pid, 'SIGKILL');
    // Made while no watcher may be running: only the re-read can report it.
    await addr('add', '10.63.0.2/24', 'dev', 'veth0');
    await addr('del', '10.61.0.1/24', 'dev', 'veth0');
    const died = await d.waitFor('the death logged', (l) => l.type === 'log' && String(l['msg']).includes('netlink watcher died'), mark);
    assert.equal(died['how'], 'signal SIGKILL');
    await d.waitFor('restart logged', (l) => l.type === 'log' && l['msg'] === 'netlink watcher restarted', mark);
    await d.waitFor('10.63.0.2 added', (l) => l.type === 'event' && (l['event'] as AddressEvent).address.address === '10.63.0.2', mark);
    await d.waitFor(
      '10.61.0.1 removed',
      (l) => l.type === 'event' && (l['event'] as AddressEvent).kind === 'removed' && (l['event'] as AddressEvent).address.address === '10.61.0.1',
      mark,
    );
    assert.notEqual(await d.watcherPid(), pid, 'a new watcher process');
    // Events keep flowing from the new watcher.
    await addr('add', '10.61.0.3/24', 'dev', 'veth0');
    await d.waitFor('10.61.0.3 added', (l) => l.type === 'event' && (l['event'] as AddressEvent).address.address === '10.61.0.3', mark);
    // The namespace has no default route, so the one route notification is
    // the restart's own (a change may have been missed while no watcher ran);
    // the address routes the kernel announced meanwhile are not news. It
    // precedes the 10.61.0.3 event, which came from the new watcher.
    assert.equal(d.lines.slice(mark).filter((l) => l.type === 'route').length, 1, d.dump());
    assert.deepEqual([...d.view.keys()].sort(), keysOf(await d.list()));
    await addr('flush', 'dev', 'veth0');
    await d.stop();
  });

  it('survives the netlink package aborting on ENOBUFS (tiny buffer, stopped watcher, 200 new addresses)', async () => {
    const d = await start('1024');
    const pid = await d.watcherPid();
    const mark = d.lines.length;
    process.kill(pid, 'SIGSTOP');
    const batch = Array.from({ length: 200 }, (_, i) => `addr add 10.62.${Math.floor(i / 200)}.${(i % 200) + 1}/16 dev veth0`).join('\n');
    const r = await run(ip, ['-n', ns, '-batch', '-'], { input: `${batch}\n` });
    assert.equal(r.code, 0, `ip -batch: ${r.stderr}`);
    process.kill(pid, 'SIGCONT');
    const died = await d.waitFor('the abort logged', (l) => l.type === 'log' && String(l['msg']).includes('netlink watcher died'), mark);
    assert.equal(died['how'], 'signal SIGABRT', `the package's native abort: ${String(died['stderr'])}`);
    await d.waitFor('restart logged', (l) => l.type === 'log' && l['msg'] === 'netlink watcher restarted', mark);
    assert.equal(d.exited, false, 'the supervising process is alive');
    const listed = await d.list();
    assert.equal(listed.filter((a) => a.address.startsWith('10.62.')).length, 200);
    assert.deepEqual([...d.view.keys()].sort(), keysOf(listed), 'the consumer heard every address');
    await addr('flush', 'dev', 'veth0');
    await d.stop();
  });
});
