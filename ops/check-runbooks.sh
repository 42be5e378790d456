#!/usr/bin/env bash
# Every alert in ops/prometheus/alerts.yml has a runbook_url "docs/operations.md#<anchor>" whose anchor is a
# heading of docs/operations.md (GitHub slug: lower case, punctuation dropped, spaces to dashes). Run by
# `make lint-ops`.
set -euo pipefail
cd "$(dirname "$0")/.."
rules=ops/prometheus/alerts.yml
doc=docs/operations.md

slugs=$(grep -E '^#{1,6} ' "$doc" | sed -E 's/^#+ +//' | tr '[:upper:]' '[:lower:]' \
  | sed -E 's/[^a-z0-9 _-]//g; s/ /-/g')
alerts=$(grep -cE '^ *- alert: ' "$rules")
urls=$(grep -cE '^ *runbook_url: ' "$rules")
status=0
if [ "$alerts" != "$urls" ]; then
  echo "check-runbooks: $alerts alerts but $urls runbook_url annotations in $rules" >&2
  status=1
fi
while read -r url; do
  case "$url" in
    "$doc#"*) ;;
    *) echo "check-runbooks: runbook_url $url does not point into $doc" >&2; status=1; continue ;;
  esac
  anchor=${url#*#}
  if ! grep -qxF "$anchor" <<<"$slugs"; then
    echo "check-runbooks: $url: no heading with anchor #$anchor in $doc" >&2
    status=1
  fi
done < <(grep -E '^ *runbook_url: ' "$rules" | sed -E 's/^ *runbook_url: *"?([^"]*)"?$/\1/')
# Links inside the page (#anchor) must resolve too.
while read -r anchor; do
  grep -qxF "$anchor" <<<"$slugs" || { echo "check-runbooks: $doc links to missing #$anchor" >&2; status=1; }
done < <(grep -oE '\]\(#[a-z0-9_-]+\)' "$doc" | sed -E 's/^\]\(#//; s/\)$//' | sort -u)
[ "$status" = 0 ] && echo "check-runbooks: $alerts alerts, every runbook anchor exists in $doc"
exit "$status"
