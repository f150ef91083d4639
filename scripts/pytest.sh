#!/usr/bin/env bash
# Run the test suite; "no tests collected" (pytest's exit 5) is a failure, never a silent pass.
PY=${1:-.venv/bin/python}
shift || true
"$PY" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
