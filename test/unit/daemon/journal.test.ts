import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { Journal, JournalError, LAZY_WRITE_DELAY_MS, describeDamage, encodeLine, type DamagedLine } from '../../../src/daemon/journal.js';

const dirs: string[] = [];
function tempFile(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'nsregd-journal-'));
  dirs.push(d);
  return path.join(d, 'j');
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface X {
  x: number;
}
const parse = (v: unknown): X | undefined =>
  typeof v === 'object' && v !== null && typeof (v as { x?: unknown }).x === 'number' ? { x: (v as X).x } : undefined;
const xs = (entries: X[]): number[] => entries.map((e) => e.x);

async function reopen(file: string): Promise<number[]> {
  const { journal, entries } = await Journal.open(file, parse);
  await journal.close();
  return xs(entries);
}

/** Counts calls of a FileHandle method while `fn` runs. */
async function counting<R>(method: 'write' | 'datasync', fn: () => Promise<R>): Promise<[R, number]> {
  const probe = await open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(probe) as Record<string, (...args: unknown[]) => unknown>;
  await probe.close();
  const original = proto[method];
  let calls = 0;
  proto[method] = function (this: unknown, ...args: unknown[]) {
    calls++;
    return original.apply(this, args);
  };
  try {
    return [await fn(), calls];
  } finally {
    proto[method] = original;
  }
}

describe('journal lines', () => {
  it('are `<json>\\t<crc32 hex>\\n`', () => {
    const json = JSON.stringify({ x: 1, s: 'tab\there' });
    assert.equal(encodeLine({ x: 1, s: 'tab\there' }), `${json}\t${crc32(json).toString(16).padStart(8, '0')}\n`);
  });

  it('plain JSON lines (written before checksums) are read; a checksum that does not match is a bad line', async () => {
    const file = tempFile();
    writeFileSync(file, '{"x":1}\n' + encodeLine({ x: 2 }) + '{"x":3}\n');
    assert.deepEqual(await reopen(file), [1, 2, 3]);
    const good = encodeLine({ x: 5 });
    const flipped = encodeLine({ x: 4 }).replace('{"x":4}', '{"x":7}');
    writeFileSync(file, flipped + good);
    const { journal, entries, damaged } = await Journal.open(file, parse);
    await journal.close();
    assert.deepEqual(xs(entries), [5], 'the line whose checksum does not match is not taken');
    assert.equal(damaged.length, 1);
    assert.deepEqual({ ...damaged[0], bytes: damaged[0].bytes.toString() }, { file, offset: 0, bytes: flipped.slice(0, -1), torn: false });
  });

  it('a journal that cannot be read is a JournalError naming the file', async () => {
    const file = tempFile();
    mkdirSync(file); // a directory where the file should be
    await assert.rejects(Journal.open(file, parse), (err: unknown) => {
      assert.ok(err instanceof JournalError);
      assert.equal(err.code, 'ERR_JOURNAL');
      assert.equal(err.reason, 'read-failed');
      assert.equal(err.file, file);
      return true;
    });
  });
});

