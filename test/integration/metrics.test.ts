/**
 * Prometheus metrics of a running bin/nsregd, scraped over HTTP while
 * things happen: claims and refreshes through a real named, a refusal,
 * and an upstream that goes down (named stopped). Every scrape passes `promtool check metrics` (Debian
 * package prometheus).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Rcode } from '../../src/dns/constants.js';
import { LOOPBACK_ZONE, nsupdateUpstream, zoneYaml } from '../helpers/config-yaml.js';
import { eventually } from '../helpers/eventually.js';
import { startNamed, type NamedLab, type TsigKeySpec } from '../helpers/named.js';
import { startNsregd, type NsregdLab } from '../helpers/nsregd-lab.js';
import { freePort } from '../helpers/ports.js';
import { a, makeClient, signedUpdate, type TestClient } from '../helpers/sig0-client.js';
import { requireTool, run } from '../helpers/tools.js';

const ZONE = 'dynamic.example.org.';
const key: TsigKeySpec = { name: 'nsregd.', algorithm: 'hmac-sha256', secret: randomBytes(32).toString('base64') };

type Samples = Map<string, number>;

/** `name{a="b",…} value` lines, keyed by the text before the value. */
function parse(text: string): Samples {
  const out: Samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

describe('nsregd metrics', () => {
  let named: NamedLab;
  let d: NsregdLab | undefined;
  let metricsPort: number;
  let id = 1;

  async function scrape(): Promise<Samples> {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const check = await run(requireTool('promtool'), ['check', 'metrics'], { input: text });
    assert.equal(check.code, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
    return parse(text);
  }
  const update = (c: TestClient, address: string): Promise<number> =>
    d!.send(signedUpdate(c, [a(c.name, address, 300)], { now: Math.floor(Date.now() / 1000), id: id++ })).then((r) => r.rcode);

  before(async () => {
    named = await startNamed({ tsigKeys: [key], zones: [{ name: ZONE, allowUpdateKey: key.name }] });
    metricsPort = await freePort();
    d = await startNsregd({
      zonesYaml: zoneYaml(ZONE, { ...LOOPBACK_ZONE, upstreams: [nsupdateUpstream(ZONE, named.port, key, { timeout: '1s' })] }),
      extraYaml: `metrics-listen: 127.0.0.1:${metricsPort}\n`,
    });
  });
  after(async () => {
    await d?.stop();
    await named?.stop();
  });

  it('claims, refreshes, refusals and an upstream outage show in the scrapes', async () => {
    const first = await scrape();
    assert.equal(first.get(`nsregd_names{zone="${ZONE}"}`), 0);
    assert.ok(first.has('process_cpu_seconds_total'), 'process metrics');

    const host = makeClient('laptop', ZONE);
    assert.equal(await update(host, '192.0.2.10'), Rcode.NOERROR);
    assert.equal(await update(host, '192.0.2.10'), Rcode.NOERROR, 'a refresh');
    assert.equal(await update(makeClient('laptop', ZONE), '192.0.2.11'), Rcode.REFUSED, 'another key');
    const s = await scrape();
    assert.equal(s.get(`nsregd_claims_total{zone="${ZONE}"}`), 1);
    assert.equal(s.get(`nsregd_names{zone="${ZONE}"}`), 1);
    assert.equal(s.get(`nsregd_records{zone="${ZONE}"}`), 1);
    assert.equal(s.get('nsregd_requests_total{rcode="NOERROR",reason=""}'), 2);
    assert.equal(s.get('nsregd_requests_total{rcode="REFUSED",reason="wrongKey"}'), 1);
    const upKey = [...s.keys()].find((k) => k.startsWith(`nsregd_upstream_up{zone="${ZONE}"`));
    assert.ok(upKey);
    assert.equal(s.get(upKey), 1);
    const okUpdates = [...s].filter(([k]) => k.startsWith(`nsregd_upstream_updates_total{zone="${ZONE}"`) && k.includes('result="ok"'));
    assert.equal(okUpdates.length, 1);
    assert.ok(okUpdates[0][1] >= 1);
    assert.ok([...s].some(([k, v]) => k.startsWith(`nsregd_upstream_update_duration_seconds_count{zone="${ZONE}"`) && v >= 1));
    assert.ok((s.get('nsregd_connections_accepted_total') ?? 0) >= 3);
    assert.equal(s.get('nsregd_connections_open'), 0);

    // The upstream goes down: a new address cannot be published, its take-back waits in the outbox and ages.
    await named.stop();
    assert.equal(await update(host, '192.0.2.12'), Rcode.SERVFAIL);
    const down = await eventually(
      'the outage in the scrapes',
      scrape,
      (m) => [...m].some(([k, v]) => k.startsWith(`nsregd_outbox_oldest_pending_seconds{zone="${ZONE}"`) && v > 0),
      10_000,
    );
    const pick = (prefix: string): number | undefined => [...down].find(([k]) => k.startsWith(prefix))?.[1];
    assert.equal(pick(`nsregd_upstream_up{zone="${ZONE}"`), 0);
    assert.ok((pick(`nsregd_outbox_depth{zone="${ZONE}"`) ?? 0) >= 1);
    assert.ok([...down].some(([k, v]) => k.startsWith(`nsregd_upstream_updates_total{zone="${ZONE}"`) && k.includes('result="failed"') && v >= 1));
    assert.equal(down.get('nsregd_requests_total{rcode="SERVFAIL",reason="upstreamFailed"}'), 1);
    assert.equal(down.get(`nsregd_claims_total{zone="${ZONE}"}`), 1);
  });

  it('anything but GET /metrics is 404', async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/`);
    assert.equal(res.status, 404);
    await res.text();
  });
});
