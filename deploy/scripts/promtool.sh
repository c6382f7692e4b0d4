#!/usr/bin/env bash
# Runs promtool (Prometheus' rule and configuration checker) at a pinned version, fetching it first
# when it is not cached:  bash deploy/scripts/promtool.sh check rules deploy/prometheus/rules/*.yml
#
# promtool comes from Debian bookworm's `prometheus` package, the only source CI can reach (the
# Prometheus release tarballs on GitHub are not). Only the .deb is downloaded (`apt-get download`,
# no root needed, nothing installed or started) and its usr/bin/promtool extracted into
# ${XDG_CACHE_HOME:-~/.cache}/ordo/promtool-<version>/, so the first run takes a few seconds and the
# next ones none. The version is pinned to bookworm's upstream release; a security rebuild of the
# same release (+debNuM) is accepted, another release fails here until the pin is moved.
# An older package index may lack it: `apt-get update` first.
set -euo pipefail

PROMTOOL_VERSION=2.42.0

dir="${XDG_CACHE_HOME:-$HOME/.cache}/ordo/promtool-$PROMTOOL_VERSION"
bin="$dir/promtool"

if [[ ! -x $bin ]]; then
  echo "promtool: $PROMTOOL_VERSION not cached; fetching Debian's prometheus package" >&2
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # The -o keeps apt quiet about downloading as root into a directory its _apt user cannot write.
  (cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "prometheus=$PROMTOOL_VERSION*" >&2)
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  mkdir -p "$dir"
  install -m 0755 "$work/root/usr/bin/promtool" "$bin.partial"
  mv "$bin.partial" "$bin"
fi

found=$("$bin" --version 2>&1 | head -n 1)
if [[ $found != "promtool, version $PROMTOOL_VERSION+"* && $found != "promtool, version $PROMTOOL_VERSION "* ]]; then
  echo "promtool: $bin says \"$found\", expected $PROMTOOL_VERSION" >&2
  exit 1
fi

exec "$bin" "$@"
