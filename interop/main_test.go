package interop

import (
	"os"
	"testing"

	"github.com/pop3kit/pop3kit/internal/testenv"
	"github.com/pop3kit/pop3kit/internal/testpg"
)

// TestMain stops the private PostgreSQL that TestScaleOut starts, and
// removes the pop3d it built.
func TestMain(m *testing.M) {
	code := m.Run()
	testpg.StopShared()
	testenv.Cleanup()
	os.Exit(code)
}
