import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { claimableName, labelAllowed } from '../../../src/daemon/labels.js';
import { nameToLabels } from '../../../src/dns/names.js';

const ZONE = 'dyn.example.';

/** The raw octets of a one-label presentation name. */
function raw(label: string): Buffer {
  const [l] = nameToLabels(`${label}.`);
  assert.ok(l);
  return l;
}

// [presentation label, allowed as hostname, allowed as printable]
const TABLE: ReadonlyArray<readonly [string, boolean, boolean]> = [
  ['a', true, true],
  ['host1', true, true],
  ['HOST-1', true, true],
  ['1host', true, true],
  ['0', true, true],
  ['x'.repeat(63), true, true],
  ['a-b-c', true, true],
  ['xn--bcher-kva', true, true],
  ['-a', false, true],
  ['a-', false, true],
  ['-', false, true],
  ['*', false, false],
  ['*a', false, false],
  ['a*', false, false],
  ['_srv', false, true],
  ['_tcp', false, true],
  ['a_b', false, true],
  ['a\\.b', false, false],
  ['\\.', false, false],
  ['\\000', false, false],
  ['a\\000', false, false],
  ['a\\032b', false, false],
  ['\\255', false, false],
  ['\\128x', false, false],
  ['a\\127', false, false],
  ['\\@', false, true],
  ['a\\\\b', false, true],
  ['host!', false, true],
  ['~', false, true],
];

describe('labels: which labels may be claimed', () => {
  for (const [label, hostname, printable] of TABLE) {
    it(`${JSON.stringify(label)}: hostname ${hostname}, printable ${printable}`, () => {
      assert.equal(labelAllowed(raw(label), 'hostname'), hostname);
      assert.equal(labelAllowed(raw(label), 'printable'), printable);
      assert.equal(claimableName(`${label}.${ZONE}`, ZONE, 'hostname'), hostname);
      assert.equal(claimableName(`${label}.${ZONE}`, ZONE, 'printable'), printable);
    });
  }

  it('empty and over-long labels are refused by both syntaxes', () => {
    for (const syntax of ['hostname', 'printable'] as const) {
      assert.equal(labelAllowed(Buffer.alloc(0), syntax), false);
      assert.equal(labelAllowed(Buffer.alloc(64, 0x61), syntax), false);
      assert.equal(labelAllowed(Buffer.alloc(63, 0x61), syntax), true);
    }
  });

  it('8-bit octets are refused even when they would be letters in some charset', () => {
    assert.equal(labelAllowed(Buffer.from('bücher', 'utf8'), 'hostname'), false);
    assert.equal(labelAllowed(Buffer.from('bücher', 'utf8'), 'printable'), false);
    assert.equal(labelAllowed(Buffer.from([0xe9]), 'printable'), false);
  });

  it('case does not matter: the label is checked as its octets, whatever the spelling', () => {
    assert.equal(claimableName('Host.DYN.example.', ZONE, 'hostname'), true);
    assert.equal(claimableName('\\072ost.dyn.example.', ZONE, 'hostname'), true);
    assert.equal(claimableName('\\042.dyn.example.', ZONE, 'printable'), false, '\\042 is *');
  });

  it('names of another shape are left to the other checks', () => {
    assert.equal(claimableName(ZONE, ZONE, 'hostname'), true);
    assert.equal(claimableName(`a.b.${ZONE}`, ZONE, 'hostname'), true);
    assert.equal(claimableName('host.other.example.', ZONE, 'hostname'), true);
  });
});
