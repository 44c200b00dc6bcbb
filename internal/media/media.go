// Package media uploads files to WeChat (temporary media and permanent
// material), remembers them by content hash so the same bytes go up once,
// keeps the temporary files that reply rules name fresh before WeChat's 3
// days run out, and fetches the files followers send into the database.
package media

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Storage kinds.
const (
	Temporary = "temporary"
	Permanent = "permanent"
)

// TempLifetime is how long WeChat keeps a temporary file.
const TempLifetime = 72 * time.Hour

// renewAhead is how long before its expiry a file-backed temporary media
// is uploaded again: the renewal job runs hourly, so a missed run or two
// still leaves time.
const renewAhead = 12 * time.Hour

// DefaultMaxDownload bounds a follower's file fetched from WeChat.
const DefaultMaxDownload = 10 << 20

// Clients gives the API client of an account (*token.Registry).
type Clients interface {
	Client(account string) (*wechat.Client, bool)
}

// Item is one uploaded file.
type Item struct {
	ID         int64      `json:"id"`
	Account    string     `json:"account"`
	Storage    string     `json:"storage"`
	Type       string     `json:"type"`
	SHA256     string     `json:"sha256"`
	Name       string     `json:"name"`
	Size       int64      `json:"size"`
	SourcePath string     `json:"source_path,omitempty"`
	MediaID    string     `json:"media_id"`
	URL        string     `json:"url,omitempty"`
	UploadedAt time.Time  `json:"uploaded_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	// Reused is true when the same bytes were already uploaded and WeChat
	// was not called.
	Reused bool `json:"reused,omitempty"`
}

// Upload is a file to put at WeChat.
type Upload struct {
	Account   string
	Type      string // image, voice, video, thumb
	Permanent bool
	Name      string
	Data      []byte
	// Title and Introduction describe a permanent video (required there).
	Title, Introduction string
	// SourcePath is the local file the data was read from; a temporary
	// upload with one is renewed before it expires.
	SourcePath string
}

// Options configure a Library.
type Options struct {
	DB      *db.DB
	Clients Clients
	Now     func() time.Time
	Logger  *slog.Logger
	// MaxDownload bounds Fetch; 0 means DefaultMaxDownload.
	MaxDownload int64
}

// Library is the media service of every account.
type Library struct {
	opts Options

	mu    sync.Mutex
	files map[fileKey]fileEntry // reply-rule files already resolved
}

type fileKey struct{ account, typ, path string }

type fileEntry struct {
	modTime time.Time
	size    int64
	mediaID string
	expires time.Time // zero for permanent
}

// New returns a Library.
func New(opts Options) *Library {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxDownload <= 0 {
		opts.MaxDownload = DefaultMaxDownload
	}
	return &Library{opts: opts, files: map[fileKey]fileEntry{}}
}

func (l *Library) client(account string) (*wechat.Client, error) {
	if l.opts.Clients != nil {
		if c, ok := l.opts.Clients.Client(account); ok {
			return c, nil
		}
	}
	return nil, problem.NotFoundf("account_not_found", "account",
		"no account %q with an app_secret is configured — 未配置账号 %q（或缺少 app_secret）", account, account)
}

// Upload checks the file against WeChat's rules, then uploads it unless
// the same bytes are already there (and, for a temporary file, not about
// to expire).
func (l *Library) Upload(ctx context.Context, u Upload) (Item, error) {
	if err := Check(u.Type, u.Data); err != nil {
		return Item{}, err
	}
	if u.Permanent && u.Type == wechat.MediaVideo && u.Title == "" {
		return Item{}, problem.Invalidf("video_title_required", "title",
			"a permanent video needs a title — 永久视频素材需要填写标题 title")
	}
	sum := sha256.Sum256(u.Data)
	hash := hex.EncodeToString(sum[:])
	storage := Temporary
	if u.Permanent || u.Type == wechat.MediaNewsImage {
		// An article image's URL is kept by WeChat for good.
		u.Permanent, storage = true, Permanent
	}
	now := l.opts.Now()
	if it, err := l.find(ctx, u.Account, storage, u.Type, hash); err == nil {
		if it.ExpiresAt == nil || it.ExpiresAt.After(now.Add(renewAhead)) {
			if u.SourcePath != "" && it.SourcePath == "" {
				_, _ = l.opts.DB.ExecContext(ctx, `UPDATE media_files SET source_path = $1 WHERE id = $2`, u.SourcePath, it.ID)
				it.SourcePath = u.SourcePath
			}
			it.Reused = true
			return it, nil
		}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return Item{}, err
	}
	c, err := l.client(u.Account)
	if err != nil {
		return Item{}, err
	}
	req := wechat.MediaUpload{Type: u.Type, FileName: u.Name, Data: u.Data, Title: u.Title, Introduction: u.Introduction}
	var up wechat.UploadedMedia
	switch {
	case u.Type == wechat.MediaNewsImage:
		up.URL, err = c.UploadNewsImage(ctx, u.Name, u.Data)
	case u.Permanent:
		up, err = c.AddMaterial(ctx, req)
	default:
		up, err = c.UploadMedia(ctx, req)
	}
	if err != nil {
		return Item{}, explainUpload(u, err)
	}
	it := Item{Account: u.Account, Storage: storage, Type: u.Type, SHA256: hash, Name: u.Name, Size: int64(len(u.Data)),
		SourcePath: u.SourcePath, MediaID: up.MediaID, URL: up.URL, UploadedAt: db.Timestamp(now)}
	var expires sql.NullTime
	if !u.Permanent {
		at := it.UploadedAt.Add(TempLifetime)
		if up.CreatedAt > 0 {
			at = db.Timestamp(time.Unix(int64(up.CreatedAt), 0).Add(TempLifetime))
		}
		it.ExpiresAt, expires = &at, sql.NullTime{Time: at, Valid: true}
	}
	err = l.opts.DB.QueryRowContext(ctx, `INSERT INTO media_files
		(account, storage, type, sha256, name, size, source_path, media_id, url, uploaded_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (account, storage, type, sha256) DO UPDATE SET name = excluded.name, size = excluded.size,
			source_path = CASE WHEN excluded.source_path = '' THEN media_files.source_path ELSE excluded.source_path END,
			media_id = excluded.media_id, url = excluded.url, uploaded_at = excluded.uploaded_at, expires_at = excluded.expires_at
		RETURNING id, source_path`,
		it.Account, it.Storage, it.Type, it.SHA256, it.Name, it.Size, it.SourcePath, it.MediaID, it.URL, it.UploadedAt, expires).
		Scan(&it.ID, &it.SourcePath)
	if err != nil {
		return Item{}, fmt.Errorf("media: recording the upload of %s: %w", u.Name, err)
	}
	l.opts.Logger.LogAttrs(ctx, slog.LevelInfo, "media: uploaded", slog.String("account", u.Account),
		slog.String("storage", storage), slog.String("type", u.Type), slog.String("name", u.Name), slog.Int64("size", it.Size))
	return it, nil
}

// explainUpload words WeChat's refusal of a file.
func explainUpload(u Upload, err error) error {
	var apiErr *wechat.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("media: uploading %s: %w", u.Name, err)
	}
	switch apiErr.Code {
	case 40004, 40005, 40006, 40009, 40010, 40011, 40012, 41005:
		return &problem.Error{Kind: problem.Unprocessable, Code: "media_refused", Field: "file", Err: err,
			Message: fmt.Sprintf("WeChat refused the file (errcode %d) — 微信拒绝了这个文件（错误码 %d）：%s", apiErr.Code, apiErr.Code, apiErr.Msg)}
	}
	return fmt.Errorf("media: uploading %s: %w", u.Name, err)
}

const itemColumns = `id, account, storage, type, sha256, name, size, source_path, media_id, url, uploaded_at, expires_at`

func scanItem(sc interface{ Scan(...any) error }) (Item, error) {
	var (
		it      Item
		expires sql.NullTime
	)
	if err := sc.Scan(&it.ID, &it.Account, &it.Storage, &it.Type, &it.SHA256, &it.Name, &it.Size, &it.SourcePath,
		&it.MediaID, &it.URL, &it.UploadedAt, &expires); err != nil {
		return Item{}, err
	}
	it.UploadedAt = it.UploadedAt.UTC()
	if expires.Valid {
		at := expires.Time.UTC()
		it.ExpiresAt = &at
	}
	return it, nil
}

func (l *Library) find(ctx context.Context, account, storage, typ, hash string) (Item, error) {
	row := l.opts.DB.QueryRowContext(ctx, `SELECT `+itemColumns+` FROM media_files
		WHERE account = $1 AND storage = $2 AND type = $3 AND sha256 = $4`, account, storage, typ, hash)
	it, err := scanItem(row)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Item{}, fmt.Errorf("media: looking up a file: %w", err)
	}
	return it, err
}

// List returns an account's uploads, newest first. Expired temporary
// files are listed too: ExpiresAt says so.
func (l *Library) List(ctx context.Context, account string) ([]Item, error) {
	rows, err := l.opts.DB.QueryContext(ctx, `SELECT `+itemColumns+` FROM media_files WHERE account = $1
		ORDER BY uploaded_at DESC, id DESC`, account)
	if err != nil {
		return nil, fmt.Errorf("media: list: %w", err)
	}
	defer rows.Close()
	out := []Item{}
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("media: list: %w", err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// ErrNotFound is the cause when no upload has the media_id.
var ErrNotFound = errors.New("media: not found")

// Delete removes an upload: a permanent one at WeChat too (WeChat has no
// delete for temporary media, which simply expires).
func (l *Library) Delete(ctx context.Context, account, mediaID string) error {
	row := l.opts.DB.QueryRowContext(ctx, `SELECT `+itemColumns+` FROM media_files WHERE account = $1 AND media_id = $2`, account, mediaID)
	it, err := scanItem(row)
	if errors.Is(err, sql.ErrNoRows) {
		return &problem.Error{Kind: problem.NotFound, Code: "media_not_found", Field: "media_id", Err: ErrNotFound,
			Message: fmt.Sprintf("no upload with media_id %s — 没有这个素材 %s", mediaID, mediaID)}
	}
	if err != nil {
		return fmt.Errorf("media: delete: %w", err)
	}
	if it.Storage == Permanent {
		c, err := l.client(account)
		if err != nil {
			return err
		}
		var apiErr *wechat.APIError
		// 40007: already gone at WeChat; forgetting it here is what is left.
		if err := c.DeleteMaterial(ctx, mediaID); err != nil && !(errors.As(err, &apiErr) && apiErr.Code == 40007) {
			return fmt.Errorf("media: deleting %s at WeChat: %w", mediaID, err)
		}
	}
	if _, err := l.opts.DB.ExecContext(ctx, `DELETE FROM media_files WHERE id = $1`, it.ID); err != nil {
		return fmt.Errorf("media: delete: %w", err)
	}
	l.forget(account, mediaID)
	return nil
}

func (l *Library) forget(account, mediaID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, e := range l.files {
		if k.account == account && e.mediaID == mediaID {
			delete(l.files, k)
		}
	}
}

// ForFile returns a media_id for a local file named by a reply rule or a
// message (for a news_image, the URL WeChat gave it): uploaded as
// temporary media when its bytes are not at WeChat yet (or expire within
// renewAhead). Resolved files are remembered by
// path, size and modification time, so answering a push reads the disk
// once per change of the file.
func (l *Library) ForFile(ctx context.Context, account, typ, path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", problem.Invalidf("media_file_unreadable", "file", "cannot read %s: %v — 无法读取文件 %s", path, err, path)
	}
	key := fileKey{account, typ, abs}
	now := l.opts.Now()
	l.mu.Lock()
	e, ok := l.files[key]
	l.mu.Unlock()
	if ok && e.modTime.Equal(st.ModTime()) && e.size == st.Size() && (e.expires.IsZero() || e.expires.After(now.Add(renewAhead))) {
		return e.mediaID, nil
	}
	data, err := os.ReadFile(abs)
	if err != nil {
		return "", problem.Invalidf("media_file_unreadable", "file", "cannot read %s: %v — 无法读取文件 %s", path, err, path)
	}
	it, err := l.Upload(ctx, Upload{Account: account, Type: typ, Name: filepath.Base(abs), Data: data, SourcePath: abs})
	if err != nil {
		return "", err
	}
	ref := it.MediaID
	if typ == wechat.MediaNewsImage {
		ref = it.URL
	}
	entry := fileEntry{modTime: st.ModTime(), size: st.Size(), mediaID: ref}
	if it.ExpiresAt != nil {
		entry.expires = *it.ExpiresAt
	}
	l.mu.Lock()
	l.files[key] = entry
	l.mu.Unlock()
	return ref, nil
}

// Renew uploads again every file-backed temporary media that expires
// within renewAhead, reading its file anew; it returns how many it
// renewed. A file that is gone is logged and left to expire.
func (l *Library) Renew(ctx context.Context) (int, error) {
	rows, err := l.opts.DB.QueryContext(ctx, `SELECT `+itemColumns+` FROM media_files
		WHERE storage = $1 AND source_path <> '' AND expires_at < $2 ORDER BY expires_at`,
		Temporary, db.Timestamp(l.opts.Now().Add(renewAhead)))
	if err != nil {
		return 0, fmt.Errorf("media: renew: %w", err)
	}
	var due []Item
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("media: renew: %w", err)
		}
		due = append(due, it)
	}
	rows.Close()
	renewed := 0
	var errs []error
	for _, it := range due {
		data, err := os.ReadFile(it.SourcePath)
		if err != nil {
			l.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "media: a file to renew cannot be read; it will expire",
				slog.String("account", it.Account), slog.String("path", it.SourcePath), slog.String("error", err.Error()))
			continue
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != it.SHA256 {
			// The file changed: its new bytes are uploaded when next
			// used; the old upload is left to expire, renewed no more.
			if _, err := l.opts.DB.ExecContext(ctx, `UPDATE media_files SET source_path = '' WHERE id = $1`, it.ID); err != nil {
				errs = append(errs, fmt.Errorf("media: renew: %w", err))
			}
			continue
		}
		if _, err := l.Upload(ctx, Upload{Account: it.Account, Type: it.Type, Name: it.Name, Data: data, SourcePath: it.SourcePath}); err != nil {
			errs = append(errs, err)
			continue
		}
		l.forget(it.Account, it.MediaID)
		renewed++
	}
	return renewed, errors.Join(errs...)
}

// Download is a follower's file kept in the database.
type Download struct {
	Account     string    `json:"account"`
	MediaID     string    `json:"media_id"`
	ContentType string    `json:"content_type"`
	FileName    string    `json:"file_name,omitempty"`
	Size        int64     `json:"size"`
	FetchedAt   time.Time `json:"fetched_at"`
	Data        []byte    `json:"-"`
}

// Fetch downloads a file a follower sent (an image or voice message's
// MediaId) from WeChat into the database, refusing one over the size cap;
// a file fetched before is answered from the database.
func (l *Library) Fetch(ctx context.Context, account, mediaID string) (Download, error) {
	if d, err := l.Downloaded(ctx, account, mediaID); err == nil {
		return d, nil
	} else if problem.CodeOf(err) != "media_not_fetched" {
		return Download{}, err
	}
	c, err := l.client(account)
	if err != nil {
		return Download{}, err
	}
	got, err := c.GetMedia(ctx, mediaID)
	if err != nil {
		var apiErr *wechat.APIError
		if errors.As(err, &apiErr) && apiErr.Code == 40007 {
			return Download{}, &problem.Error{Kind: problem.NotFound, Code: "media_expired", Field: "media_id", Err: err,
				Message: "WeChat no longer has this file (a follower's file is kept 3 days) — 微信已不再保存这个文件（粉丝发送的文件只保留 3 天）"}
		}
		return Download{}, fmt.Errorf("media: fetching %s: %w", mediaID, err)
	}
	if int64(len(got.Data)) > l.opts.MaxDownload {
		return Download{}, problem.Newf(problem.TooLarge, "media_too_large", "media_id",
			"the file is %d bytes, over the %d-byte cap (media.download_max_bytes) — 文件 %d 字节，超过上限 %d 字节",
			len(got.Data), l.opts.MaxDownload, len(got.Data), l.opts.MaxDownload)
	}
	d := Download{Account: account, MediaID: mediaID, ContentType: got.ContentType, FileName: got.FileName,
		Size: int64(len(got.Data)), FetchedAt: db.Timestamp(l.opts.Now()), Data: got.Data}
	if d.ContentType == "" {
		d.ContentType = "application/octet-stream"
	}
	if _, err := l.opts.DB.ExecContext(ctx, `INSERT INTO media_downloads (account, media_id, content_type, file_name, size, data, fetched_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account, media_id) DO NOTHING`,
		d.Account, d.MediaID, d.ContentType, d.FileName, d.Size, d.Data, d.FetchedAt); err != nil {
		return Download{}, fmt.Errorf("media: storing %s: %w", mediaID, err)
	}
	return d, nil
}

// Downloaded returns a file fetched before.
func (l *Library) Downloaded(ctx context.Context, account, mediaID string) (Download, error) {
	d := Download{Account: account, MediaID: mediaID}
	err := l.opts.DB.QueryRowContext(ctx, `SELECT content_type, file_name, size, data, fetched_at FROM media_downloads
		WHERE account = $1 AND media_id = $2`, account, mediaID).Scan(&d.ContentType, &d.FileName, &d.Size, &d.Data, &d.FetchedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Download{}, problem.NotFoundf("media_not_fetched", "media_id",
			"the file %s has not been fetched from WeChat — 这个文件尚未从微信下载", mediaID)
	}
	if err != nil {
		return Download{}, fmt.Errorf("media: reading %s: %w", mediaID, err)
	}
	d.FetchedAt = d.FetchedAt.UTC()
	return d, nil
}
