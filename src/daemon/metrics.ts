/**
 * Prometheus metrics (README, "Operating nsregd"): served in the text
 * exposition format at `/metrics` on `metrics-listen`, with prom-client.
 *
 * Most values are read from the daemon when a scrape comes (zones, key
 * stores, record caches, outboxes, connection counters, the zone server's
 * counters), so the request path pays nothing for them; what only the
 * moment can tell (a reply's rcode, an upstream attempt's duration) is
 * counted as it happens.
 */
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { rcodeName } from '../dns/constants.js';
import type { ServedZone } from './zone.js';
import { zoneServerStats } from './zoneserver/listener.js';

/** What the metrics read from the running daemon at each scrape. */
export interface MetricsSource {
  zones(): Iterable<ServedZone>;
  connections(): { open: number; accepted: number; refusedPerSource: number; refusedFull: number; evicted: number };
}

/** The guard's refusals, by the kind operators alert on. */
const GUARD_KINDS: Readonly<Record<string, string>> = { rateLimited: 'rate', busy: 'busy', replayed: 'replay' };

type Read<L extends string> = () => Iterable<[Partial<Record<L, string>>, number]>;

/**
 * A metric whose values are kept elsewhere: set from `read` at each
 * scrape. A counter for totals (prom-client has no `set` on counters, so
 * it is reset and incremented by the value), a gauge for levels.
 */
function mirrored<L extends string>(kind: 'counter' | 'gauge', registry: Registry, name: string, help: string, labelNames: readonly L[], read: Read<L>): void {
  const base = { name, help, labelNames, registers: [registry] };
  if (kind === 'counter') {
    new Counter<L>({
      ...base,
      collect(): void {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      },
    });
    return;
  }
  new Gauge<L>({
    ...base,
    collect(): void {
      this.reset();
      for (const [labels, value] of read()) this.set(labels, value);
    },
  });
}

const mirroredCounter = <L extends string>(r: Registry, name: string, help: string, labels: readonly L[], read: Read<L>): void =>
  mirrored('counter', r, name, help, labels, read);
