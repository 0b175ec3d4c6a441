#!/usr/bin/env bash
# Runs every go test -fuzz target of the module for FUZZTIME each (default
# 10s). Targets are found with go test -list, so new ones join by
# themselves. A failure leaves its input under the package's
# testdata/fuzz/<Target>/ for go test to replay.
#
# Go before 1.27 can fail a target at the -fuzztime boundary with a bare
# "context deadline exceeded" and no input written: a race in the fuzzing
# coordinator between the -fuzztime deadline and its workers' context
# (golang/go#75804, fixed in Go 1.27). CI saw it on FuzzDeflateOffer, which
# had found nothing. Such a result is not taken as a pass by itself: the
# target's seeds and testdata corpus are replayed with go test -run, and only
# a clean replay lets the script go on, with a line that says so. Any other failure, or the same one on Go 1.27 or later,
# fails the script.
set -euo pipefail
go=${GO:-go}
fuzztime=${FUZZTIME:-10s}

# coordinatorRace OUTPUT: true when OUTPUT is the Go < 1.27 deadline race.
coordinatorRace() {
	local minor
	minor=$($go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
	[[ -n $minor && $minor -lt 27 ]] || return 1
	grep -qxE '[[:space:]]*context deadline exceeded' <<<"$1" || return 1
	! grep -q 'Failing input written' <<<"$1"
}

n=0
for pkg in $($go list ./...); do
	for target in $($go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz $pkg $target ($fuzztime)"
		if ! out=$($go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
			if coordinatorRace "$out" && $go test -count=1 -run "^${target}\$" "$pkg" >/dev/null; then
				echo "fuzz $target: Go's coordinator deadline race (golang/go#75804), no input failed; corpus replay passed"
			else
				echo "$out" >&2
				exit 1
			fi
		fi
		n=$((n + 1))
	done
done
echo "fuzz: $n targets, $fuzztime each: no failure"
