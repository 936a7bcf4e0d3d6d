package fuzzbound

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestBounds: an input over InputLimit fails, and so does a corpus whose
// inputs average more than Limit; the first input is not counted.
func TestBounds(t *testing.T) {
	assert.Empty(t, slowInput(time.Second, time.Second))
	assert.Contains(t, slowInput(time.Second+1, time.Second), "waits on the clock")
	assert.Empty(t, slowCorpus(0, 0, time.Hour, Limit), "a corpus of one input: nothing counted")
	assert.Empty(t, slowCorpus(10, 10*Limit, time.Hour, Limit))
	assert.Contains(t, slowCorpus(10, 10*Limit+10, 0, Limit), "each on average")
}
