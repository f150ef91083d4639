#!/usr/bin/env bash
# Debian's chromium for the headless-browser test; playwright (pip) drives it with executable_path.
set -u
[ -x /usr/bin/chromium ] && fc-list 2>/dev/null | grep -qi "wqy\|noto.*cjk" && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's chromium for the browser test"
  (apt-get install -y -q chromium fonts-wqy-microhei || (apt-get update -q && apt-get install -y -q chromium fonts-wqy-microhei)) >/dev/null && exit 0
fi
echo "chromium not installed: the browser test will be skipped (CI installs it)" >&2
exit 0
