import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/clock.js';

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
    await new Promise((r) => setTimeout(r, 50));
    handle.cancel();
    process.off('warning', onWarning);
    assert.equal(fired, 0);
    assert.ok(!warnings.includes('TimeoutOverflowWarning'), warnings.join());
  });
});
