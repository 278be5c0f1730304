/** An upstream that records what it is asked and can be told to fail. */
import type { UpstreamChange } from '../../src/daemon/records.js';
import { UpstreamError, type Upstream } from '../../src/daemon/upstreams/upstream.js';

export class FakeUpstream implements Upstream {
  readonly changes: UpstreamChange[] = [];
  fail = false;
  started = 0;
  closed = 0;

  constructor(
    readonly description = 'fake',
    readonly keepRecords = false,
  ) {}

  async start(): Promise<void> {
    this.started++;
  }

  async apply(change: UpstreamChange): Promise<void> {
    this.changes.push(change);
    if (this.fail) throw new UpstreamError(this.description, 'told to fail');
  }

  async close(): Promise<void> {
    this.closed++;
  }
}