describe('Journal', () => {
  it('drops and cuts off bad lines after the last good one (a torn write), then appends cleanly', async () => {
    const file = tempFile();
    const good = encodeLine({ x: 1 }) + encodeLine({ x: 2 });
    writeFileSync(file, good);
    appendFileSync(file, encodeLine({ x: 3 }).replace('3', '9')); // whole line, wrong checksum
    appendFileSync(file, '{"x":');
    const { journal, entries, damaged } = await Journal.open(file, parse);
    assert.deepEqual(xs(entries), [1, 2]);
    assert.deepEqual(
      damaged.map((d) => [d.offset, d.torn]),
      [
        [Buffer.byteLength(good), true],
        [Buffer.byteLength(good) + Buffer.byteLength(encodeLine({ x: 3 })), true],
      ],
    );
    assert.equal(statSync(file).size, Buffer.byteLength(good), 'cut off at open');
    await journal.writeDurable({ x: 4 });
    await journal.close();
    assert.deepEqual(await reopen(file), [1, 2, 4]);
  });

  it('a bad line with good ones after it is damage, whichever way it is bad: reported with its offset, the journal still opens', async () => {
    for (const bad of ['not json\n', '{"y":1}\n', '\0\0\0\n']) {
      const file = tempFile();
      const first = encodeLine({ x: 1 });
      writeFileSync(file, first + bad + encodeLine({ x: 2 }));
      const seen: DamagedLine[][] = [];
      const { journal, entries, damaged } = await Journal.open(file, parse, { inspect: async (d) => void seen.push([...d]) });
      assert.deepEqual(xs(entries), [1, 2]);
      assert.deepEqual(seen, [damaged], 'inspect saw the damage');
      assert.equal(damaged.length, 1);
      assert.equal(damaged[0].offset, Buffer.byteLength(first));
      assert.equal(damaged[0].torn, false);
      assert.match(describeDamage(damaged[0]), new RegExp(`^${file}: byte offset ${Buffer.byteLength(first)} `));
      await journal.writeDurable({ x: 3 });
      await journal.close();
      assert.deepEqual(await reopen(file), [1, 2, 3], 'appended after the damage, which stays in place');
    }
  });

  it('inspect runs before a torn tail is cut off, and its failure fails the open and cuts nothing', async () => {
    const file = tempFile();
    const text = encodeLine({ x: 1 }) + '{"x":';
    writeFileSync(file, text);
    await assert.rejects(
      Journal.open(file, parse, {
        inspect: async () => {
          assert.equal(readFileSync(file, 'utf8'), text, 'nothing cut yet');
          throw new Error('cannot record');
        },
      }),
      /cannot record/,
    );
    assert.equal(readFileSync(file, 'utf8'), text);
  });

  it('group commit: lines queued in one tick go out in one write and one fdatasync', async () => {
    const file = tempFile();
    const { journal } = await Journal.open(file, parse);
    const [, writes] = await counting('write', async () => {
      const [, syncs] = await counting('datasync', async () => {
        journal.write({ x: 0 });
        await Promise.all([1, 2, 3, 4].map((x) => journal.writeDurable({ x })));
      });
      assert.equal(syncs, 1);
    });
    assert.equal(writes, 1);
    // Lazy lines alone are never fsynced.
    const [, syncs] = await counting('datasync', async () => {
      journal.write({ x: 5 });
      await journal.idle();
    });
    assert.equal(syncs, 0);
    assert.equal(journal.length, 6);
    await journal.close();
    assert.deepEqual(await reopen(file), [0, 1, 2, 3, 4, 5]);
  });

  it('group commit: durable lines queued by separate callbacks of one event-loop turn share one write and one fdatasync', async () => {
    const file = tempFile();
    const { journal } = await Journal.open(file, parse);
    const [, writes] = await counting('write', async () => {
      const [, syncs] = await counting('datasync', async () => {
        // Two callbacks of one phase of the loop, as requests completing in one poll phase: microtasks run between them.
        const durable = await new Promise<Array<Promise<void>>>((resolve) => {
          const out: Array<Promise<void>> = [];
          setImmediate(() => out.push(journal.writeDurable({ x: 1 })));
          setImmediate(() => {
            out.push(journal.writeDurable({ x: 2 }));
            resolve(out);
          });
        });
        await Promise.all(durable);
      });
      assert.equal(syncs, 1);
    });
    assert.equal(writes, 1);
    await journal.close();
    assert.deepEqual(await reopen(file), [1, 2]);
  });

  it('deferred lines alone wait for company: lines of several ticks share one write, and any other line takes them along', async () => {
    assert.ok(LAZY_WRITE_DELAY_MS > 0 && LAZY_WRITE_DELAY_MS <= 50, 'the delay is a few milliseconds');
    const file = tempFile();
    const { journal } = await Journal.open(file, parse);
    const ticks = async (): Promise<void> => {
      // Microtasks only: the delay cannot run out meanwhile.
      for (let i = 0; i < 3; i++) await Promise.resolve();
    };
    const [, writes] = await counting('write', async () => {
      for (let x = 0; x < 5; x++) {
        journal.writeDeferred({ x });
        await ticks();
      }
      assert.ok(!existsSync(file) || statSync(file).size === 0, 'nothing written yet');
      await journal.writeDurable({ x: 5 });
    });
    assert.equal(writes, 1, 'the five deferred lines went out with the durable one, in one write');
    assert.equal(readFileSync(file, 'utf8').split('\n').length - 1, 6);
    // A plain lazy line is not held back either, and takes waiting deferred ones along.
    journal.writeDeferred({ x: 6 });
    await ticks();
    journal.write({ x: 7 });
    await ticks();
    await journal.idle();
    await journal.close();
    assert.deepEqual(await reopen(file), [0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('idle() and close() send waiting deferred lines at once; a crash before that loses only those', async () => {
    const file = tempFile();
    const { journal } = await Journal.open(file, parse);
    journal.writeDeferred({ x: 1 });
    await journal.idle();
    assert.deepEqual(await reopen(file), [1]);
    await journal.writeDurable({ x: 2 });
    journal.writeDeferred({ x: 3 });
    // A crash now (the file as it is this instant): a restart reads everything but the waiting deferred line.
    const copy = `${file}-crash`;
    copyFileSync(file, copy);
    assert.deepEqual(await reopen(copy), [1, 2]);
    await journal.close();
    assert.deepEqual(await reopen(file), [1, 2, 3], 'close() wrote it');
  });

  it('a compaction writes deferred lines queued before it to the retired file', async () => {
    const file = tempFile();
    const { journal } = await Journal.open(file, parse);
    await journal.writeDurable({ x: 1 });
    journal.writeDeferred({ x: 2 });
    let captured: number[] = [];
    await journal.compact(() => {
      captured = xs(readFileSync(journal.oldFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l.split('\t')[0]) as X));
      return [];
    });
    assert.deepEqual(captured, [1, 2], 'the deferred line was in the file set aside');
    await journal.close({ removeIfEmpty: true });
    assert.ok(!existsSync(file), 'nothing carried over: the fresh journal stayed empty');
  });

  it('onWritten runs when the line is on disk, before the promise resolves', async () => {
    const file = tempFile();
    const { journal } = await Journal.open(file, parse);
    const seen: string[] = [];
    const p = journal.writeDurable({ x: 1 }, () => seen.push(`written: ${readFileSync(file, 'utf8').length > 0}`));
    seen.push('queued');
    await p;
    seen.push('resolved');
    assert.deepEqual(seen, ['queued', 'written: true', 'resolved']);
    await journal.close();
  });

  it('a failed write rejects durable lines and reports lazy ones once per batch; the next write tries again', async () => {
    const file = tempFile();
    const errors: unknown[] = [];
    const { journal } = await Journal.open(file, parse, { onError: (err) => errors.push(err) });
    // The file is opened by the first write: a directory in its place makes that fail.
    mkdirSync(file);
    journal.write({ x: 2 });
    journal.write({ x: 3 });
    await assert.rejects(journal.writeDurable({ x: 4 }), { code: 'EISDIR' });
    assert.equal(errors.length, 1, 'one report for the failed batch');
    rmdirSync(file);
    await journal.writeDurable({ x: 5 });
    await journal.close();
    assert.deepEqual(await reopen(file), [5]);
  });

  it('compact: the file is set aside, the fresh one starts with the carried entries, lines written meanwhile follow', async () => {
    const file = tempFile();
    const { journal } = await Journal.open(file, parse);
    await Promise.all([1, 2, 3, 4, 5].map((x) => journal.writeDurable({ x })));
    let release = (): void => undefined;
    const saving = new Promise<void>((resolve) => (release = resolve));
    let captured = false;
    const done = journal.compact(
      () => {
        captured = true;
        return [{ x: 100 }];
      },
      () => saving,
    );
    const during = journal.writeDurable({ x: 6 });
    await during;
    assert.ok(captured);
    // A crash now, with the snapshot not yet saved: `.old` and the fresh file together replay everything.
    assert.ok(existsSync(`${file}.old`));
    const { journal: crashed, entries } = await Journal.open(file, parse);
    assert.deepEqual(xs(entries), [1, 2, 3, 4, 5, 100, 6]);
    assert.equal(crashed.hasOld, true);
    release();
    await done;
    assert.equal(existsSync(`${file}.old`), false);
    assert.equal(journal.length, 2);
    await journal.close();
    assert.deepEqual(await reopen(file), [100, 6]);
    assert.deepEqual(readdirSync(path.dirname(file)), ['j']);
  });

  it('a failed save leaves `.old`; the next compaction appends its carry to the current file and finishes', async () => {
    const file = tempFile();
    const { journal } = await Journal.open(file, parse);
    await journal.writeDurable({ x: 1 });
    await assert.rejects(journal.compact(() => [{ x: 10 }], () => Promise.reject(new Error('disk full'))), /disk full/);
    assert.ok(existsSync(`${file}.old`));
    await journal.writeDurable({ x: 2 });
    assert.deepEqual(await reopen(file), [1, 10, 2]);
    await journal.compact(() => [{ x: 20 }]);
    assert.equal(existsSync(`${file}.old`), false);
    await journal.close();
    assert.deepEqual(await reopen(file), [10, 2, 20]);
  });

  it('close({ removeIfEmpty }) deletes an empty journal only', async () => {
    const file = tempFile();
    const { journal } = await Journal.open(file, parse);
    await journal.compact(() => []);
    await journal.close({ removeIfEmpty: true });
    assert.equal(existsSync(file), false);
    const { journal: j2 } = await Journal.open(file, parse);
    await j2.writeDurable({ x: 1 });
    await j2.close({ removeIfEmpty: true });
    assert.deepEqual(await reopen(file), [1]);
  });
});
