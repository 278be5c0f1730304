import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LogTail } from '../helpers/tools.js';

describe('LogTail (the test labs keep the end of a server log)', () => {
  it('reads back the last `bound` characters of everything pushed, whatever the pieces', () => {
    const tail = new LogTail(10);
    let all = '';
    for (const piece of ['ab', 'cdefg', '', 'h', 'ijklmnopqrstu', 'v', 'wx', 'yz0123456789']) {
      tail.push(piece);
      all += piece;
      assert.equal(tail.text(), all.slice(-10), `after ${JSON.stringify(all)}`);
    }
  });

  it('reads back right after many small pieces, and after an empty one', () => {
    const tail = new LogTail(4);
    for (let i = 0; i < 1000; i++) tail.push('xy');
    tail.push('123');
    assert.equal(tail.text(), 'y123');
    tail.push('');
    assert.equal(tail.text(), 'y123');
  });
});
