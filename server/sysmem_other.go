//go:build !linux

package server

// systemMemory is unknown off Linux: the memory cap falls back to its
// minimum unless configured.
func systemMemory() int64 { return 0 }
