//go:build !(linux && (amd64 || arm64))

package db

import "errors"

var errNoAsyncSync = errors.New("no asynchronous fsync on this system")

// fileSyncer is Linux-only (filesync_linux.go); elsewhere checkpoints use
// SQLite's own fsyncs.
type fileSyncer struct{}

func newFileSyncer() *fileSyncer { return nil }

func (*fileSyncer) sync(string) error { return errNoAsyncSync }

func (*fileSyncer) close() error { return nil }
