package pop3

import (
	"strconv"
	"time"
)

// ParseDuration reads a duration for Variations.Set: a Go duration such as
// "90s" or "30m", or a bare number of seconds as mail administrators
// write timeouts ("1800").
func ParseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > int64(24*time.Hour/time.Second)*365 {
			return 0, strconv.ErrRange
		}
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}
