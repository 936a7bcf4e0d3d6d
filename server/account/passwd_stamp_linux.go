package account

import (
	"os"
	"syscall"
	"time"
)

// fileStamp is what tells that a file changed without reading it.
type fileStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64 // nanoseconds since the epoch
}

func stampOf(fi os.FileInfo) fileStamp {
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), st.Ino
		s.ctime = st.Ctim.Nano()
	}
	return s
}

// racyWindow is how close to now a change time must be for a same-size
// rewrite to possibly keep it: the kernel stamps files from a clock that
// ticks every few milliseconds, and some file systems keep whole seconds.
const racyWindow = 2 * time.Second

// racy reports whether the file changed so recently that another change
// could still leave the stamp as it is.
func (s fileStamp) racy(now time.Time) bool {
	return now.UnixNano()-max(s.ctime, s.mtime) < int64(racyWindow)
}
