#!/usr/bin/env bash
# Debian's nginx-light: the Space's front (space/front.py), run in front of Streamlit by tests/test_front.py
# and by the load test (bench/load_test.py --front nginx, its default), as the Space image runs it.
set -u
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's nginx-light for the front tests"
  (apt-get install -y -q nginx-light || (apt-get update -q && apt-get install -y -q nginx-light)) >/dev/null || exit 1
  # the package starts a system nginx on port 80; the tests start their own
  (service nginx stop || systemctl stop nginx) >/dev/null 2>&1 || true
  exit 0
fi
echo "nginx not installed: the front tests will be skipped (CI installs it)" >&2
exit 0
