package pop3

import (
	"net"
	"syscall"
	"unsafe"
)

func init() { unsent = outq }

// outq returns how many octets written to c the kernel still holds, not
// yet taken by the client (TIOCOUTQ, alias SIOCOUTQ, on a TCP socket), or
// -1 where it cannot tell.
func outq(c net.Conn) int64 {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	n := int32(-1)
	_ = rc.Control(func(fd uintptr) {
		var v int32
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&v))); e == 0 {
			n = v
		}
	})
	return int64(n)
}
