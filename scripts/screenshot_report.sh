#!/usr/bin/env bash
# A headless-browser check of an HTML report (tools/report): Debian's chromium renders it offline
# and saves a PNG screenshot, so one sees that the page opens and its images show. Installs the
# chromium package first when it is missing (needs root and a Debian mirror). Not part of the
# unit tests.
#
#   scripts/screenshot_report.sh REPORT.html OUT.png [WIDTH,HEIGHT]
#
# WIDTH,HEIGHT is the browser window, hence the screenshot (default 1200,1600): the top of the
# page, as far down as HEIGHT reaches.
set -euo pipefail
if (( $# < 2 || $# > 3 )); then
  echo "usage: $0 REPORT.html OUT.png [WIDTH,HEIGHT]" >&2
  exit 2
fi
REPORT=$(realpath -m "$1")
OUT=$(realpath -m "$2")
SIZE=${3:-1200,1600}
[[ -f "$REPORT" ]] || { echo "$0: no such report: $1" >&2; exit 1; }

if ! command -v chromium >/dev/null; then
  echo "installing chromium (Debian package)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# A throw-away profile; no network is needed (the report is self-contained), and none is used
# for anything else: no extensions, sync, first-run pages or crash reports.
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --disable-extensions --disable-sync --disable-background-networking \
  --user-data-dir="$PROFILE" --window-size="$SIZE" --screenshot="$OUT" "file://$REPORT" \
  2> >(grep -v -e dbus -e Fontconfig -e "unexpected operator" >&2)
[[ -s "$OUT" ]] || { echo "$0: chromium wrote no screenshot" >&2; exit 1; }
echo "wrote $OUT"
