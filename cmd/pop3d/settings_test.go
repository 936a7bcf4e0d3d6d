package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server"
)

// TestSettingsOneDeclaration: every key of the config file is a flag of
// pop3d serve with the same name, and the other way round (but --config,
// --store and --demo-dir, which say where settings come from); each has
// its text; the README's table and the man page are what the declaration
// writes. Before, drain_timeout and log_level were flags only, and quota,
// retention, ntlm_domain and five more keys only.
func TestSettingsOneDeclaration(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	registerSettings(fs)
	flags := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { flags[f.Name] = true })
	keys := map[string]bool{}
	for _, s := range settings() {
		keys[s.key] = true
		assert.True(t, flags[strings.ReplaceAll(s.key, "_", "-")], "key %s has no flag", s.key)
		assert.NotEmpty(t, s.usage, "key %s has no text", s.key)
	}
	for k := range settingUsage {
		assert.True(t, keys[k], "settingUsage names %s, which is no key", k)
	}
	for _, k := range []string{"drain_timeout", "log_level", "quota", "retention", "ntlm_domain", "quota_warning",
		"implementation", "protocol_log_users", "protocol_log_networks", "ntlm_allow_v1"} {
		assert.True(t, keys[k], "%s is a key and a flag", k)
	}

	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(readme), "<!-- settings: written by pop3d settings --markdown -->\n")
	require.True(t, ok, "the README's settings table")
	table, _, ok := strings.Cut(rest, "<!-- settings: end -->")
	require.True(t, ok)
	assert.Equal(t, settingsMarkdown(), table, "README's settings table: run go run ./cmd/pop3d settings --markdown and paste it")

	man := manPage()
	for _, s := range settings() {
		assert.Contains(t, man, `\-\-`+strings.ReplaceAll(s.flag, "-", `\-`), "the man page names --%s", s.flag)
	}
	if groff, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(man)
		var warn bytes.Buffer
		cmd.Stderr = &warn
		require.NoError(t, cmd.Run())
		assert.Empty(t, warn.String(), "groff's warnings on the man page")
	}
}

// TestSettingsFlagsOverFile: a flag wins over the file's key of the same
// name, whatever its type: a list, a duration, a size, a bool, a number,
// a variation.
func TestSettingsFlagsOverFile(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sf := registerSettings(fs)
	require.NoError(t, fs.Parse([]string{"--listen", "127.0.0.1:1", "--listen", "127.0.0.1:2", "--retention", "30d",
		"--quota", "1GiB", "--penalties=false", "--quota-warning", "80", "--set", "APOP=true", "--trusted-networks", "10.0.0.0/8,192.0.2.0/24",
		"--drain-timeout", "5s", "--log-level", "debug"}))
	cfg := defaultConfigForTest(t, "listen = [\"127.0.0.1:9\"]\nretention = \"60d\"\n")
	require.NoError(t, sf.apply(&cfg))
	assert.Equal(t, []string{"127.0.0.1:1", "127.0.0.1:2"}, cfg.Listen)
	assert.Equal(t, "30d", cfg.Retention.String())
	assert.Equal(t, "1GiB", cfg.Quota.String())
	assert.False(t, cfg.Penalties)
	assert.Equal(t, 80, cfg.QuotaWarning)
	assert.Equal(t, []string{"10.0.0.0/8", "192.0.2.0/24"}, cfg.TrustedNetworks)
	assert.Equal(t, "5s", cfg.DrainTimeout.String())
	assert.Equal(t, "debug", cfg.LogLevel)
	v, err := cfg.Variations()
	require.NoError(t, err)
	assert.True(t, v.APOP)
	assert.Error(t, fs.Parse([]string{"--quota", "lots"}), "a bad value is refused as the flag is read")
}

// defaultConfigForTest loads a config file of text over the defaults.
func defaultConfigForTest(t *testing.T, text string) server.Config {
	p := filepath.Join(t.TempDir(), "pop3d.toml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	c := server.DefaultConfig()
	require.NoError(t, loadConfigFile(p, &c))
	return c
}

// TestMakeInstall: make install DESTDIR=… puts the binary, pop3d(8), the
// systemd units and the example configuration where a Debian
// administrator looks for them, and the installed binary runs.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds pop3d with make; -short leaves it to the plain run")
	}
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	dest := t.TempDir()
	out, err := exec.Command(makeBin, "-C", "../..", "install", "DESTDIR="+dest).CombinedOutput()
	require.NoError(t, err, "make install: %s", out)
	for _, f := range []string{"usr/local/bin/pop3d", "usr/local/share/man/man8/pop3d.8", "etc/systemd/system/pop3d.service",
		"etc/systemd/system/pop3d.socket", "etc/systemd/system/pop3d-tls.socket", "etc/systemd/system/pop3d-expire.service",
		"etc/systemd/system/pop3d-expire.timer", "etc/pop3kit/pop3d.example.toml"} {
		assert.FileExists(t, filepath.Join(dest, f))
	}
	v, err := exec.Command(filepath.Join(dest, "usr/local/bin/pop3d"), "--version").CombinedOutput()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(v), "pop3d "), "%s", v)
	man, err := os.ReadFile(filepath.Join(dest, "usr/local/share/man/man8/pop3d.8"))
	require.NoError(t, err)
	assert.Equal(t, manPage(), string(man))
}
