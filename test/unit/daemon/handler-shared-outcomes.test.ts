/**
 * What a client hears when a zone on a shared store (README, "Several
 * daemons as one service") cannot carry out an accepted update: the
 * zone's outcome, as the handler puts it on the wire — rcode and the one
 * TXT reason. The zone's own tests (test/unit/shared/shared-zone.test.ts)
 * show when each outcome happens; here the zone reports it directly.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { Rcode } from '../../../src/dns/constants.js';
import type { UpdatePlan, UpdateResult } from '../../../src/daemon/zone.js';
import { handlerLab } from '../../helpers/handler-lab.js';
import { a, makeClient, signedUpdate } from '../../helpers/sig0-client.js';

type Failure = Extract<UpdateResult, { ok: false }>['failure'];

const CASES: ReadonlyArray<[Failure, number, string]> = [
  ['store-unavailable', Rcode.SERVFAIL, 'Shared store unavailable, try another server'],
  ['changed', Rcode.SERVFAIL, 'Name changed at another server meanwhile, try again'],
  ['replayed', Rcode.REFUSED, 'Replayed request'],
];

describe('handler: outcomes of a shared store on the wire', () => {
  for (const [failure, rcode, reason] of CASES) {
    it(`${failure}: ${reason}`, async () => {
      const l = handlerLab();
      const plans: UpdatePlan[] = [];
      l.zone.applyUpdate = (plan: UpdatePlan): Promise<UpdateResult> => {
        plans.push(plan);
        return Promise.resolve({ ok: false, failure });
      };
      const c = makeClient('host', l.zone.name);
      const m = await l.send(signedUpdate(c, [a(c.name, '192.0.2.1')], { now: l.now }));
      assert.equal(m.rcode, rcode);
      assert.deepEqual(
        m.additionals.flatMap((rr) => (rr.type === 'TXT' && rr.data ? rr.data : [])),
        [reason],
      );
      // The zone was given the signer's key and the signature's inception (the replay check across daemons).
      assert.equal(plans.length, 1);
      assert.ok(plans[0]?.signer.publicKey.equals(c.rdata.publicKey));
      assert.equal(plans[0]?.signedAt, (l.now - 300) * 1000);
    });
  }
});
