package account

import (
	"strconv"
	"strings"
)

// SmallHashCost is what a bcrypt, SHA-crypt or PLAIN verification is
// charged: bcrypt's state is 4 KiB and SHA-crypt at 5,000 rounds makes
// some hundreds of KiB of garbage; 1 MiB covers both with room.
const SmallHashCost = 1 << 20

// argon2Cost returns the memory an argon2 verification of the encoded
// digest allocates: m KiB of blocks ("$argon2id$v=19$m=65536,t=3,p=4$…"),
// plus the small-hash charge for the rest. ok is false if the digest does
// not say m.
func argon2Cost(encoded string) (int64, bool) {
	parts := strings.Split(encoded, "$")
	if len(parts) < 4 {
		return 0, false
	}
	for _, kv := range strings.Split(parts[3], ",") {
		if v, ok := strings.CutPrefix(kv, "m="); ok {
			m, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return 0, false
			}
			return int64(m)*1024 + SmallHashCost, true
		}
	}
	return 0, false
}
