package wechat

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// Media (临时素材) and material (永久素材).

// Media types WeChat stores.
const (
	MediaImage = "image"
	MediaVoice = "voice"
	MediaVideo = "video"
	MediaThumb = "thumb"
	// MediaNewsImage is an image for an article's body or cover
	// (media/uploadimg): WeChat answers a URL, kept for good, not a media_id.
	MediaNewsImage = "news_image"
)

// MediaUpload is one file to upload. Title and Introduction describe a
// permanent video (WeChat requires them there) and are ignored otherwise.
type MediaUpload struct {
	Type         string
	FileName     string
	Data         []byte
	Title        string
	Introduction string
}

// UploadedMedia is WeChat's answer to an upload. A thumb's id comes back
// as thumb_media_id on media/upload; MediaID holds it either way.
type UploadedMedia struct {
	Type         string `json:"type"`
	MediaID      string `json:"media_id"`
	ThumbMediaID string `json:"thumb_media_id"`
	CreatedAt    Int64  `json:"created_at"`
	URL          string `json:"url"`
}

// Download is a file WeChat answered with instead of JSON.
type Download struct {
	Data        []byte
	ContentType string
	FileName    string
}

// MaterialCount is the answer of material/get_materialcount.
type MaterialCount struct {
	Voice Int64 `json:"voice_count"`
	Video Int64 `json:"video_count"`
	Image Int64 `json:"image_count"`
	News  Int64 `json:"news_count"`
}

// multipartMedia encodes the upload as the form WeChat reads: the file in
// the part "media", a permanent video's description in "description".
func multipartMedia(u MediaUpload, withDescription bool) ([]byte, string, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	h := make(textproto.MIMEHeader)
	name := u.FileName
	if name == "" {
		name = u.Type
	}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="media"; filename=%q; filelength=%d`, name, len(u.Data)))
	h.Set("Content-Type", contentTypeOf(name))
	part, err := w.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	if _, err := part.Write(u.Data); err != nil {
		return nil, "", err
	}
	if withDescription {
		desc, err := encodeJSON(map[string]string{"title": u.Title, "introduction": u.Introduction})
		if err != nil {
			return nil, "", err
		}
		if err := w.WriteField("description", strings.TrimSpace(string(desc))); err != nil {
			return nil, "", err
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

func contentTypeOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		if t := mime.TypeByExtension(strings.ToLower(name[i:])); t != "" {
			return t
		}
	}
	return "application/octet-stream"
}

func (c *Client) upload(ctx context.Context, path string, u MediaUpload, withDescription bool) (UploadedMedia, error) {
	body, ctype, err := multipartMedia(u, withDescription)
	if err != nil {
		return UploadedMedia{}, fmt.Errorf("wechat %s: encode upload: %w", path, err)
	}
	var out UploadedMedia
	var query url.Values
	if u.Type != MediaNewsImage {
		query = url.Values{"type": {u.Type}}
	}
	err = c.do(ctx, call{method: http.MethodPost, path: path, query: query, token: true,
		raw: body, contentType: ctype, once: true}, &out)
	if err != nil {
		return UploadedMedia{}, err
	}
	if out.MediaID == "" {
		out.MediaID = out.ThumbMediaID
	}
	return out, nil
}

// UploadMedia calls POST /cgi-bin/media/upload: a temporary file, kept by
// WeChat for 3 days.
func (c *Client) UploadMedia(ctx context.Context, u MediaUpload) (UploadedMedia, error) {
	return c.upload(ctx, "/cgi-bin/media/upload", u, false)
}

// UploadNewsImage calls POST /cgi-bin/media/uploadimg: an image for
// articles (JPG/PNG, at most 1 MB), answered with its URL.
func (c *Client) UploadNewsImage(ctx context.Context, fileName string, data []byte) (string, error) {
	out, err := c.upload(ctx, "/cgi-bin/media/uploadimg", MediaUpload{Type: MediaNewsImage, FileName: fileName, Data: data}, false)
	if err != nil {
		return "", err
	}
	return out.URL, nil
}

// AddMaterial calls POST /cgi-bin/material/add_material: a permanent file.
func (c *Client) AddMaterial(ctx context.Context, u MediaUpload) (UploadedMedia, error) {
	return c.upload(ctx, "/cgi-bin/material/add_material", u, u.Type == MediaVideo)
}

// DeleteMaterial calls POST /cgi-bin/material/del_material.
func (c *Client) DeleteMaterial(ctx context.Context, mediaID string) error {
	return c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/material/del_material", token: true,
		body: map[string]string{"media_id": mediaID}}, nil)
}

// MaterialCounts calls GET /cgi-bin/material/get_materialcount.
func (c *Client) MaterialCounts(ctx context.Context) (MaterialCount, error) {
	var out MaterialCount
	err := c.do(ctx, call{method: http.MethodGet, path: "/cgi-bin/material/get_materialcount", token: true}, &out)
	return out, err
}

// GetMedia calls GET /cgi-bin/media/get: a temporary file, such as the
// image or voice a follower sent. A video answers JSON with its URL, which
// is refused: WeChat answers it with a URL, not the file.
func (c *Client) GetMedia(ctx context.Context, mediaID string) (*Download, error) {
	var d Download
	err := c.do(ctx, call{method: http.MethodGet, path: "/cgi-bin/media/get", token: true,
		query: url.Values{"media_id": {mediaID}}}, &d)
	if err != nil {
		return nil, err
	}
	if d.Data == nil {
		return nil, fmt.Errorf("wechat /cgi-bin/media/get: WeChat answered JSON, not a file (a video is fetched by its URL)")
	}
	return &d, nil
}

func looksLikeJSON(raw []byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

// fileNameOf reads the filename of a Content-Disposition header.
func fileNameOf(h http.Header) string {
	if h == nil {
		return ""
	}
	_, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}
