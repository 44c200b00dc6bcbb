//go:build linux && (amd64 || arm64)

package db

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileSyncer fsyncs files through Linux AIO (IOCB_CMD_FSYNC, Linux 4.18
// and later): io_submit hands the fsync to a kernel worker and returns, the
// kernel signals an eventfd when it is done, and the goroutine waits for
// that on Go's network poller, giving its processor to other goroutines
// meanwhile. A plain fsync would keep the processor for its whole length.
type fileSyncer struct {
	aioContext uintptr
	done       *os.File // the eventfd, non-blocking, so reads park on the poller
}

// iocb is struct iocb of linux/aio_abi.h, little-endian field order.
type iocb struct {
	data      uint64
	key       uint32
	rwFlags   uint32
	opcode    uint16
	reqPrio   int16
	fd        uint32
	buf       uint64
	nbytes    uint64
	offset    int64
	reserved2 uint64
	flags     uint32
	resFD     uint32
}

// ioEvent is struct io_event.
type ioEvent struct {
	data uint64
	obj  uint64
	res  int64
	res2 int64
}

const (
	iocbCmdFsync  = 2
	iocbFlagResFD = 1 << 0
)

// newFileSyncer returns nil where the kernel offers no AIO context or
// eventfd; callers then use the ordinary fsync.
func newFileSyncer() *fileSyncer {
	var aioContext uintptr
	if _, _, errno := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&aioContext)), 0); errno != 0 {
		return nil
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Syscall(unix.SYS_IO_DESTROY, aioContext, 0, 0)
		return nil
	}
	return &fileSyncer{aioContext: aioContext, done: os.NewFile(uintptr(efd), "aio-fsync-eventfd")}
}

// sync fsyncs the file at path. It fails without syncing when the kernel
// refuses the submission (a kernel or file system without asynchronous
// fsync), so that the caller can fall back to the ordinary one.
func (s *fileSyncer) sync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var submitErr error
	if err := conn.Control(func(fd uintptr) {
		request := iocb{opcode: iocbCmdFsync, fd: uint32(fd), flags: iocbFlagResFD, resFD: uint32(s.done.Fd())}
		requests := [1]*iocb{&request}
		n, _, errno := unix.Syscall(unix.SYS_IO_SUBMIT, s.aioContext, 1, uintptr(unsafe.Pointer(&requests[0])))
		switch {
		case errno != 0:
			submitErr = fmt.Errorf("io_submit fsync: %w", errno)
		case n != 1:
			submitErr = fmt.Errorf("io_submit fsync took %d requests", n)
		}
	}); err != nil {
		return err
	}
	if submitErr != nil {
		return submitErr
	}
	// The eventfd counts completions; one fsync is outstanding at a time.
	var counter [8]byte
	if _, err := s.done.Read(counter[:]); err != nil {
		return fmt.Errorf("waiting for the fsync: %w", err)
	}
	var event ioEvent
	timeout := unix.Timespec{}
	n, _, errno := unix.Syscall6(unix.SYS_IO_GETEVENTS, s.aioContext, 1, 1, uintptr(unsafe.Pointer(&event)), uintptr(unsafe.Pointer(&timeout)), 0)
	switch {
	case errno != 0:
		return fmt.Errorf("io_getevents: %w", errno)
	case n != 1:
		return fmt.Errorf("io_getevents found no finished fsync")
	case event.res < 0:
		return fmt.Errorf("fsync %s: %w", path, unix.Errno(-event.res))
	}
	return nil
}

func (s *fileSyncer) close() error {
	s.done.Close()
	if _, _, errno := unix.Syscall(unix.SYS_IO_DESTROY, s.aioContext, 0, 0); errno != 0 {
		return fmt.Errorf("io_destroy: %w", errno)
	}
	return nil
}
