package main

import (
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/pop3kit/pop3kit/server"
)

// loadConfigFile reads a TOML file over c (the keys are server.Config's
// toml tags). Unknown keys are errors, so a misspelt setting cannot be
// silently ignored. The [set] table's variations are applied in the
// file's order; --set flags given later win over them.
//
// BurntSushi/toml: TOML 1.0, and it reports the keys it did not decode,
// which is what refusing a misspelt key needs.
func loadConfigFile(path string, c *server.Config) error {
	_, err := loadConfigFileStore(path, c)
	return err
}

// fileConfig is the TOML file: server.Config's keys and the keys only
// cmd/pop3d reads.
type fileConfig struct {
	server.Config
	// Store is --store: a postgres:// URL of the PostgreSQL store.
	Store string `toml:"store"`
}

// loadConfigFileStore is loadConfigFile that also returns the file's
// store key.
func loadConfigFileStore(path string, c *server.Config) (store string, err error) {
	data, err := server.ReadSettingsFile(path)
	if err != nil {
		return "", err
	}
	return loadConfigData(path, data, c)
}

// loadConfigData is loadConfigFileStore on the file's content, as read
// (by the privileged config reader, say) from path.
func loadConfigData(path string, data []byte, c *server.Config) (store string, err error) {
	set := c.Set
	c.Set = nil
	fc := fileConfig{Config: *c}
	md, err := toml.Decode(string(data), &fc)
	*c = fc.Config
	if err != nil {
		c.Set = set
		return "", fmt.Errorf("%s: %v", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und {
			keys = append(keys, k.String())
		}
		return "", fmt.Errorf("%s: unknown setting %s", path, strings.Join(keys, ", "))
	}
	file := c.Set
	c.Set = set
	for _, k := range md.Keys() {
		if len(k) == 2 && k[0] == "set" {
			if err := c.AddSet(k[1] + "=" + file[k[1]]); err != nil {
				return "", fmt.Errorf("%s: %v", path, err)
			}
		}
	}
	return fc.Store, nil
}
