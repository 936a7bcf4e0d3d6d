package probe

import (
	"fmt"
	"strings"
)

// Named is a report with the name of the server it is of.
type Named struct {
	Name   string
	Report *Report
}

// Table writes the variations' values seen on each server as a Markdown
// table, one row a variation in the table's order, one column a server;
// "—" where the probe could not tell. Only values: the table is the same
// from run to run as long as the servers are.
func Table(servers []Named) string {
	var b strings.Builder
	b.WriteString("| variation |")
	for _, s := range servers {
		fmt.Fprintf(&b, " %s |", s.Name)
	}
	b.WriteString("\n|---|")
	for range servers {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	if len(servers) == 0 {
		return b.String()
	}
	for i, ob := range servers[0].Report.Variations {
		fmt.Fprintf(&b, "| `%s` |", ob.Name)
		for _, s := range servers {
			v := "—"
			if i < len(s.Report.Variations) && s.Report.Variations[i].Told {
				v = "`" + s.Report.Variations[i].Value + "`"
			}
			fmt.Fprintf(&b, " %s |", v)
		}
		b.WriteString("\n")
	}
	return b.String()
}
