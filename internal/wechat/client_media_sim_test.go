package wechat_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// A small real JPEG header is enough for WeChat's format check.
var jpegBytes = append([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F', 0}, bytes.Repeat([]byte{1}, 200)...)

// Uploads are checked like WeChat checks them, answered with ids that
// media/get fetches back, and a temporary file is gone after 3 days.
func TestSimMedia(t *testing.T) {
	b := setupSim(t)
	up, err := b.oa.UploadMedia(b.ctx, wechat.MediaUpload{Type: wechat.MediaImage, FileName: "welcome.jpg", Data: jpegBytes})
	if err != nil {
		t.Fatal(err)
	}
	if up.MediaID == "" || up.Type != "image" || up.CreatedAt == 0 {
		t.Fatalf("upload answer %+v", up)
	}
	got, err := b.oa.GetMedia(b.ctx, up.MediaID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Data, jpegBytes) || got.ContentType != "image/jpeg" || got.FileName != "welcome.jpg" {
		t.Errorf("fetched %d bytes, %q, %q", len(got.Data), got.ContentType, got.FileName)
	}
	thumb, err := b.oa.UploadMedia(b.ctx, wechat.MediaUpload{Type: wechat.MediaThumb, FileName: "t.jpg", Data: jpegBytes})
	if err != nil || thumb.MediaID == "" {
		t.Fatalf("thumb: %+v %v", thumb, err)
	}

	// WeChat's refusals.
	_, err = b.oa.UploadMedia(b.ctx, wechat.MediaUpload{Type: "pdf", Data: jpegBytes})
	wantCode(t, err, 40004, wechat.ClassPermanent)
	_, err = b.oa.UploadMedia(b.ctx, wechat.MediaUpload{Type: wechat.MediaImage, FileName: "a.txt", Data: []byte("hello, not an image")})
	wantCode(t, err, 40005, wechat.ClassPermanent)
	_, err = b.oa.UploadMedia(b.ctx, wechat.MediaUpload{Type: wechat.MediaThumb, FileName: "big.jpg", Data: append(jpegBytes, make([]byte, 65<<10)...)})
	wantCode(t, err, 40012, wechat.ClassPermanent)
	_, err = b.oa.UploadMedia(b.ctx, wechat.MediaUpload{Type: wechat.MediaVoice, FileName: "v.amr", Data: append([]byte("#!AMR\n"), make([]byte, 2<<20)...)})
	wantCode(t, err, 40010, wechat.ClassPermanent)
	long := append([]byte("#!AMR\n"), bytes.Repeat(append([]byte{7<<3 | 0x04}, make([]byte, 31)...), 61*50)...) // 61 s
	_, err = b.oa.UploadMedia(b.ctx, wechat.MediaUpload{Type: wechat.MediaVoice, FileName: "long.amr", Data: long})
	wantCode(t, err, 40010, wechat.ClassPermanent)

	// An image for articles: a URL, no material.
	newsURL, err := b.oa.UploadNewsImage(b.ctx, "cover.jpg", jpegBytes)
	if err != nil || !strings.HasPrefix(newsURL, "http://mmbiz.qpic.cn/") {
		t.Fatalf("uploadimg: %q %v", newsURL, err)
	}
	_, err = b.oa.UploadNewsImage(b.ctx, "big.jpg", append(jpegBytes, make([]byte, 1<<20)...))
	wantCode(t, err, 40009, wechat.ClassPermanent)
	_, err = b.oa.UploadNewsImage(b.ctx, "a.gif", []byte("GIF89a xx"))
	wantCode(t, err, 40005, wechat.ClassPermanent)

	// Permanent material: counted, listed, deleted.
	perm, err := b.oa.AddMaterial(b.ctx, wechat.MediaUpload{Type: wechat.MediaImage, FileName: "logo.jpg", Data: jpegBytes})
	if err != nil || perm.MediaID == "" || !strings.HasPrefix(perm.URL, "http") {
		t.Fatalf("add_material: %+v %v", perm, err)
	}
	_, err = b.oa.AddMaterial(b.ctx, wechat.MediaUpload{Type: wechat.MediaVideo, FileName: "v.mp4", Data: []byte("\x00\x00\x00\x18ftypmp42xxxxxxxx")})
	wantCode(t, err, 40007, wechat.ClassPermanent) // a video needs its title
	if _, err := b.oa.AddMaterial(b.ctx, wechat.MediaUpload{Type: wechat.MediaVideo, FileName: "v.mp4", Title: "开业", Data: []byte("\x00\x00\x00\x18ftypmp42xxxxxxxx")}); err != nil {
		t.Fatal(err)
	}
	counts, err := b.oa.MaterialCounts(b.ctx)
	if err != nil || counts.Image != 1 || counts.Video != 1 {
		t.Errorf("counts %+v %v", counts, err)
	}
	if err := b.oa.DeleteMaterial(b.ctx, perm.MediaID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.oa.DeleteMaterial(b.ctx, perm.MediaID), 40007, wechat.ClassPermanent)

	b.clock.Advance(72*time.Hour + time.Second)
	_, err = b.oa.GetMedia(b.ctx, up.MediaID)
	wantCode(t, err, 40007, wechat.ClassPermanent)
}

// The image a follower sends can be fetched by its media id.
func TestSimFollowerMediaFetched(t *testing.T) {
	b := setupSim(t)
	res, err := b.sim.Act(b.ctx, b.follower, wechatsim.Action{Type: wechatsim.ActionImage})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.oa.GetMedia(b.ctx, res.Sent.MediaID)
	if err != nil || !bytes.HasPrefix(got.Data, []byte("\x89PNG")) {
		t.Fatalf("fetched %v, %v", got, err)
	}
}

// A mass send reaches the tag's followers, its clientmsgid is refused a
// second time, the monthly quota holds, and it can be deleted.
func TestSimMassSend(t *testing.T) {
	b := setupSim(t)
	tag, err := b.oa.CreateTag(b.ctx, "会员")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.oa.TagUsers(b.ctx, tag.ID, []string{b.follower}); err != nil {
		t.Fatal(err)
	}
	text := wechat.MassContent{MsgType: wechat.MassTypeText, Text: &wechat.MassText{Content: "周末八折"}}
	if _, err := b.oa.PreviewMass(b.ctx, b.follower, text); err != nil {
		t.Fatal(err)
	}
	_, err = b.oa.PreviewMass(b.ctx, b.stranger, text)
	wantCode(t, err, 43004, wechat.ClassPermanent)

	res, err := b.oa.SendAll(b.ctx, wechat.MassFilter{TagID: tag.ID}, text, "promo-1")
	if err != nil || res.MsgID == 0 {
		t.Fatalf("sendall: %+v %v", res, err)
	}
	items, err := b.sim.Inbox(oaID, b.follower)
	if err != nil {
		t.Fatal(err)
	}
	masses := 0
	for _, it := range items {
		if it.Kind == wechatsim.ItemMass && it.Content == "周末八折" {
			masses++
		}
	}
	if masses != 2 { // the preview and the send
		t.Errorf("the follower's phone shows %d mass messages, want 2", masses)
	}
	_, err = b.oa.SendAll(b.ctx, wechat.MassFilter{TagID: tag.ID}, text, "promo-1")
	wantCode(t, err, wechat.CodeClientMsgIDTooSoon, wechat.ClassPermanent)
	_, err = b.oa.SendAll(b.ctx, wechat.MassFilter{TagID: 999}, text, "")
	wantCode(t, err, 45159, wechat.ClassPermanent)
	_, err = b.oa.SendAll(b.ctx, wechat.MassFilter{IsToAll: true}, wechat.MassContent{MsgType: wechat.MassTypeImage,
		Images: &wechat.MassImages{MediaIDs: []string{"no-such-media"}}}, "")
	wantCode(t, err, 40007, wechat.ClassPermanent)
	for i := 0; i < 3; i++ {
		if _, err := b.oa.SendAll(b.ctx, wechat.MassFilter{IsToAll: true}, text, ""); err != nil {
			t.Fatal(err)
		}
	}
	_, err = b.oa.SendAll(b.ctx, wechat.MassFilter{IsToAll: true}, text, "")
	wantCode(t, err, wechat.CodeMassNoQuota, wechat.ClassPermanent)

	if err := b.oa.DeleteMass(b.ctx, int64(res.MsgID), 0); err != nil {
		t.Fatal(err)
	}
	if st, err := b.oa.MassStatus(b.ctx, int64(res.MsgID)); err != nil || st != "DELETE" {
		t.Errorf("status after delete %q %v", st, err)
	}
	wantCode(t, b.oa.DeleteMass(b.ctx, 12345, 0), wechat.CodeInvalidMassMsgID, wechat.ClassPermanent)
}
