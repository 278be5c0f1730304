/** An upstream that records what it is asked and can be told to fail. */
import type { UpstreamChange } from '../../src/daemon/records.js';
import { NameInUseError, UpstreamError, type Upstream } from '../../src/daemon/upstreams/upstream.js';

export class FakeUpstream implements Upstream {
  readonly changes: UpstreamChange[] = [];
  fail = false;
  started = 0;
  closed = 0;
  /** Names asked about before a first claim (checkUnused), in order. */
  readonly checked: string[] = [];
  /** Names that hold records of the operator here: a first claim of one is refused. */
  readonly inUse = new Set<string>();
  /** checkUnused cannot reach the upstream. */
  failChecks = false;

  constructor(
    readonly description = 'fake',
    readonly keepRecords = false,
  ) {}

  async start(): Promise<void> {
    this.started++;
  }

  async checkUnused(name: string): Promise<void> {
    this.checked.push(name);
    if (this.failChecks) throw new UpstreamError(this.description, 'told to fail');
    if (this.inUse.has(name)) throw new NameInUseError(this.description, name);
  }

  async apply(change: UpstreamChange): Promise<void> {
    this.changes.push(change);
    if (this.fail) throw new UpstreamError(this.description, 'told to fail');
  }

  async close(): Promise<void> {
    this.closed++;
  }
}
