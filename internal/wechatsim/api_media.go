package wechatsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Temporary media (media/upload, media/get) and permanent material
// (material/add_material, get_material, del_material, get_materialcount,
// batchget_material), with WeChat's size and format limits.

// mediaFile is one stored file. Data is kept so media/get answers it and
// the phone page can show an image reply.
type mediaFile struct {
	MediaID      string    `json:"media_id"`
	Type         string    `json:"type"`
	Permanent    bool      `json:"permanent,omitempty"`
	Name         string    `json:"name"`
	ContentType  string    `json:"content_type"`
	Data         []byte    `json:"data"`
	CreatedAt    time.Time `json:"created_at"`
	URL          string    `json:"url,omitempty"`
	Title        string    `json:"title,omitempty"`
	Introduction string    `json:"introduction,omitempty"`
}

// tempMediaLifetime is how long WeChat keeps a temporary file.
const tempMediaLifetime = 72 * time.Hour

// maxMediaBody bounds an upload request: more than the largest file WeChat
// takes, so an oversized file is refused with its errcode, not cut.
const maxMediaBody = 24 << 20

var mediaContentTypes = map[string]string{
	"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "bmp": "image/bmp",
	"amr": "audio/amr", "mp3": "audio/mpeg", "mp4": "video/mp4",
}

// readUpload reads the multipart part "media" (41005 without it) and, for a
// permanent video, the "description" field.
func readUpload(c *apiCall) (name string, data []byte, desc string, apiErr *apiError) {
	_, params, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		return "", nil, "", wxErrf(41005, "media data missing")
	}
	form, err := multipart.NewReader(bytes.NewReader(c.body), params["boundary"]).ReadForm(maxMediaBody)
	if err != nil {
		return "", nil, "", wxErrf(41005, "media data missing")
	}
	defer func() { _ = form.RemoveAll() }()
	desc = strings.Join(form.Value["description"], "")
	files := form.File["media"]
	if len(files) == 0 {
		return "", nil, desc, wxErrf(41005, "media data missing")
	}
	f, err := files[0].Open()
	if err != nil {
		return "", nil, desc, wxErrf(41005, "media data missing")
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return "", nil, desc, wxErrf(41005, "media data missing")
	}
	return files[0].Filename, buf.Bytes(), desc, nil
}

// checkMedia applies the type's limits: 40004 for an unknown type, the
// type's size code, 40005 for a format the type does not take.
func checkMedia(typ string, data []byte) (format string, apiErr *apiError) {
	limit, ok := wechat.MediaLimits[typ]
	if !ok {
		return "", wxErrf(40004, "invalid media type")
	}
	if len(data) == 0 || len(data) > limit.MaxBytes {
		return "", wxErrf(limit.SizeCode, "invalid %s size", typ)
	}
	format = wechat.MediaFormat(data)
	if !slices.Contains(limit.Formats, format) {
		return "", wxErrf(40005, "invalid file type")
	}
	// WeChat does not document the errcode of a voice over 60 s; the
	// simulator answers the voice size code.
	if length, ok := wechat.VoiceLength(data); typ == wechat.MediaVoice && ok && length > wechat.MaxVoiceLength {
		return "", wxErrf(limit.SizeCode, "invalid voice size: longer than 60 s")
	}
	return format, nil
}

func (s *Simulator) storeUpload(c *apiCall, permanent bool) (*mediaFile, *apiError) {
	typ := c.query("type")
	if _, ok := wechat.MediaLimits[typ]; !ok {
		return nil, wxErrf(40004, "invalid media type")
	}
	name, data, desc, apiErr := readUpload(c)
	if apiErr != nil {
		return nil, apiErr
	}
	format, apiErr := checkMedia(typ, data)
	if apiErr != nil {
		return nil, apiErr
	}
	m := &mediaFile{MediaID: randomString(64, alphabetURL), Type: typ, Permanent: permanent, Name: name,
		ContentType: mediaContentTypes[format], Data: data, CreatedAt: c.now}
	if permanent && typ == "video" {
		var d struct {
			Title        string `json:"title"`
			Introduction string `json:"introduction"`
		}
		if desc == "" || json.Unmarshal([]byte(desc), &d) != nil || d.Title == "" {
			return nil, wxErrf(40007, "invalid media_id, a video needs a description with its title")
		}
		m.Title, m.Introduction = d.Title, d.Introduction
	}
	if permanent && typ == "image" {
		m.URL = "http://mmbiz.qpic.cn/mmbiz_" + format + "/" + m.MediaID[:32] + "/0?wx_fmt=" + format
	}
	if c.app.Media == nil {
		c.app.Media = map[string]*mediaFile{}
	}
	c.app.Media[m.MediaID] = m
	return m, nil
}

