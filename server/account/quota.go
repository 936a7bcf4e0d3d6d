package account

import (
	"fmt"
	"strconv"
)

// FormatSize prints a size of n octets in the largest binary unit that
// divides it (256MiB, 1GiB, 1500B): how pop3d writes a quota or a limit
// back to an administrator or a user.
func FormatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.factor == 0 {
			return strconv.FormatInt(n/u.factor, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// parseQuotaSize reads a Dovecot quota size: a number with an optional
// unit b, k, M, G or T (powers of 1024).
func parseQuotaSize(v string) (int64, error) {
	mult := int64(1)
	if n := len(v); n > 0 {
		switch v[n-1] {
		case 'b', 'B':
			v = v[:n-1]
		case 'k', 'K':
			mult, v = 1<<10, v[:n-1]
		case 'm', 'M':
			mult, v = 1<<20, v[:n-1]
		case 'g', 'G':
			mult, v = 1<<30, v[:n-1]
		case 't', 'T':
			mult, v = 1<<40, v[:n-1]
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("storage %q: want a size such as 100M", v)
	}
	return n * mult, nil
}
