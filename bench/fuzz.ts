/**
 * Longer fuzz run of the request path: `node dist/bench/fuzz.js [cases] [seed]`.
 * The CI test runs 2 × 3,000 cases; this runs as many as asked. Cases
 * include large updates (echoes of thousands of records) and zone-server
 * queries for the names they fill.
 */
import { rcodeName } from '../src/dns/constants.js';
import { fuzzRequestPath } from '../test/helpers/fuzz.js';

const cases = Number(process.argv[2] ?? 200_000);
const seed = Number(process.argv[3] ?? Date.now() % 100_000);
const t0 = performance.now();
const stats = await fuzzRequestPath(cases, seed);
const secs = (performance.now() - t0) / 1000;
console.log(`fuzz: ${stats.cases} cases (seed ${seed}) in ${secs.toFixed(1)} s, ${(stats.cases / secs).toFixed(0)} cases/s`);
console.log(`replies ${stats.replies}, connections closed ${stats.closed}`);
console.log(`large echoes ${stats.largeEchoes}; zone-server queries ${stats.zoneQueries}, of them large answers ${stats.largeZoneAnswers}`);
for (const [rcode, n] of [...stats.byRcode].sort((x, y) => x[0] - y[0])) console.log(`  ${rcodeName(rcode).padEnd(9)} ${n}`);
console.log('no exception, no hang, every reply well-formed');
