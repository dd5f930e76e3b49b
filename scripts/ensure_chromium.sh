#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (Playwright never downloads a browser here). Install it
# when missing and we may (root with apt-get); otherwise say so: those tests then skip.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests (once)..."
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 ||
      echo "could not install chromium: browser tests will skip" >&2
  fi
else
  echo "chromium is not installed (apt-get install chromium): browser tests will skip" >&2
fi
exit 0
