/**
 * The manual pages render as a reader meets them: groff with every warning
 * on prints nothing on standard error (it exits 0 even when it warns, so
 * its standard error is what is checked), and `man -l` formats each page
 * with its name and sections. (What the pages say is checked against the
 * code in test/unit/docs/manpages.test.ts.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { requireTool, run } from '../helpers/tools.js';

const ROOT = path.resolve('.');
const MAN_DIR = path.join(ROOT, 'man');

async function pages(): Promise<string[]> {
  const names = (await readdir(MAN_DIR)).filter((f) => /\.[1-8]$/.test(f)).sort();
  assert.deepEqual(names, ['nsregc.8', 'nsregc.yaml.5', 'nsregd.8', 'nsregd.yaml.5']);
  return names;
}

describe('manual pages render', () => {
  it('groff -man -ww -z warns about nothing', async () => {
    const groff = requireTool('groff');
    for (const name of await pages()) {
      const r = await run(groff, ['-man', '-ww', '-z', path.join(MAN_DIR, name)]);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(r.stderr, '', `${name}: groff warnings`);
    }
  });

  it('man -l formats every page with its header, NAME and SEE ALSO', async () => {
    const man = requireTool('man');
    const env = { ...process.env, MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8' };
    for (const name of await pages()) {
      const r = await run(man, ['-l', path.join(MAN_DIR, name)], { env });
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.equal(r.stderr, '', `${name}: man wrote to standard error`);
      const [, title, section] = /^(.*)\.([1-8])$/.exec(name) ?? [];
      const header = `${(title ?? '').toUpperCase()}(${section ?? ''})`;
      assert.ok(r.stdout.startsWith(header), `${name}: starts with ${JSON.stringify(r.stdout.slice(0, 40))}`);
      assert.match(r.stdout, /^NAME\n {7}\S+ +- /m, name);
      assert.match(r.stdout, /^SEE ALSO$/m, name);
      assert.ok(!r.stdout.includes('\\'), `${name}: a roff escape left unformatted`);
    }
  });
});
