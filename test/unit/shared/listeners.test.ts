import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Listeners } from '../../../src/daemon/shared/listeners.js';
import { logSink } from '../../helpers/log-sink.js';

describe('Listeners', () => {
  it('calls every listener in turn, logging one that throws, and removes on request', () => {
    const { logger, lines } = logSink();
    const news = new Listeners<number>(logger, 'test');
    const got: string[] = [];
    news.add((n) => got.push(`a${n}`));
    news.add(() => {
      throw new Error('listener broke');
    });
    const remove = news.add((n) => got.push(`c${n}`));
    news.emit(1);
    remove();
    news.emit(2);
    assert.deepEqual(got, ['a1', 'c1', 'a2']);
    assert.equal(lines.filter((l) => l.msg === 'test listener failed').length, 2);
  });
});
