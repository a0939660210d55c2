#!/usr/bin/env bash
# Give the dashboard browser tests Debian's Chromium at /usr/bin/chromium (Playwright drives it;
# `playwright install` is never used: it downloads browsers). Installs the `chromium` package
# when running as root with apt-get and no browser is present; otherwise says so, and the
# browser tests skip with that reason. Safe to run again; never fails the build by itself.
set -u
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the dashboard browser tests" >&2
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1 \
      || echo "could not install chromium; the dashboard browser tests will skip" >&2
  fi
else
  echo "no /usr/bin/chromium; the dashboard browser tests will skip" >&2
fi
exit 0
