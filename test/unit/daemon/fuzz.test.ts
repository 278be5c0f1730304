import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { Rcode } from '../../../src/dns/constants.js';
import { fuzzRequestPath } from '../../helpers/fuzz.js';

describe('request path fuzzing (bounded; longer runs: bench/fuzz)', () => {
  for (const seed of [1, 2]) {
    it(`3,000 mutated and random requests, seed ${seed}: no exception, no hang, well-formed replies`, async () => {
      const stats = await fuzzRequestPath(3000, seed);
      assert.equal(stats.cases, 3000);
      // The mix reaches the deep paths too, not only the decoder.
      assert.ok((stats.byRcode.get(Rcode.FORMERR) ?? 0) > 0);
      assert.ok((stats.byRcode.get(Rcode.NOTAUTH) ?? 0) > 0, 'signature checks were reached');
      assert.ok(stats.replies > stats.closed);
      // Large echoes (accepted updates of hundreds of records) and large zone answers are reached.
      assert.ok(stats.largeEchoes > 0, 'large echoes');
      assert.ok(stats.zoneQueries > 0 && stats.largeZoneAnswers > 0, 'large zone answers');
    });
  }
});
