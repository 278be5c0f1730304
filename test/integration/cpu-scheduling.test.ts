/**
 * `cpu-scheduling` (README, "CPU scheduling"): the real bin/nsregd puts
 * every one of its threads under SCHED_BATCH by default, libuv's pool
 * threads that checked a signature included; a reload switches the policy
 * both ways; `normal` leaves the process as it was started; without chrt
 * the daemon says why and runs on.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Rcode } from '../../src/dns/constants.js';
import { SCHED_BATCH, SCHED_OTHER, setCpuScheduling, threadPolicies } from '../../src/daemon/cpu-scheduling.js';
import { serveUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { freePort } from '../helpers/ports.js';
import { daemonYaml, startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { a, makeClient, signedUpdate } from '../helpers/sig0-client.js';

const ZONE = 'sched.example.org.';
const zones = zoneYaml(ZONE, { 'max-key-ttl': '720h', 'max-addr-ttl': '1h', 'allowed-nets': ['127.0.0.0/8'], upstreams: [serveUpstream(await freePort())] });
const now = (): number => Math.floor(Date.now() / 1000);

/** The distinct policies of the daemon's threads, and how many threads it has. */
function policiesOf(d: NsregdLab): { policies: number[]; threads: number } {
  const all = threadPolicies(d.child.pid);
  return { policies: [...new Set(all.values())].sort(), threads: all.size };
}

/** Claims a name, so that signature checks have run on libuv's pool. */
async function claim(d: NsregdLab, label: string): Promise<void> {
  const c = makeClient(label, ZONE);
  const reply = await d.send(signedUpdate(c, [a(c.name, '127.0.0.9', 300)], { now: now(), id: 7 }));
  assert.equal(reply.rcode, Rcode.NOERROR);
}

describe('cpu-scheduling', () => {
  const labs: NsregdLab[] = [];
  after(async () => {
    await Promise.all(labs.map((d) => d.stop()));
  });

  it('puts every thread under SCHED_BATCH by default, and a reload switches it both ways', async () => {
    const d = await startNsregd({ zonesYaml: zones });
    labs.push(d);
    assert.equal((await d.waitForLog('CPU scheduling policy set')).policy, 'batch');
    await claim(d, 'first');
    const batch = policiesOf(d);
    assert.deepEqual(batch.policies, [SCHED_BATCH]);
    assert.ok(batch.threads >= 5, `the main thread and libuv's pool at least, found ${batch.threads}`);

    await d.writeConfig(daemonYaml(d.port, d.dataDir, zones, '127.0.0.1', 'cpu-scheduling: normal\n'));
    d.signal('SIGHUP');
    await d.waitForLog('configuration reloaded');
    assert.deepEqual(policiesOf(d).policies, [SCHED_OTHER]);
    await claim(d, 'second');

    await d.writeConfig(daemonYaml(d.port, d.dataDir, zones, '127.0.0.1', 'cpu-scheduling: batch\n'));
    d.signal('SIGHUP');
    await d.waitForLogCount('configuration reloaded', 2);
    assert.deepEqual(policiesOf(d).policies, [SCHED_BATCH]);
    assert.equal(d.logs().filter((l) => l.msg === 'CPU scheduling policy set').length, 3);
  });

  it('normal: the daemon keeps the policy it was started with', async () => {
    const d = await startNsregd({ zonesYaml: zones, extraYaml: 'cpu-scheduling: normal\n' });
    labs.push(d);
    await claim(d, 'plain');
    assert.deepEqual(policiesOf(d).policies, [SCHED_OTHER]);
    assert.equal(d.logs().filter((l) => typeof l.msg === 'string' && l.msg.includes('CPU scheduling')).length, 0);
  });

  it('without chrt it warns, naming the policy and why, and serves as before', async () => {
    const d = await startNsregd({ zonesYaml: zones, env: { ...process.env, PATH: '/nonexistent' } });
    labs.push(d);
    const warning = await d.waitForLog('cannot set the CPU scheduling policy');
    assert.equal(warning.policy, 'batch');
    assert.match(String(warning.reason), /^chrt: .*ENOENT/);
    await claim(d, 'unscheduled');
    assert.deepEqual(policiesOf(d).policies, [SCHED_OTHER]);
  });

  it('setCpuScheduling names chrt\'s own complaint', () => {
    // No process has pid 2^22 + 1 (above Linux's largest pid_max).
    assert.throws(() => setCpuScheduling('batch', 4_194_305), /^Error: chrt: .+/);
  });
});
