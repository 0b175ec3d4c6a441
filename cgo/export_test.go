package cgo

// ReasonTable gives the tests the enumerators of the compiled headers
// (reasons_gen.go), which are no part of the package's API.
func ReasonTable() map[string]int { return reasonTable() }
