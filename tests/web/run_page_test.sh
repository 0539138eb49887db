#!/bin/sh
# ctest's entry to page_test.js: installs puppeteer-core once (no browser
# download: the test drives Debian's chromium), then runs the checks.
# SCREENSHOTS=docs/img (absolute) saves the README's screenshots too.
set -eu
dir=$1
if [ ! -d "$dir/node_modules/puppeteer-core" ]; then
  (cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "web.page: no chromium at ${CHROMIUM:-/usr/bin/chromium}: scripts/bootstrap installs it" >&2
  exit 1
fi
COLLECTOR=$2 SERIES_BENCH=$3 exec node "$dir/page_test.js"