const gauge = <L extends string>(r: Registry, name: string, help: string, labels: readonly L[], read: Read<L>): void =>
  mirrored('gauge', r, name, help, labels, read);

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'rcode' | 'reason'>;
  private readonly guardRejections: Counter<'kind'>;
  private readonly upstreamUpdates: Counter<'zone' | 'upstream' | 'result'>;
  private readonly upstreamLatency: Histogram<'zone' | 'upstream'>;
  private readonly sigChecks: Histogram<'result'>;
  private server: http.Server | undefined;

  constructor(source: MetricsSource) {
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    // prom-client names these gauges `…_total`, which Prometheus reserves for counters (promtool
    // check metrics rejects them); the per-type `nodejs_active_*` gauges beside them carry the same counts.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) r.removeSingleMetric(name);
    this.requests = new Counter({
      name: 'nsregd_requests_total',
      help: 'Registration requests answered, by rcode and refusal (reason "" for NOERROR).',
      labelNames: ['rcode', 'reason'],
      registers: [r],
    });
    this.guardRejections = new Counter({
      name: 'nsregd_guard_rejections_total',
      help: 'Requests turned away before their signature check: per-source rate, no check slot, replay.',
      labelNames: ['kind'],
      registers: [r],
    });
    this.sigChecks = new Histogram({
      name: 'nsregd_signature_check_duration_seconds',
      help: 'SIG(0) signature checks (the count is the number of checks) and how long each took, by result.',
      labelNames: ['result'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers: [r],
    });
    this.upstreamUpdates = new Counter({
      name: 'nsregd_upstream_updates_total',
      help: 'Attempts to apply a batch of operations upstream, by result.',
      labelNames: ['zone', 'upstream', 'result'],
      registers: [r],
    });
    this.upstreamLatency = new Histogram({
      name: 'nsregd_upstream_update_duration_seconds',
      help: 'Time one attempt to apply a batch upstream took.',
      labelNames: ['zone', 'upstream'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
    const perZone = <T>(f: (z: ServedZone) => T): Array<[ServedZone, T]> => [...source.zones()].map((z) => [z, f(z)]);
    const zoneCounter = (name: string, help: string, pick: (z: ServedZone) => number): void => {
      mirroredCounter(r, name, help, ['zone'], () => perZone(pick).map(([z, v]) => [{ zone: z.name }, v]));
    };
    zoneCounter('nsregd_claims_total', 'Names claimed by a new key.', (z) => z.counters.claims);
    zoneCounter('nsregd_releases_total', 'Names released by the operator (nsregd names release).', (z) => z.counters.releases);
    zoneCounter('nsregd_key_expiries_total', 'Keys expired, their names freed.', (z) => z.counters.keyExpiries);
    zoneCounter('nsregd_record_expiries_total', 'Records expired (not refreshed within their TTL).', (z) => z.counters.recordExpiries);
    gauge(r, 'nsregd_names', 'Claimed names.', ['zone'], () => perZone((z) => z.keyCount).map(([z, v]) => [{ zone: z.name }, v]));
    gauge(r, 'nsregd_records', 'Live A/AAAA records.', ['zone'], () => perZone((z) => z.recordCount).map(([z, v]) => [{ zone: z.name }, v]));
    const perUpstream = (f: (u: ReturnType<ServedZone['upstreamStates']>[number], z: ServedZone) => number) => (): Array<[{ zone: string; upstream: string }, number]> =>
      [...source.zones()].flatMap((z) => z.upstreamStates().map((u): [{ zone: string; upstream: string }, number] => [{ zone: z.name, upstream: u.upstream }, f(u, z)]));
    gauge(r, 'nsregd_upstream_up', '1 while the upstream takes updates, 0 while its operations wait for a retry.', ['zone', 'upstream'], perUpstream((u) => (u.failing ? 0 : 1)));
    gauge(r, 'nsregd_outbox_depth', 'Operations waiting for the upstream.', ['zone', 'upstream'], perUpstream((u) => u.pending));
    gauge(r, 'nsregd_outbox_oldest_pending_seconds', 'Age of the oldest operation waiting for the upstream (0 when none).', ['zone', 'upstream'], perUpstream((u) => u.oldestPendingMs / 1000));
    gauge(r, 'nsregd_connections_open', 'Registration connections open.', [], () => [[{}, source.connections().open]]);
    mirroredCounter(r, 'nsregd_connections_accepted_total', 'Registration connections accepted.', [], () => [[{}, source.connections().accepted]]);
    mirroredCounter(r, 'nsregd_connections_refused_total', 'Registration connections refused at accept, by limit.', ['limit'], () => {
      const c = source.connections();
      return [
        [{ limit: 'per-source' }, c.refusedPerSource],
        [{ limit: 'total' }, c.refusedFull],
      ];
    });
    mirroredCounter(r, 'nsregd_connections_evicted_total', 'Idle registration connections closed to make room for new ones.', [], () => [[{}, source.connections().evicted]]);
    mirroredCounter(r, 'nsregd_zone_server_answers_total', 'Answers of the built-in zone server, by rcode.', ['rcode'], () =>
      [...zoneServerStats.answers].map(([rcode, n]) => [{ rcode: rcodeName(rcode) }, n]),
    );
    mirroredCounter(r, 'nsregd_zone_server_rate_limited_total', 'UDP queries the zone server\'s response rate limit dropped or answered truncated.', ['action'], () => [
      [{ action: 'drop' }, zoneServerStats.rateLimited.drop],
      [{ action: 'slip' }, zoneServerStats.rateLimited.slip],
    ]);
  }

  /** One answered request: counted by rcode and, for a refusal, by which one. */
  observeOutcome(outcome: { readonly rcode: number; readonly refusal?: string }): void {
    const reason = outcome.refusal ?? (outcome.rcode === 0 ? '' : 'other');
    this.requests.inc({ rcode: rcodeName(outcome.rcode), reason });
    const kind = GUARD_KINDS[reason];
    if (kind !== undefined) this.guardRejections.inc({ kind });
  }

  /** Wraps a signature check so each is counted and timed; its outcome (resolve or reject) passes through. */
  timedCheck<A>(check: (arg: A) => Promise<void>): (arg: A) => Promise<void> {
    return async (arg: A): Promise<void> => {
      const started = performance.now();
      let result = 'invalid';
      try {
        await check(arg);
        result = 'valid';
      } finally {
        this.sigChecks.observe({ result }, (performance.now() - started) / 1000);
      }
    };
  }

  /** An upstream attempt of `zone` (Outbox.onAttempt). */
  upstreamAttempt(zone: string): (upstream: string, ok: boolean, seconds: number) => void {
    return (upstream, ok, seconds) => {
      this.upstreamUpdates.inc({ zone, upstream, result: ok ? 'ok' : 'failed' });
      this.upstreamLatency.observe({ zone, upstream }, seconds);
    };
  }

  /** Serves `/metrics` on host:port; resolves with the bound address. */
  async listen(host: string, port: number, logger: Logger): Promise<AddressInfo> {
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?', 1)[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) => {
          logger.error({ err }, 'metrics could not be collected');
          res.writeHead(500).end();
        },
      );
    });
    // A scraper needs one connection; these bound what anyone else can hold open.
    server.maxConnections = 16;
    server.headersTimeout = 5_000;
    server.requestTimeout = 10_000;
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
