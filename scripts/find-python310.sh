#!/usr/bin/env bash
# Print the path of a Python 3.10 interpreter (lava-nc 0.10.0 runs on 3.10 only).
# Looks on PATH first, then in pyenv. Exits 1 with a message naming the fix if none exists.
set -u
is310() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null; }

for cand in "${PYTHON310:-}" python3.10; do
  [ -n "$cand" ] || continue
  path=$(command -v "$cand" 2>/dev/null) || continue
  # a pyenv shim on PATH answers only if 3.10 is selected: ask pyenv for the real binary below
  case "$path" in */.pyenv/shims/*) continue ;; esac
  if is310 "$path"; then echo "$path"; exit 0; fi
done

if command -v pyenv >/dev/null 2>&1; then
  for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.[0-9]+)?$' | sort -t. -k3 -n -r); do
    prefix=$(pyenv prefix "$v" 2>/dev/null) || continue
    if is310 "$prefix/bin/python3.10"; then echo "$prefix/bin/python3.10"; exit 0; fi
  done
fi

cat >&2 <<'MSG'
error: no Python 3.10 interpreter found (lava-nc 0.10.0 supports Python 3.10 only).
  Looked at: $PYTHON310, python3.10 on PATH, and pyenv versions 3.10.x.
  Fix: install one, e.g. `pyenv install 3.10.13`, or point PYTHON310 at a 3.10 binary:
       make PYTHON310=/path/to/python3.10 test
MSG
exit 1
