#!/usr/bin/env bash
# `make install` with DESTDIR puts the binary, the systemd unit and the example
# config in the usual places; a reinstall keeps an edited config; the unit's
# hardening rates well with systemd-analyze.
set -euo pipefail
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
p=${prefix#/}
DESTDIR=$dest cmake --install "$build" >/dev/null
for f in $p/bin/omnibusd $p/lib/systemd/system/omnibus.service etc/omnibus/omnibus.yaml \
         etc/omnibus/omnibus.yaml.example $p/share/doc/omnibus/README.md $p/share/doc/omnibus/configuration.md; do
  [ -e "$dest/$f" ] || { echo "missing after install: $f"; exit 1; }
done
[ -x "$dest/$p/bin/omnibusd" ] || { echo "omnibusd not executable"; exit 1; }
unit=$dest/$p/lib/systemd/system/omnibus.service
grep -q "^ExecStart=$prefix/bin/omnibusd --config /etc/omnibus/omnibus.yaml\$" "$unit" || { echo "ExecStart paths wrong"; cat "$unit"; exit 1; }
grep -q '^Type=notify$' "$unit" || { echo "unit is not Type=notify"; exit 1; }
grep -q '^WatchdogSec=' "$unit" || { echo "unit has no watchdog"; exit 1; }
! grep -q '@OMNIBUS_' "$unit" || { echo "unfilled placeholder in unit"; exit 1; }

# A reinstall keeps the operator's config.
echo "# edited" >> "$dest/etc/omnibus/omnibus.yaml"
DESTDIR=$dest cmake --install "$build" >/dev/null
grep -q '^# edited$' "$dest/etc/omnibus/omnibus.yaml" || { echo "reinstall overwrote the config"; exit 1; }

# The installed example config is valid.
OMNIBUS_KAFKA_PASSWORD=x "$dest/$p/bin/omnibusd" --check-config "$dest/etc/omnibus/omnibus.yaml.example"

if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze security --offline=true "$unit" 2>&1)
  level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for omnibus.service: \([0-9.]*\).*/\1/p')
  echo "systemd-analyze security exposure: $level"
  [ -n "$level" ] || { printf '%s\n' "$out" | tail -5; exit 1; }
  awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || { echo "exposure $level is above 2.0"; exit 1; }
fi
echo "install ok"
