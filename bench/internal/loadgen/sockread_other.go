//go:build !linux

package loadgen

import "net"

// socketReader is the source of a connection's bufio.Reader; it also sends
// the request, just before the first read of its answer. (On Linux it
// saves system calls and scheduler work.)
type socketReader struct {
	conn    net.Conn
	pending []byte // the request, still to be written
}

func (s *socketReader) reset(conn net.Conn) error {
	s.conn, s.pending = conn, nil
	return nil
}

func (s *socketReader) Read(p []byte) (int, error) {
	if len(s.pending) > 0 {
		_, err := s.conn.Write(s.pending)
		s.pending = nil
		if err != nil {
			return 0, err
		}
	}
	return s.conn.Read(p)
}
