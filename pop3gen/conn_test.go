package pop3gen

import (
	"bufio"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pop3kit/pop3kit/pop3"
)

// TestConnVariations: a backend reaches the variations through its
// connection — the server's while NewHandler runs, the session's once the
// session exists — so that it can honour the ones left to the store.
func TestConnVariations(t *testing.T) {
	v := Exchange2010()
	v.ExactSizes = true
	var inNewHandler pop3.Variations
	conns := make(chan *pop3.Conn, 1)
	srv := &pop3.Server{Dialect: &v, NewHandler: func(c *pop3.Conn) (pop3.Handler, error) {
		inNewHandler = *c.Variations()
		conns <- c
		return newRecorder(), nil
	}}
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() { srv.ServeConn(a); close(done) }()
	r := bufio.NewReader(b)
	_, err := r.ReadString('\n') // the greeting: the session exists
	require.NoError(t, err)
	c := <-conns
	assert.Equal(t, v.Variations, inNewHandler)
	assert.Same(t, c.Session().Variations(), c.Variations())
	assert.True(t, c.Variations().ExactSizes)
	store := 0
	for _, vi := range VariationTable {
		if vi.Layer == "store" {
			store++
		}
	}
	assert.NotZero(t, store, "the table leaves some variations to the store")
	_, _ = b.Write([]byte("QUIT\r\n"))
	_, _ = r.ReadString('\n')
	<-done
}
