/** The smallest valid upstream of each kind, as parsed YAML (config unit tests). */
export const MINIMAL_UPSTREAMS: Readonly<Record<'nsupdate' | 'unbound' | 'serve', Readonly<Record<string, unknown>>>> = Object.freeze({
  nsupdate: {
    type: 'nsupdate',
    hostname: '127.0.0.1',
    port: 53,
    timeout: '10s',
    zone: 'example.org',
    'record-ttl': '60s',
    'tsig-name': 'nsregd',
    'tsig-secret': 'c2VjcmV0LWZvci10aGUtZXhhbXBsZS1vbmx5IQ==',
  },
  unbound: {
    type: 'unbound',
    hostname: 'localhost',
    ...Object.fromEntries(['client-cert', 'client-key', 'server-cert'].map((k) => [k, `/etc/unbound/${k}.pem`])),
    'server-name': 'unbound',
    'zone-type': 'typetransparent',
    timeout: '1s',
    'record-ttl': '60s',
  },
  serve: { type: 'serve', 'listen-port': 5300 },
});
