/**
 * "Daemon restart under a running nsregc — registrations restored": our
 * nsregd (real process, built-in zone server as its upstream) restarts on
 * the same port and data dir, once after SIGTERM (which removes the
 * records upstream) and once after kill -9; the in-process NsregClient's
 * liveness probe notices and registers everything again, and the zone
 * server answers with the addresses within a few seconds. Then the case a
 * probe cannot see as an outage: the daemon restarts while no probe is due
 * (every probe is answered), and the new start-up identifier in its SRV
 * answer brings the records back at the next probe.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Opcode, RRClass, RRType } from '../../src/dns/constants.js';
import { decodeMessage, emptyMessage, encodeMessage } from '../../src/dns/message.js';
import { tcpExchange } from '../../src/net/transport.js';
import { systemClock, type Clock, type TimerHandle } from '../../src/clock.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { freePort } from '../helpers/ports.js';
import { startStaticClient } from '../helpers/static-client.js';
import { LOOPBACK_ZONE, serveUpstream, zoneYaml } from '../helpers/config-yaml.js';

const ZONE = 'dynamic.example.org.';
const NAME = `lab.${ZONE}`;


/**
 * Real time, but the test can hold every timer that falls due (a held one
 * runs at release): a restart made while holding completes between two
 * probes, however long the daemon takes to start. Counts the timers of
 * `countMs` that ran (the probes).
 */
class HoldingClock implements Clock {
  private held = false;
  private readonly queued: Array<{ fn: () => void; cancelled: boolean }> = [];
  fired = 0;
  constructor(private readonly countMs: number) {}
  now(): number {
    return systemClock.now();
  }
  schedule(ms: number, fn: () => void): TimerHandle {
    const entry = { fn, cancelled: false };
    const t = systemClock.schedule(ms, () => {
      const run = (): void => {
        if (entry.cancelled) return;
        if (ms === this.countMs) this.fired++;
        fn();
      };
      if (this.held) this.queued.push({ fn: run, cancelled: false });
      else run();
    });
    return {
      cancel: () => {
        entry.cancelled = true;
        t.cancel();
      },
    };
  }
  hold(): void {
    this.held = true;
  }
  release(): void {
    this.held = false;
    for (const q of this.queued.splice(0)) q.fn();
  }
}

describe('daemon restart under a running nsregc', () => {
  let dir: string;
  let dnsPort: number;
  let port: number;
  let d: NsregdLab | undefined;
  let zonesYaml: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nsregc-restart-'));
    dnsPort = await freePort();
    port = await freePort();
    zonesYaml = zoneYaml(ZONE, {
      ...LOOPBACK_ZONE,
      upstreams: [serveUpstream(dnsPort, { 'record-ttl': '30s', 'negative-ttl': '1s', hostmaster: 'admin.example.org' })],
    });
  });
  after(async () => {
    await d?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (): Promise<NsregdLab> => startNsregd({ zonesYaml, port, dir: path.join(dir, 'daemon') });

  /** A records of `name` from the zone server ([] when it has none or does not answer). */
  async function served(name = NAME): Promise<string[]> {
    const q = emptyMessage(7, Opcode.QUERY);
    q.questions.push({ name, type: RRType.A, class: RRClass.IN });
    try {
      const r = decodeMessage(await tcpExchange({ host: '127.0.0.1', port: dnsPort, message: encodeMessage(q), timeoutMs: 1000 }));
      return r.answers.filter((rr) => rr.type === 'A').map((rr) => String(rr.data)).sort();
    } catch {
      return [];
    }
  }

  async function waitServed(want: string[], timeoutMs: number, name = NAME): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const got = await served(name);
      if (JSON.stringify(got) === JSON.stringify(want)) return Date.now() - t0;
      if (Date.now() - t0 > timeoutMs) assert.fail(`zone server answers ${JSON.stringify(got)}, want ${JSON.stringify(want)} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('re-registers after SIGTERM + restart and after kill -9 + restart', async () => {
    await mkdir(path.join(dir, 'daemon'), { recursive: true });
    d = await start();
    const { client, lines } = await startStaticClient({ dir, label: 'lab', zone: ZONE, dnsPort: port, addresses: ['192.0.2.1', '192.0.2.2'], probeIntervalMs: 300 });
    try {
      await client.idle();
      await waitServed(['192.0.2.1', '192.0.2.2'], 5000);

      // SIGTERM: the daemon removes our records upstream on its way out.
      d.signal('SIGTERM');
      await d.exited();
      await new Promise((r) => setTimeout(r, 500));
      d = await start();
      const took = await waitServed(['192.0.2.1', '192.0.2.2'], 8000);
      assert.ok(took < 8000);
      // The daemon publishes the withdrawn records again by itself, so they may be back before the client re-registers.
      for (let i = 0; i < 50 && lines.filter((l) => l['msg'] === 'server is back; re-registering 2 addresses').length < 1; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(lines.filter((l) => l['msg'] === 'server is back; re-registering 2 addresses').length, 1);
      assert.equal(lines.filter((l) => String(l['msg']).includes('server is not answering')).length, 1, 'down logged once');

      // kill -9: nothing cleaned up; whatever the daemon kept, the records are back.
      d.signal('SIGKILL');
      await d.exited();
      await new Promise((r) => setTimeout(r, 500));
      d = await start();
      await waitServed(['192.0.2.1', '192.0.2.2'], 8000);
      const backs = (): number => lines.filter((l) => l['msg'] === 'server is back; re-registering 2 addresses').length;
      for (let i = 0; i < 50 && backs() < 2; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(lines.filter((l) => l['msg'] === 'server is back; re-registering 2 addresses').length, 2);
      assert.equal(client.registrars[0]?.state, 'running');
    } finally {
      await client.shutdown(false);
    }
  });

  it('a restart that completes between two probes: every probe answered, the records are back at the next one', async () => {
    const PROBE_MS = 400;
    const name = `between.${ZONE}`;
    d ??= await start();
    const clock = new HoldingClock(PROBE_MS);
    const { client, lines } = await startStaticClient({
      dir,
      label: 'between',
      zone: ZONE,
      dnsPort: port,
      addresses: ['192.0.2.11', '192.0.2.12'],
      config: { probeInterval: PROBE_MS },
      clock,
    });
    const msgs = (text: string): number => lines.filter((l) => String(l['msg']).includes(text)).length;
    try {
      await client.idle();
      await waitServed(['192.0.2.11', '192.0.2.12'], 5000, name);
      // Two probes answered by this daemon: the client knows its identifier.
      for (let i = 0; i < 100 && clock.fired < 2; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(clock.fired >= 2, 'two probes ran');

      // The restart happens while no probe runs: it is invisible to a probe as an outage.
      clock.hold();
      const probesBefore = clock.fired;
      d.signal('SIGTERM');
      await d.exited();
      d = await start();
      clock.release();

      const took = await waitServed(['192.0.2.11', '192.0.2.12'], 5000, name);
      assert.ok(took < 5000);
      for (let i = 0; i < 100 && msgs('server restarted; re-registering 2 addresses') < 1; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(msgs('server restarted; re-registering 2 addresses'), 1, 'the restart was noticed by the identifier');
      assert.equal(msgs('server is not answering'), 0, 'no probe saw the daemon down');
      assert.ok(clock.fired > probesBefore);
      assert.equal(client.registrars[0]?.state, 'running');
      // Later probes see the same identifier: no further re-registration.
      const after = clock.fired;
      for (let i = 0; i < 100 && clock.fired < after + 3; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(msgs('server restarted'), 2, 'one warning and one re-registration line, once');
    } finally {
      await client.shutdown(false);
    }
  });
});
