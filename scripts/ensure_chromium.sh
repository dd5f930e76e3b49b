#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (Playwright never downloads a browser here). Install the
# `chromium` package when it is missing and we may (root with apt-get).
# In CI (CI set, as .ci/run and GitHub Actions do) a Chromium we cannot install is an error: a
# green CI run promises the browser tests ran. On a laptop it is a warning: those tests then
# skip, and pytest's summary says so.
set -u
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$chromium" ] && exit 0

case "$(printf '%s' "${CI:-}" | tr '[:upper:]' '[:lower:]')" in
  "" | 0 | false | no) ci=0 ;;
  *) ci=1 ;;
esac

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests (once)..."
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1
  fi
  [ -x "$chromium" ] && exit 0
  why="apt-get install chromium failed"
else
  why="not root, or no apt-get: run 'apt-get install chromium' as root"
fi

if [ "$ci" = 1 ]; then
  echo "error: Chromium is missing at $chromium ($why)." >&2
  echo "CI runs the browser tests: install Debian's 'chromium' package or set CHROMIUM_PATH." >&2
  exit 1
fi
echo "warning: Chromium is missing at $chromium ($why): the browser tests will skip." >&2
exit 0
