#!/bin/sh
# Install Debian's headless-capable Chromium for the report tests, once. Idempotent: does nothing when
# /usr/bin/chromium is already there. Needs root (CI and the dev machines run as root) and Debian's apt.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_chromium.sh: needs root to apt-get install chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium
