import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/clock.js';
import { letTimePass } from '../helpers/eventually.js';

describe('systemClock', () => {
  // systemClock's timers are unref'd; a ref'd guard keeps the test process alive while waiting.
  it('runs a short timer', async () => {
    const guard = setTimeout(() => undefined, 5000);
    await new Promise<void>((resolve) => systemClock.schedule(5, resolve));
    clearTimeout(guard);
  });

  it('does not fire a delay beyond setTimeout\'s 2^31-1 ms limit early (720h key expiry)', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.name);
    };
    process.on('warning', onWarning);
    let fired = 0;
    const handle = systemClock.schedule(720 * 3_600_000, () => fired++);
    // Real time passes on purpose: an overflowed setTimeout would fire after 1 ms; nothing may fire in 50.
    await letTimePass(50);
    handle.cancel();
    process.off('warning', onWarning);
    assert.equal(fired, 0);
    assert.ok(!warnings.includes('TimeoutOverflowWarning'), warnings.join());
  });
});

describe('systemClock.schedule with far deadlines (mocked timers)', () => {
  const MAX = 2 ** 31 - 1;
  const cases: Array<[string, number]> = [
    ['0 ms', 0],
    ['1 s', 1000],
    ['2^31 − 1 ms, the largest single timer', MAX],
    ['2^31 ms, one past it', MAX + 1],
    ['720h (a 30-day key)', 720 * 3_600_000],
    ['100 years', 100 * 365 * 86_400_000],
  ];
  for (const [what, ms] of cases) {
    it(`${what}: fires at its deadline, not before, once`, () => {
      mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_700_000_000_000 });
      try {
        let fired = 0;
        systemClock.schedule(ms, () => fired++);
        if (ms > 0) {
          mock.timers.tick(ms - 1);
          assert.equal(fired, 0, 'not before the deadline');
        }
        mock.timers.tick(1);
        assert.equal(fired, 1);
        mock.timers.tick(MAX);
        assert.equal(fired, 1, 'once');
      } finally {
        mock.timers.reset();
      }
    });
  }
});
