package api

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/wxgate/wxgate/internal/media"
	"github.com/wxgate/wxgate/internal/problem"
)

// MediaLibrary uploads and fetches media (*media.Library).
type MediaLibrary interface {
	Upload(ctx context.Context, u media.Upload) (media.Item, error)
	List(ctx context.Context, account string) ([]media.Item, error)
	Delete(ctx context.Context, account, mediaID string) error
	Fetch(ctx context.Context, account, mediaID string) (media.Download, error)
	Downloaded(ctx context.Context, account, mediaID string) (media.Download, error)
}

var errNoMedia = &problem.Error{Kind: problem.Unavailable, Code: "not_configured",
	Message: "media are not available on this server — 此服务未启用素材功能"}

// withMedia answers 503 when the server has no media library, and writes
// the error f returns.
func (h *handler) withMedia(f func(w http.ResponseWriter, r *http.Request, lib MediaLibrary) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opts.Media == nil {
			h.writeError(w, r, errNoMedia)
			return
		}
		if err := f(w, r, h.opts.Media); err != nil {
			h.writeError(w, r, err)
		}
	}
}

// maxUploadBody bounds an upload: the largest file WeChat takes (10 MB)
// with room for the form around it.
const maxUploadBody = 11 << 20

// uploadMedia is POST /api/v1/media (scope admin), a multipart form:
// account, type (image, voice, video, thumb), permanent (true/false),
// title and introduction (a permanent video), file.
func (h *handler) uploadMedia(w http.ResponseWriter, r *http.Request, lib MediaLibrary) error {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "multipart/form-data" {
		return errBadRequest("multipart_required", "send the file as multipart/form-data with the part \"file\" — 请用 multipart/form-data 上传，文件字段名为 file")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUploadBody)
	if err := r.ParseMultipartForm(maxUploadBody); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return problem.Newf(problem.TooLarge, "media_too_large", "file", "the upload is over 10 MB, WeChat's largest file — 文件超过 10 MB（微信素材上限）")
		}
		return errBadRequest("invalid_multipart", "the form could not be read: "+err.Error()+" — 无法解析上传表单")
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	account := r.FormValue("account")
	if err := h.tagAccount(account); err != nil {
		return err
	}
	f, header, err := r.FormFile("file")
	if err != nil {
		return problem.Invalidf("file_required", "file", "the form has no part \"file\" — 表单缺少文件字段 file")
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	permanent, _ := strconv.ParseBool(r.FormValue("permanent"))
	item, err := lib.Upload(r.Context(), media.Upload{Account: account, Type: r.FormValue("type"), Permanent: permanent,
		Name: header.Filename, Data: data, Title: r.FormValue("title"), Introduction: r.FormValue("introduction")})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if item.Reused {
		status = http.StatusOK
	}
	writeJSON(w, status, item)
	return nil
}

// listMedia is GET /api/v1/media?account= (scope read).
func (h *handler) listMedia(w http.ResponseWriter, r *http.Request, lib MediaLibrary) error {
	account := r.URL.Query().Get("account")
	if err := h.tagAccount(account); err != nil {
		return err
	}
	items, err := lib.List(r.Context(), account)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": account, "media": items})
	return nil
}

// deleteMedia is DELETE /api/v1/media/{media_id}?account= (scope admin).
func (h *handler) deleteMedia(w http.ResponseWriter, r *http.Request, lib MediaLibrary) error {
	account := r.URL.Query().Get("account")
	if err := h.tagAccount(account); err != nil {
		return err
	}
	if err := lib.Delete(r.Context(), account, r.PathValue("media_id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// fetchMedia is POST /api/v1/media/downloads {"account","media_id"} (scope
// send): a follower's file is fetched from WeChat into the database.
func (h *handler) fetchMedia(w http.ResponseWriter, r *http.Request, lib MediaLibrary) error {
	var in struct {
		Account string `json:"account"`
		MediaID string `json:"media_id"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if err := h.tagAccount(in.Account); err != nil {
		return err
	}
	if in.MediaID == "" {
		return problem.Invalidf("media_id_required", "media_id", "name the file's media_id (the MediaId of an image or voice message) — 请填写 media_id")
	}
	d, err := lib.Fetch(r.Context(), in.Account, in.MediaID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": d.Account, "media_id": d.MediaID, "content_type": d.ContentType,
		"file_name": d.FileName, "size": d.Size, "fetched_at": d.FetchedAt,
		"download_url": "/api/v1/media/downloads/" + d.MediaID + "?account=" + d.Account})
	return nil
}

// downloadedMedia is GET /api/v1/media/downloads/{media_id}?account= (scope
// read): the file itself.
func (h *handler) downloadedMedia(w http.ResponseWriter, r *http.Request, lib MediaLibrary) error {
	account := r.URL.Query().Get("account")
	if err := h.tagAccount(account); err != nil {
		return err
	}
	d, err := lib.Downloaded(r.Context(), account, r.PathValue("media_id"))
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", d.ContentType)
	w.Header().Set("Content-Length", strconv.FormatInt(d.Size, 10))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if d.FileName != "" {
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": d.FileName}))
	}
	_, _ = w.Write(d.Data)
	return nil
}
