/** Reading a child's JSON log lines (pino) as they arrive. */
import type { Readable } from 'node:stream';

/** Calls `onLine` with each line of `stream` parsed as JSON; a line that is not JSON comes as `{ msg: line }`. */
export function onJsonLines(stream: Readable | null | undefined, onLine: (line: Record<string, unknown>) => void): void {
  let buffered = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        parsed = { msg: line };
      }
      onLine(parsed);
    }
  });
}
