import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadDaemonConfig, parseDaemonConfig } from '../../../src/config/daemon.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const SECRET = Buffer.alloc(32, 7).toString('base64');

function config(upstream: Record<string, unknown>): string {
  return JSON.stringify({
    zones: { 'dynamic.example.org': { 'max-key-ttl': '720h', 'max-addr-ttl': '1h', 'allowed-nets': ['127.0.0.0/8'], upstreams: [upstream] } },
  });
}

function nsupdate(secret = SECRET): Record<string, unknown> {
  return { type: 'nsupdate', hostname: '127.0.0.1', port: 53, timeout: '2s', zone: 'example.org', 'record-ttl': '60s', 'tsig-name': 'k', 'tsig-secret': secret };
}

function fileWith(text: string, mode: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'nsregd-secrets-'));
  dirs.push(dir);
  const file = path.join(dir, 'nsregd.yaml');
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

describe('daemon config: secrets hygiene', () => {
  const modes: Array<[number, string | undefined]> = [
    [0o600, undefined],
    [0o400, undefined],
    [0o640, 'mode is 0640, readable by its group'],
    [0o644, 'mode is 0644, readable by its group and other users'],
    [0o604, 'mode is 0604, readable by other users'],
  ];
  for (const [mode, expected] of modes) {
    it(`a file holding a tsig-secret with mode ${mode.toString(8)}: ${expected ?? 'no warning'}`, async () => {
      const file = fileWith(config(nsupdate()), mode);
      const { warnings } = await loadDaemonConfig(file);
      const hits = warnings.filter((w) => w.includes('tsig-secret'));
      if (expected === undefined) assert.deepEqual(hits, []);
      else assert.deepEqual(hits, [`${file}: holds a tsig-secret but its ${expected}; chmod 600 it`]);
    });
  }

  it('a world-readable file without a secret gets no warning', async () => {
    const file = fileWith(config({ type: 'serve', 'listen-port': 5300 }), 0o644);
    const { warnings } = await loadDaemonConfig(file);
    assert.deepEqual(warnings.filter((w) => w.includes('mode')), []);
  });

  it('a TSIG secret shorter than 16 bytes gets a warning naming its key path', () => {
    const short = parseDaemonConfig(config(nsupdate(Buffer.alloc(15, 1).toString('base64'))), '/etc/nsregd/nsregd.yaml');
    assert.deepEqual(
      short.warnings.filter((w) => w.includes('TSIG secret')),
      ['/etc/nsregd/nsregd.yaml: zones."dynamic.example.org".upstreams[0].tsig-secret: the TSIG secret is only 15 bytes; use at least 16 (tsig-keygen makes 32)'],
    );
    const enough = parseDaemonConfig(config(nsupdate(Buffer.alloc(16, 1).toString('base64'))), '/etc/nsregd/nsregd.yaml');
    assert.deepEqual(enough.warnings.filter((w) => w.includes('TSIG secret')), []);
  });
});
