package interop

import (
	"os"
	"testing"

	"github.com/pop3kit/pop3kit/internal/testpg"
)

// TestMain stops the private PostgreSQL that TestScaleOut starts.
func TestMain(m *testing.M) {
	code := m.Run()
	testpg.StopShared()
	os.Exit(code)
}
