package spec

import "maps"

// Clone returns a copy of t that shares nothing with it: every row slice,
// every row's own slices and every Profile map are copied, so a program can
// extend a table by value without changing the one it started from:
//
//	t := spec.POP3.Clone()
//	t.Commands = append(t.Commands, spec.Command{Name: "XHLO", …})
//	t.AddProfile(spec.Profile{Name: "mysite", Doc: "…"}, spec.Exchange2010)
func (t Table) Clone() Table {
	c := t
	c.States = cloneRows(t.States, func(s *StateInfo) {})
	c.Commands = cloneRows(t.Commands, func(x *Command) {
		x.Edges = append([]Edge(nil), x.Edges...)
		x.Clauses = append([]string(nil), x.Clauses...)
	})
	c.Variations = cloneRows(t.Variations, func(x *Variation) {
		x.Values = append([]string(nil), x.Values...)
		x.Profile = maps.Clone(x.Profile)
		x.Clauses = append([]string(nil), x.Clauses...)
	})
	c.Profiles = cloneRows(t.Profiles, func(x *Profile) { x.Aliases = append([]string(nil), x.Aliases...) })
	c.Capabilities = cloneRows(t.Capabilities, func(x *Capability) { x.Clauses = append([]string(nil), x.Clauses...) })
	c.RespCodes = cloneRows(t.RespCodes, func(x *RespCode) { x.Clauses = append([]string(nil), x.Clauses...) })
	c.Errors = cloneRows(t.Errors, func(x *Error) { x.Clauses = append([]string(nil), x.Clauses...) })
	c.Clauses = cloneRows(t.Clauses, func(x *Clause) {})
	c.Limits = cloneRows(t.Limits, func(x *Limit) { x.Clauses = append([]string(nil), x.Clauses...) })
	return c
}

func cloneRows[T any](rows []T, deep func(*T)) []T {
	if rows == nil {
		return nil
	}
	out := make([]T, len(rows))
	copy(out, rows)
	for i := range out {
		deep(&out[i])
	}
	return out
}

// AddProfile appends p to the profiles and gives every variation, under
// p's name, the value it has under the profile named like; change single
// values afterwards through Variation. With p.Default set, the profile
// that was the default stops being one.
func (t *Table) AddProfile(p Profile, like string) {
	if p.Default {
		for i := range t.Profiles {
			t.Profiles[i].Default = false
		}
	}
	t.Profiles = append(t.Profiles, p)
	for i := range t.Variations {
		v := &t.Variations[i]
		if val, ok := v.Profile[like]; ok {
			if v.Profile == nil {
				v.Profile = map[string]string{}
			}
			v.Profile[p.Name] = val
		}
	}
}

// Command returns the row of the command with the given keyword, or nil.
func (t *Table) Command(name string) *Command {
	for i := range t.Commands {
		if t.Commands[i].Name == name {
			return &t.Commands[i]
		}
	}
	return nil
}

// Variation returns the row of the variation with the given name, or nil.
func (t *Table) Variation(name string) *Variation {
	for i := range t.Variations {
		if t.Variations[i].Name == name {
			return &t.Variations[i]
		}
	}
	return nil
}

// Everywhere gives one value to every profile of t, for a variation added
// to it.
func (t *Table) Everywhere(value string) map[string]string {
	m := map[string]string{}
	for _, p := range t.Profiles {
		m[p.Name] = value
	}
	return m
}
