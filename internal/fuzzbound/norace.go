//go:build !race

package fuzzbound

const raceFactor = 1