// handleUploadNewsImage is POST /cgi-bin/media/uploadimg: an image for
// articles, JPG or PNG of at most 1 MB (40009 larger, 40005 another
// format), answered with a URL and kept for good; it is no material
// (get_materialcount does not count it).
func (s *Simulator) handleUploadNewsImage(c *apiCall) (any, *apiError) {
	name, data, _, apiErr := readUpload(c)
	if apiErr != nil {
		return nil, apiErr
	}
	limit := wechat.NewsImageLimit
	if len(data) == 0 || len(data) > limit.MaxBytes {
		return nil, wxErrf(limit.SizeCode, "invalid image size")
	}
	format := wechat.MediaFormat(data)
	if !slices.Contains(limit.Formats, format) {
		return nil, wxErrf(40005, "invalid file type")
	}
	m := &mediaFile{MediaID: randomString(64, alphabetURL), Type: wechat.MediaNewsImage, Permanent: true, Name: name,
		ContentType: mediaContentTypes[format], Data: data, CreatedAt: c.now}
	m.URL = "http://mmbiz.qpic.cn/mmbiz_" + format + "/" + m.MediaID[:32] + "/0?wx_fmt=" + format
	if c.app.Media == nil {
		c.app.Media = map[string]*mediaFile{}
	}
	c.app.Media[m.MediaID] = m
	return map[string]string{"url": m.URL}, nil
}

// handleMediaUpload is POST /cgi-bin/media/upload?type=: a thumb answers
// thumb_media_id, the others media_id.
func (s *Simulator) handleMediaUpload(c *apiCall) (any, *apiError) {
	m, apiErr := s.storeUpload(c, false)
	if apiErr != nil {
		return nil, apiErr
	}
	out := map[string]any{"type": m.Type, "created_at": m.CreatedAt.Unix()}
	if m.Type == "thumb" {
		out["thumb_media_id"] = m.MediaID
	} else {
		out["media_id"] = m.MediaID
	}
	return out, nil
}

// handleAddMaterial is POST /cgi-bin/material/add_material?type=.
func (s *Simulator) handleAddMaterial(c *apiCall) (any, *apiError) {
	m, apiErr := s.storeUpload(c, true)
	if apiErr != nil {
		return nil, apiErr
	}
	out := map[string]any{"media_id": m.MediaID}
	if m.URL != "" {
		out["url"] = m.URL
	}
	return out, nil
}

// liveMedia returns a file that is still kept: a temporary one for 3 days.
func (a *appState) liveMedia(id string, now time.Time) *mediaFile {
	m := a.Media[id]
	if m == nil || !m.Permanent && now.Sub(m.CreatedAt) >= tempMediaLifetime {
		return nil
	}
	return m
}

func fileAnswer(m *mediaFile) rawResponse {
	return rawResponse{status: http.StatusOK, contentType: m.ContentType, body: m.Data,
		header: http.Header{"Content-Disposition": {fmt.Sprintf(`attachment; filename="%s"`, m.Name)}}}
}

// handleMediaGet is GET /cgi-bin/media/get?media_id=: the file, or for a
// video its URL; 40007 for an unknown or expired id.
func (s *Simulator) handleMediaGet(c *apiCall) (any, *apiError) {
	m := c.app.liveMedia(c.query("media_id"), c.now)
	if m == nil || m.Permanent {
		return nil, wxErr(40007)
	}
	if m.Type == "video" {
		return map[string]string{"video_url": "http://vweixinf.tc.qq.com/" + m.MediaID + ".mp4"}, nil
	}
	return fileAnswer(m), nil
}

type mediaIDBody struct {
	MediaID string `json:"media_id"`
}

