//go:build !linux

package account

import (
	"os"
	"time"
)

// fileStamp is what tells that a file changed without reading it. Off
// Linux it has no inode or change time, so every check within racyWindow
// of a change hashes the content.
type fileStamp struct {
	size  int64
	mtime int64
}

func stampOf(fi os.FileInfo) fileStamp {
	return fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

const racyWindow = 2 * time.Second

// racy is always true off Linux: without the change time a same-size
// rewrite with the modification time restored shows only in the content.
func (s fileStamp) racy(now time.Time) bool { return true }
