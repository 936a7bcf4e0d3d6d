package saslmech_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/server/saslmech"
)

// TestGSSAPITokenParsers: the RFC 2743 §3.1 framing and RFC 4121 Wrap
// tokens, read strictly.
func TestGSSAPITokenParsers(t *testing.T) {
	krb5 := "\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02"
	for _, tc := range []struct {
		name, in string
		id       uint16
		body     string
		err      string
	}{
		{name: "AP-REQ", in: "\x60\x0f" + krb5 + "\x01\x00ab", id: saslmech.GSSTokAPReq, body: "ab"},
		{name: "Windows' Kerberos OID", in: "\x60\x0d\x06\x09\x2a\x86\x48\x82\xf7\x12\x01\x02\x02\x01\x00", id: saslmech.GSSTokAPReq, body: ""},
		{name: "long-form length", in: "\x60\x81\x80" + krb5 + "\x01\x00" + strings.Repeat("x", 0x80-13), id: saslmech.GSSTokAPReq, body: strings.Repeat("x", 0x80-13)},
		{name: "long form where the short would do", in: "\x60\x81\x0d" + krb5 + "\x01\x00", err: "InitialContextToken"},
		{name: "trailing octet", in: "\x60\x0d" + krb5 + "\x01\x00x", err: "InitialContextToken"},
		{name: "short", in: "\x60\x0e" + krb5 + "\x01\x00", err: "InitialContextToken"},
		{name: "no TOK_ID", in: "\x60\x0b" + krb5, err: "InitialContextToken"},
		{name: "SPNEGO", in: "\x60\x0c\x06\x06\x2b\x06\x01\x05\x05\x02\xa0\x02\x30\x00", err: "SPNEGO"},
		{name: "another mechanism", in: "\x60\x05\x06\x03\x2a\x03\x04", err: "not the Kerberos V5 mechanism"},
		{name: "not 0x60", in: "\x61\x00", err: "InitialContextToken"},
		{name: "empty", in: "", err: "InitialContextToken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, body, err := saslmech.ParseGSSToken([]byte(tc.in))
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.id, id)
			assert.Equal(t, tc.body, string(body))
		})
	}

	hdr := func(flags byte, ec, rrc uint16) []byte {
		h := []byte{0x05, 0x04, flags, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}
		binary.BigEndian.PutUint16(h[4:], ec)
		binary.BigEndian.PutUint16(h[6:], rrc)
		return h
	}
	w, err := saslmech.ParseGSSWrap(append(hdr(0, 3, 0), "payloadCHK"...))
	require.NoError(t, err)
	assert.Equal(t, saslmech.GSSWrap{Flags: 0, Seq: 7, Payload: []byte("payload"), Checksum: []byte("CHK")}, w)
	w, err = saslmech.ParseGSSWrap(append(hdr(1, 3, 4), "dCHKpayloa"...)) // rotated right by 4
	require.NoError(t, err)
	assert.Equal(t, "payload", string(w.Payload))
	assert.Equal(t, "CHK", string(w.Checksum))
	for name, in := range map[string][]byte{
		"sealed":            append(hdr(2, 3, 0), "payloadCHK"...),
		"unknown flag":      append(hdr(8, 3, 0), "payloadCHK"...),
		"EC beyond the end": append(hdr(0, 11, 0), "payloadCHK"...),
		"MIC token":         append([]byte{0x04, 0x04}, hdr(0, 0, 0)[2:]...),
		"short header":      hdr(0, 0, 0)[:15],
	} {
		_, err := saslmech.ParseGSSWrap(in)
		assert.Error(t, err, name)
	}
}
