package pop3

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/pop3kit/pop3kit/internal/fuzzbound"
)

// FuzzBase64 holds the core's base64 check, which decides whether a SASL
// response reaches the handler (RFC 5034 §4), to encoding/base64: the two
// agree on every input without line breaks (which encoding/base64 skips).
func FuzzBase64(f *testing.F) {
	for _, s := range []string{"", "AGFsaWNlAHNlY3JldA==", "=AAA", "AAA=BBB", "QQ==", "QQ=", "*"} {
		f.Add([]byte(s))
	}
	fuzzbound.Fuzz(f, func(t *testing.T, b []byte) {
		if bytes.ContainsAny(b, "\r\n") {
			return
		}
		_, err := base64.StdEncoding.DecodeString(string(b))
		if got := validBase64(b); got != (err == nil) {
			t.Fatalf("%q: ValidBase64 %v, encoding/base64 error %v", b, got, err)
		}
	})
}
