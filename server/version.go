package server

import (
	"runtime/debug"
	"strings"
)

// Build says which pop3d this is, from the build information Go records
// in every binary: the module's version ("(devel)" for a build from a
// checkout), the VCS revision and whether the tree had changes, and the Go
// version.
type Build struct {
	Version, Revision, GoVersion string
	Modified                     bool
}

// BuildInfo returns the running binary's Build.
func BuildInfo() Build {
	b := Build{Version: "unknown", Revision: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	b.GoVersion = info.GoVersion
	if v := info.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is how pop3d --version prints it.
func (b Build) String() string {
	var s strings.Builder
	s.WriteString("pop3d " + b.Version + " (revision " + b.Revision)
	if b.Modified {
		s.WriteString(", modified")
	}
	if b.GoVersion != "" {
		s.WriteString(", " + b.GoVersion)
	}
	s.WriteString(")")
	return s.String()
}
