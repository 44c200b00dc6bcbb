package db

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrBackupNotSQLite is returned for a PostgreSQL database, which
// pg_dump backs up.
var ErrBackupNotSQLite = errors.New("wxgate backup copies SQLite databases; back up PostgreSQL with pg_dump -Fc (see docs/operations.md) — PostgreSQL 请使用 pg_dump 备份")

// ErrBackupExists is returned when the backup file is there already.
var ErrBackupExists = errors.New("the backup file exists already; choose another name or pass --force — 备份文件已存在：请换一个文件名，或加 --force 覆盖")

// BackupSQLite writes a consistent copy of a SQLite database to path while
// it is in use (VACUUM INTO reads one snapshot; writers carry on), checks
// the copy's integrity, and only then puts it in place: a failed backup
// never leaves a partial file under the name asked for.
func (db *DB) BackupSQLite(ctx context.Context, path string, overwrite bool) (size int64, err error) {
	if db.Dialect != SQLite {
		return 0, ErrBackupNotSQLite
	}
	if path, err = filepath.Abs(path); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Stat(path); err == nil && !overwrite {
		return 0, ErrBackupExists
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	// VACUUM INTO refuses an existing file, even an empty one.
	if err := os.Remove(tmpName); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmpName)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmpName); err != nil {
		return 0, fmt.Errorf("backup: copying the database: %w", err)
	}
	copyDB, err := Open(ctx, "sqlite://"+filepath.ToSlash(tmpName))
	if err != nil {
		return 0, fmt.Errorf("backup: opening the copy: %w", err)
	}
	var check string
	err = copyDB.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check)
	copyDB.Close()
	if err != nil {
		return 0, fmt.Errorf("backup: checking the copy: %w", err)
	}
	if check != "ok" {
		return 0, fmt.Errorf("backup: the copy fails its integrity check: %s", check)
	}
	// Open leaves WAL files beside the copy; they are empty after Close.
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(tmpName + suffix)
	}
	info, err := os.Stat(tmpName)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return info.Size(), nil
}
