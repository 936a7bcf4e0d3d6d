package server

import "syscall"

// syscallEMFILE is "too many open files": accept backs off and retries.
var syscallEMFILE = syscall.EMFILE
