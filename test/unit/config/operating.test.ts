import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDaemonConfig } from '../../../src/config/daemon.js';
import { ConfigError } from '../../../src/config/errors.js';

const FILE = '/etc/nsregd/nsregd.yaml';

function parse(top: Record<string, unknown>): ReturnType<typeof parseDaemonConfig>['config'] {
  return parseDaemonConfig(JSON.stringify({ ...top, zones: {} }), FILE).config;
}

function refused(top: Record<string, unknown>, keyPath: string, value: unknown): void {
  assert.throws(
    () => parse(top),
    (err: unknown) => err instanceof ConfigError && err.keyPath === keyPath && err.message.includes(FILE) && err.message.includes(String(value)),
  );
}

describe('daemon config: control-socket and metrics-listen', () => {
  it('defaults: the socket in the data directory, no metrics', () => {
    const c = parse({ 'data-dir': '/srv/nsregd' });
    assert.equal(c.controlSocket, '/srv/nsregd/control.sock');
    assert.equal(c.metricsListen, undefined);
  });

  it('a socket path, relative to the configuration file; a path too long for a Unix socket is refused', () => {
    assert.equal(parse({ 'control-socket': 'run/ctl.sock' }).controlSocket, '/etc/nsregd/run/ctl.sock');
    assert.equal(parse({ 'control-socket': '/run/nsregd/control.sock' }).controlSocket, '/run/nsregd/control.sock');
    const long = `/${'x'.repeat(120)}/control.sock`;
    refused({ 'control-socket': long }, 'control-socket', long);
    refused({ 'data-dir': `/${'d'.repeat(100)}` }, 'control-socket', 'control.sock');
  });

  it('metrics-listen: ADDRESS:PORT or [IPv6]:PORT', () => {
    assert.deepEqual(parse({ 'metrics-listen': '127.0.0.1:9253' }).metricsListen, { host: '127.0.0.1', port: 9253 });
    assert.deepEqual(parse({ 'metrics-listen': '[::1]:9253' }).metricsListen, { host: '::1', port: 9253 });
    assert.deepEqual(parse({ 'metrics-listen': 'localhost:80' }).metricsListen, { host: 'localhost', port: 80 });
    for (const bad of ['9253', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '::1:9253', '[::1]', 'a b:1']) {
      refused({ 'metrics-listen': bad }, 'metrics-listen', bad);
    }
  });
});
