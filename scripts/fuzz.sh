#!/usr/bin/env bash
# Runs every go test -fuzz target of the module for FUZZTIME each (default
# 10s). Targets are found with go test -list, so new ones join by
# themselves. A failure leaves its input under the package's
# testdata/fuzz/<Target>/ for go test to replay.
set -euo pipefail
go=${GO:-go}
fuzztime=${FUZZTIME:-10s}
n=0
for pkg in $($go list ./...); do
	for target in $($go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz $pkg $target ($fuzztime)"
		if ! out=$($go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
			echo "$out" >&2
			exit 1
		fi
		n=$((n + 1))
	done
done
echo "fuzz: $n targets, $fuzztime each: no failure"
