package loadgen

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// socketReader is the source of a connection's bufio.Reader; it also sends
// the request, in the same step as the first read of its answer.
//
// Two things make a push cheaper here than through net.Conn:
//   - The request is written from within syscall.RawConn.Read, once the
//     poller is armed for the read, and the socket is read only when it is
//     readable. net.Conn would try a read at once, a system call bound to
//     fail with EAGAIN so soon after the request; and arming the poller
//     only after the write could miss the answer.
//   - The socket calls are raw system calls: they never block on a
//     non-blocking socket, and syscall.Syscall's notice to the scheduler
//     wakes the runtime's monitor thread at nearly every request when the
//     process idles between answers, as a load generator waiting for its
//     server does: a context switch on its CPU each time, which costs about
//     as much as building and checking the push.
type socketReader struct {
	conn    net.Conn
	raw     syscall.RawConn
	pending []byte // the request, still to be written
	onReady func(fd uintptr) bool

	// The current Read's buffer and outcome.
	buf []byte
	n   int
	err error
}

func (s *socketReader) reset(conn net.Conn) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no file descriptor", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	s.conn, s.raw, s.pending = conn, raw, nil
	if s.onReady == nil {
		s.onReady = s.ready // bound once: a method value allocates
	}
	return nil
}

func (s *socketReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.buf, s.n, s.err = p, 0, nil
	err := s.raw.Read(s.onReady)
	if err == nil && len(s.pending) > 0 && s.err == nil {
		// The send buffer was full: the rest of the request goes the
		// usual way, which waits for room, then the answer is read.
		_, err = s.conn.Write(s.pending)
		s.pending = nil
		if err == nil {
			err = s.raw.Read(s.onReady)
		}
	}
	s.buf = nil
	if err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	return s.n, s.err
}

// ready is the syscall.RawConn.Read callback: false waits until the socket
// is readable.
func (s *socketReader) ready(fd uintptr) bool {
	for len(s.pending) > 0 {
		n, err := socketCall(syscall.SYS_WRITE, fd, s.pending)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true // Read finishes the request
		case err != nil:
			s.pending = nil
			s.err = os.NewSyscallError("write", err)
			return true
		}
		s.pending = s.pending[n:]
		if len(s.pending) == 0 {
			return false // the answer cannot be there yet
		}
	}
	for {
		n, err := socketCall(syscall.SYS_READ, fd, s.buf)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			s.err = os.NewSyscallError("read", err)
		case n == 0:
			s.err = io.EOF
		}
		s.n = n
		return true
	}
}

// socketCall is read(2) or write(2) of p, which is not empty, on a
// non-blocking socket.
func socketCall(trap, fd uintptr, p []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
