#!/usr/bin/env bash
# sync.sh keeps internal/xnet (sluice's copy of x/net's HTTP/2 server) equal
# to golang.org/x/net, at the version go.mod requires, plus sluice.patch.
#
#   internal/xnet/sync.sh diff    rewrite sluice.patch from the current copy
#   internal/xnet/sync.sh apply   recreate the copy: pristine files + sluice.patch
#   internal/xnet/sync.sh check   fail unless the copy is exactly pristine + sluice.patch
#
# After bumping golang.org/x/net in go.mod: run `apply`, resolve any
# rejected hunks by hand, run `diff`, and re-run the tests (h2spec among
# them). TestForkMatchesUpstream fails until the copy and the patch agree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
xnet=$(go list -m -f '{{.Dir}}' golang.org/x/net)
[ -n "$xnet" ] && [ -d "$xnet" ] || { echo "sync.sh: golang.org/x/net is not in the module cache (go mod download)" >&2; exit 1; }

# The upstream files the copy holds, by directory here: upstream directory.
pairs=(
  "http2:http2"
  "httpcommon:internal/httpcommon"
  "httpsfv:internal/httpsfv"
)
files() { # the copied files of one directory (sluice's own files are fork*.go)
  (cd "$here/$1" && ls *.go | grep -v -e '_test\.go$' -e '^fork.*\.go$')
}

pristine=$(mktemp -d)
trap 'rm -rf "$pristine"' EXIT
for p in "${pairs[@]}"; do
  d=${p%%:*} u=${p#*:}
  mkdir -p "$pristine/a/$d"
  for f in $(files "$d"); do
    cp "$xnet/$u/$f" "$pristine/a/$d/$f"
  done
done

case "${1:-}" in
diff)
  mkdir -p "$pristine/b"
  for p in "${pairs[@]}"; do
    d=${p%%:*}
    mkdir -p "$pristine/b/$d"
    for f in $(files "$d"); do cp "$here/$d/$f" "$pristine/b/$d/$f"; done
  done
  { echo "sluice's changes to golang.org/x/net $(basename "$xnet" | sed 's/.*@//') (see UPSTREAM.md)"
    echo
    (cd "$pristine" && diff -ruN a b || true)
  } > "$here/sluice.patch"
  echo "sync.sh: wrote sluice.patch"
  ;;
apply)
  for p in "${pairs[@]}"; do
    d=${p%%:*}
    for f in $(files "$d"); do
      cp "$pristine/a/$d/$f" "$here/$d/$f"
      chmod u+w "$here/$d/$f"
    done
  done
  (cd "$here" && git apply -p1 --reject sluice.patch)
  echo "sync.sh: applied sluice.patch"
  ;;
check)
  (cd "$pristine/a" && git apply -p1 "$here/sluice.patch")
  status=0
  for p in "${pairs[@]}"; do
    d=${p%%:*}
    for f in $(files "$d"); do
      cmp -s "$pristine/a/$d/$f" "$here/$d/$f" || { echo "sync.sh: $d/$f differs from x/net + sluice.patch" >&2; status=1; }
    done
  done
  [ $status = 0 ] && echo "sync.sh: the copy is x/net + sluice.patch"
  exit $status
  ;;
*)
  echo "usage: $0 diff|apply|check" >&2
  exit 2
  ;;
esac
