#!/usr/bin/env bash
# Makes sure the external programs the integration tests drive are present.
# As root on Debian it installs them; otherwise it names what is missing and
# fails, so a test run never silently skips what it cannot run.
set -euo pipefail
need=(named dig nsupdate dnssec-keygen unbound unbound-control unbound-control-setup knotd ip systemd-analyze groff man promtool etcd etcdctl openssl)
missing=()
for tool in "${need[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing test tools (missing: ${missing[*]})" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q bind9 bind9-utils bind9-dnsutils unbound knot iproute2 systemd groff-base man-db prometheus etcd-server etcd-client openssl
  exit 0
fi
echo "error: the test suite needs these programs: ${missing[*]}" >&2
echo "install them (Debian: apt-get install bind9 bind9-utils bind9-dnsutils unbound knot iproute2 systemd groff-base man-db prometheus etcd-server etcd-client openssl) and run again" >&2
exit 1
