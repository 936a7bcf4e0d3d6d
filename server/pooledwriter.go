package server

import (
	"bufio"
	"io"
	"sync"
)

// writeBufs are the write buffers sessions borrow for a batch of replies.
// 32 KiB makes RETR stream in few system calls; an idle session holds
// none, which keeps a held session small.
var writeBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32*1024) }}

// pooledWriter buffers writes to w in a borrowed bufio.Writer, taken at
// the first write and given back by Flush.
type pooledWriter struct {
	w  io.Writer
	bw *bufio.Writer
}

func (p *pooledWriter) Write(b []byte) (int, error) {
	if p.bw == nil {
		p.bw = writeBufs.Get().(*bufio.Writer)
		p.bw.Reset(p.w)
	}
	return p.bw.Write(b)
}

// Flush writes what is buffered and gives the buffer back.
func (p *pooledWriter) Flush() error {
	if p.bw == nil {
		return nil
	}
	err := p.bw.Flush()
	p.bw.Reset(nil)
	writeBufs.Put(p.bw)
	p.bw = nil
	return err
}

// Reset directs later writes to w (after STLS).
func (p *pooledWriter) Reset(w io.Writer) {
	_ = p.Flush()
	p.w = w
}
