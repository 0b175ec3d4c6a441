// Package churn holds the binding's leak and endurance tests; it has no API.
//
// TestChurn (in go test ./..., so in CI) opens thousands of links against an
// in-process lws server and through lws.Dial: each is used, then dropped in
// one of several ways (a clean close by either side, TCP closed without a
// close frame, a reset, a frame cut in the middle, an echo left unread, an
// upgrade or an HTTP body abandoned halfway). After a warm-up and again
// after many more links it checks that the process's resident memory stayed
// within a generous bound, that the live cgo handles and goroutines came
// back to where they were, and that none remain once the contexts close.
//
// TestSoak is the same at scale for a set time, printing resident memory,
// live handles, goroutines and open links as it goes. It only runs with a
// duration:
//
//	make soak                  # 5 minutes
//	make soak SOAK=30m
//	make soak SOAK=1m SOAK_KINDS=lws-clean,lws-server-close
//	go test -run TestSoak -v -timeout 0 ./cmd/internal/churn -soak 2m
package churn
