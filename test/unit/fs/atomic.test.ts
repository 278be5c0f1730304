import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { atomicWrite, syncDir } from '../../../src/fs/atomic.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'nsregd-atomic-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('atomicWrite', () => {
  it('writes a string, a buffer, or chunks (sync or async), mode 0600 unless told', async () => {
    const dir = tempDir();
    const f = path.join(dir, 'f');
    await atomicWrite(f, 'one\n');
    assert.equal(readFileSync(f, 'utf8'), 'one\n');
    assert.equal(statSync(f).mode & 0o777, 0o600);
    await atomicWrite(f, Buffer.from('two'));
    assert.equal(readFileSync(f, 'utf8'), 'two');
    await atomicWrite(f, ['a', Buffer.from('b'), 'c']);
    assert.equal(readFileSync(f, 'utf8'), 'abc');
    async function* gen(): AsyncGenerator<string> {
      for (let i = 0; i < 3; i++) yield `${i},`;
    }
    await atomicWrite(f, gen(), { mode: 0o640 });
    assert.equal(readFileSync(f, 'utf8'), '0,1,2,');
    assert.equal(statSync(f).mode & 0o777, 0o640);
    await atomicWrite(f, []);
    assert.equal(readFileSync(f, 'utf8'), '');
    assert.deepEqual(readdirSync(dir), ['f'], 'no temporary file left');
  });

  it('a chunk source that fails half-way: rejects with its error, old file intact, no temporary file', async () => {
    const dir = tempDir();
    const f = path.join(dir, 'f');
    writeFileSync(f, 'old');
    const boom = new Error('source failed');
    function* failing(): Generator<string> {
      yield 'new content that must not land';
      throw boom;
    }
    await assert.rejects(atomicWrite(f, failing()), (err) => err === boom);
    assert.equal(readFileSync(f, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['f']);
  });

  it('beforeRename writes after the data, while the old file is still in place; its failure aborts the write', async () => {
    const dir = tempDir();
    const f = path.join(dir, 'f');
    writeFileSync(f, 'old');
    let seenAtPath = '';
    await atomicWrite(f, ['a', 'b'], {
      beforeRename: async (tmp) => {
        seenAtPath = readFileSync(f, 'utf8');
        await tmp.write('+more');
      },
    });
    assert.equal(seenAtPath, 'old');
    assert.equal(readFileSync(f, 'utf8'), 'ab+more');
    const boom = new Error('hook failed');
    await assert.rejects(
      atomicWrite(f, 'new', {
        beforeRename: () => Promise.reject(boom),
      }),
      (err) => err === boom,
    );
    assert.equal(readFileSync(f, 'utf8'), 'ab+more');
    assert.deepEqual(readdirSync(dir), ['f'], 'no temporary file left');
  });

  it('a missing directory: rejects, nothing created', async () => {
    const dir = tempDir();
    await assert.rejects(atomicWrite(path.join(dir, 'no', 'f'), 'x'), { code: 'ENOENT' });
    assert.deepEqual(readdirSync(dir), []);
  });

  it('a rename that fails (a non-empty directory in the way): rejects, temporary file removed, target untouched', async () => {
    const dir = tempDir();
    const f = path.join(dir, 'f');
    mkdirSync(f);
    writeFileSync(path.join(f, 'inside'), 'kept');
    await assert.rejects(atomicWrite(f, 'x'), (err: NodeJS.ErrnoException) => ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(err.code ?? ''));
    assert.deepEqual(readdirSync(dir), ['f']);
    assert.equal(readFileSync(path.join(f, 'inside'), 'utf8'), 'kept');
  });
});

describe('syncDir', () => {
  it('syncs a directory; a missing one is an error', async () => {
    const dir = tempDir();
    await syncDir(dir);
    await assert.rejects(syncDir(path.join(dir, 'missing')), { code: 'ENOENT' });
  });
});