// handleGetMaterial is POST /cgi-bin/material/get_material {"media_id"}.
func (s *Simulator) handleGetMaterial(c *apiCall) (any, *apiError) {
	var req mediaIDBody
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	m := c.app.liveMedia(req.MediaID, c.now)
	if m == nil || !m.Permanent {
		return nil, wxErr(40007)
	}
	if m.Type == "video" {
		return map[string]string{"title": m.Title, "description": m.Introduction,
			"down_url": "http://www.qq.com/" + m.MediaID + ".mp4"}, nil
	}
	return fileAnswer(m), nil
}

// handleDelMaterial is POST /cgi-bin/material/del_material {"media_id"}.
func (s *Simulator) handleDelMaterial(c *apiCall) (any, *apiError) {
	var req mediaIDBody
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	m := c.app.Media[req.MediaID]
	if m == nil || !m.Permanent {
		return nil, wxErr(40007)
	}
	delete(c.app.Media, req.MediaID)
	return okAnswer, nil
}

// handleMaterialCount is GET /cgi-bin/material/get_materialcount.
func (s *Simulator) handleMaterialCount(c *apiCall) (any, *apiError) {
	counts := map[string]int{"voice_count": 0, "video_count": 0, "image_count": 0, "news_count": 0}
	for _, m := range c.app.Media {
		if m.Permanent && m.Type != "thumb" && m.Type != wechat.MediaNewsImage {
			counts[m.Type+"_count"]++
		}
	}
	return counts, nil
}

// handleBatchGetMaterial is POST /cgi-bin/material/batchget_material
// {"type","offset","count"}: newest first, count 1–20.
func (s *Simulator) handleBatchGetMaterial(c *apiCall) (any, *apiError) {
	var req struct {
		Type   string      `json:"type"`
		Offset json.Number `json:"offset"`
		Count  json.Number `json:"count"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if _, ok := wechat.MediaLimits[req.Type]; !ok || req.Type == "thumb" {
		return nil, wxErrf(40004, "invalid media type")
	}
	offset, _ := strconv.Atoi(req.Offset.String())
	count, err := strconv.Atoi(req.Count.String())
	if err != nil || count < 1 || count > 20 || offset < 0 {
		return nil, wxErrf(40007, "invalid media_id, count must be 1 to 20")
	}
	var list []*mediaFile
	for _, m := range c.app.Media {
		if m.Permanent && m.Type == req.Type {
			list = append(list, m)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if !list[i].CreatedAt.Equal(list[j].CreatedAt) {
			return list[i].CreatedAt.After(list[j].CreatedAt)
		}
		return list[i].MediaID < list[j].MediaID
	})
	type item struct {
		MediaID    string `json:"media_id"`
		Name       string `json:"name"`
		UpdateTime int64  `json:"update_time"`
		URL        string `json:"url"`
	}
	items := []item{}
	for i := offset; i < len(list) && len(items) < count; i++ {
		items = append(items, item{list[i].MediaID, list[i].Name, list[i].CreatedAt.Unix(), list[i].URL})
	}
	return map[string]any{"total_count": len(list), "item_count": len(items), "item": items}, nil
}

// userMedia stores what a follower's image or voice message carries, so
// that media/get can fetch it as from WeChat. Callers hold s.mu.
func (a *appState) userMedia(id, typ string, now time.Time) {
	if a.Media == nil {
		a.Media = map[string]*mediaFile{}
	}
	m := &mediaFile{MediaID: id, Type: typ, CreatedAt: now}
	switch typ {
	case "image":
		m.Name, m.ContentType, m.Data = id[:16]+".png", "image/png", samplePNG
	case "voice":
		m.Name, m.ContentType, m.Data = id[:16]+".amr", "audio/amr", sampleAMR
	default:
		return
	}
	a.Media[id] = m
}

// samplePNG is a 1×1 green image; sampleAMR an AMR header with one silent frame.
var (
	samplePNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde" +
		"\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")
	sampleAMR = append([]byte("#!AMR\n"), 0x3C, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
)

// Media returns a stored file of an app (uploaded, or sent by a
// follower), for tests and the phone page; ok is false for an unknown or
// expired id.
func (s *Simulator) Media(appID, mediaID string) (data []byte, name string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.st.Apps[appID]
	if app == nil {
		return nil, "", false
	}
	m := app.liveMedia(mediaID, s.now())
	if m == nil {
		return nil, "", false
	}
	return append([]byte(nil), m.Data...), m.Name, true
}
