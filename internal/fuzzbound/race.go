//go:build race

package fuzzbound

// raceFactor is how much longer an input may take under the race detector.
const raceFactor = 10
