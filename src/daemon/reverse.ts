/**
 * Reverse-mapping names of addresses (RFC 1035 §3.5 in-addr.arpa, RFC 3596
 * §2.5 ip6.arpa) and which configured reverse zone holds them.
 */
import { parseIp } from '../net/address.js';
import { canonicalName, isSubdomain, labelCount } from '../dns/names.js';

/**
 * The PTR owner name of an address: the four octets reversed under
 * in-addr.arpa., or the 32 nibbles reversed under ip6.arpa. Undefined when
 * `address` is not an IP literal.
 */
export function reverseName(address: string): string | undefined {
  const ip = parseIp(address);
  if (ip === null) return undefined;
  if (ip.family === 4) {
    const octets: string[] = [];
    for (let sh = 0n; sh < 32n; sh += 8n) octets.push(((ip.value >> sh) & 0xffn).toString());
    return `${octets.join('.')}.in-addr.arpa.`;
  }
  const nibbles: string[] = [];
  for (let sh = 0n; sh < 128n; sh += 4n) nibbles.push(((ip.value >> sh) & 0xfn).toString(16));
  return `${nibbles.join('.')}.ip6.arpa.`;
}

/**
 * The reverse zone, among `zones`, that holds the PTR of `address`: the most
 * specific zone containing its reverse name (a delegated child zone owns the
 * name, not its parent). Returned as given in `zones`; undefined if none.
 */
export function reverseZoneFor(address: string, zones: readonly string[]): string | undefined {
  const name = reverseName(address);
  if (name === undefined) return undefined;
  let best: string | undefined;
  let bestLabels = -1;
  for (const zone of zones) {
    if (!isSubdomain(name, zone)) continue;
    const labels = labelCount(canonicalName(zone));
    if (labels > bestLabels) {
      best = zone;
      bestLabels = labels;
    }
  }
  return best;
}
