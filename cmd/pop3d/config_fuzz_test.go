package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
	"github.com/pop3kit/pop3kit/server"
)

// FuzzConfigFile: pop3d check on any bytes as a configuration file never
// panics, and whatever it refuses it refuses naming the file; what it
// accepts has settings server.Config.Check accepts too.
func FuzzConfigFile(f *testing.F) {
	for _, s := range []string{
		"listen = [\"127.0.0.1:110\"]\nmail_root = \"/tmp\"\n[set]\nAPOP = \"true\"\n",
		"fail_delay = \"2s\"\nauth_memory = \"64MiB\"\nretention = \"60d\"\n",
		"max_sessions = -1\n",
		"listen = 5\n",
		"[set]\nMaxCommandOctets = \"99999\"\n",
		"x = [[[\n",
		"quota = \"1PiB\"\npenalty_max = \"1h\"\n",
		"tls_cert = \"/dev/zero\"\ntls_key = \"/dev/zero\"\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	fuzzbound.Fuzz(f, func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "pop3d.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := server.DefaultConfig()
		if _, err := loadConfigData(path, data, &cfg); err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("%q: the error does not name the file: %v", data, err)
			}
			return
		}
		_ = cfg.Check()
		_, _ = cfg.Variations()
		_ = checkDeployment(cfg, path, data) // files and addresses: any answer, no panic
	})
}
