package wechat

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/replies")

const (
	replyTo   = "oia2TjuEGTNoeX76QEjQNrcURxG8" // the follower (push FromUserName)
	replyFrom = "gh_7f083739789a"              // the account (push ToUserName)
	replyTime = 1713424427
)

// replyCases are the golden passive replies, one per kind and variant.
var replyCases = []struct {
	golden string
	reply  Reply
	check  func(t *testing.T, r *ParsedReply)
}{
	{"text.xml", TextReply{Content: "你好\n<a href=\"https://mp.weixin.qq.com/\">官网</a>"}, func(t *testing.T, r *ParsedReply) {
		wantEq(t, "Content", r.Content, "你好\n<a href=\"https://mp.weixin.qq.com/\">官网</a>")
	}},
	{"image.xml", ImageReply{MediaID: "image_media_id"}, func(t *testing.T, r *ParsedReply) {
		wantEq(t, "Image.MediaId", r.Image.MediaID, "image_media_id")
	}},
	{"voice.xml", VoiceReply{MediaID: "voice_media_id"}, func(t *testing.T, r *ParsedReply) {
		wantEq(t, "Voice.MediaId", r.Voice.MediaID, "voice_media_id")
	}},
	{"video.xml", VideoReply{MediaID: "video_media_id", Title: "title", Description: "description"}, func(t *testing.T, r *ParsedReply) {
		wantEq(t, "Video.MediaId", r.Video.MediaID, "video_media_id")
		wantEq(t, "Video.Title", r.Video.Title, "title")
		wantEq(t, "Video.Description", r.Video.Description, "description")
	}},
	{"video_media_only.xml", VideoReply{MediaID: "video_media_id"}, func(t *testing.T, r *ParsedReply) {
		wantEq(t, "Video.MediaId", r.Video.MediaID, "video_media_id")
		wantEq(t, "Video.Title", r.Video.Title, "")
	}},
	{"music.xml", MusicReply{Title: "TITLE", Description: "DESCRIPTION", MusicURL: "https://example.com/a.mp3", HQMusicURL: "https://example.com/a-hq.mp3", ThumbMediaID: "thumb_media_id"}, func(t *testing.T, r *ParsedReply) {
		wantEq(t, "Music.Title", r.Music.Title, "TITLE")
		wantEq(t, "Music.Description", r.Music.Description, "DESCRIPTION")
		wantEq(t, "Music.MusicUrl", r.Music.MusicURL, "https://example.com/a.mp3")
		wantEq(t, "Music.HQMusicUrl", r.Music.HQMusicURL, "https://example.com/a-hq.mp3")
		wantEq(t, "Music.ThumbMediaId", r.Music.ThumbMediaID, "thumb_media_id")
	}},
	{"music_thumb_only.xml", MusicReply{ThumbMediaID: "thumb_media_id"}, func(t *testing.T, r *ParsedReply) {
		wantEq(t, "Music.ThumbMediaId", r.Music.ThumbMediaID, "thumb_media_id")
	}},
	{"news_1.xml", NewsReply{Articles: []Article{{Title: "title1", Description: "description1", PicURL: "https://example.com/1.jpg", URL: "https://example.com/1"}}}, func(t *testing.T, r *ParsedReply) {
		wantEq(t, "ArticleCount", r.ArticleCount, 1)
		if len(r.Articles) != 1 {
			t.Fatalf("%d articles", len(r.Articles))
		}
		wantEq(t, "Title", r.Articles[0].Title, "title1")
		wantEq(t, "Description", r.Articles[0].Description, "description1")
		wantEq(t, "PicUrl", r.Articles[0].PicURL, "https://example.com/1.jpg")
		wantEq(t, "Url", r.Articles[0].URL, "https://example.com/1")
	}},
	{"news_2.xml", NewsReply{Articles: []Article{
		{Title: "title1", Description: "description1", PicURL: "https://example.com/1.jpg", URL: "https://example.com/1?a=1&b=2"},
		{Title: "title2", URL: "https://example.com/2"},
	}}, func(t *testing.T, r *ParsedReply) {
		wantEq(t, "ArticleCount", r.ArticleCount, 2)
		if len(r.Articles) != 2 {
			t.Fatalf("%d articles", len(r.Articles))
		}
		wantEq(t, "Url[0]", r.Articles[0].URL, "https://example.com/1?a=1&b=2")
		wantEq(t, "Title[1]", r.Articles[1].Title, "title2")
		wantEq(t, "Description[1]", r.Articles[1].Description, "")
	}},
	{"transfer_customer_service.xml", TransferCustomerServiceReply{}, func(t *testing.T, r *ParsedReply) {
		wantEq(t, "TransInfo.KfAccount", r.TransInfo.KfAccount, "")
	}},
	{"transfer_customer_service_kf.xml", TransferCustomerServiceReply{KfAccount: "test1@test"}, func(t *testing.T, r *ParsedReply) {
		wantEq(t, "TransInfo.KfAccount", r.TransInfo.KfAccount, "test1@test")
	}},
}

func wantEq[T comparable](t *testing.T, field string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", field, got, want)
	}
}

func TestBuildReplyGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range replyCases {
		t.Run(strings.TrimSuffix(tc.golden, ".xml"), func(t *testing.T) {
			t.Parallel()
			got, err := BuildReply(replyTo, replyFrom, replyTime, tc.reply)
			if err != nil {
				t.Fatalf("BuildReply: %v", err)
			}
			path := filepath.Join("testdata", "replies", tc.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			golden, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, golden) {
				t.Errorf("BuildReply differs from %s\n got: %s\nwant: %s", path, got, golden)
			}

			r, err := ParseReply(golden)
			if err != nil {
				t.Fatalf("ParseReply: %v", err)
			}
			wantEq(t, "ToUserName", r.ToUserName, replyTo)
			wantEq(t, "FromUserName", r.FromUserName, replyFrom)
			wantEq(t, "CreateTime", r.CreateTime, int64(replyTime))
			wantEq(t, "MsgType", r.MsgType, tc.reply.MsgType())
			wantEq(t, "Encrypt", r.Encrypt, "")
			tc.check(t, r)
			// Elements of other kinds stay out (encoding/xml would write an
			// empty <Articles></Articles> for an omitted "Articles>item").
			for _, el := range []string{"Content", "Image", "Voice", "Video", "Music", "ArticleCount", "Articles", "TransInfo"} {
				if bytes.Contains(golden, []byte("<"+el+">")) && !elementBelongs(tc.reply, el) {
					t.Errorf("reply %s carries <%s>: %s", tc.reply.MsgType(), el, golden)
				}
			}
			// Text values are CDATA, as in WeChat's samples.
			if !bytes.Contains(golden, []byte("<ToUserName><![CDATA["+replyTo+"]]></ToUserName>")) ||
				!bytes.Contains(golden, []byte("<MsgType><![CDATA["+tc.reply.MsgType()+"]]></MsgType>")) ||
				!bytes.Contains(golden, []byte("<CreateTime>1713424427</CreateTime>")) {
				t.Errorf("unexpected shape: %s", golden)
			}
		})
	}
}

func elementBelongs(r Reply, el string) bool {
	switch v := r.(type) {
	case TextReply:
		return el == "Content"
	case ImageReply:
		return el == "Image"
	case VoiceReply:
		return el == "Voice"
	case VideoReply:
		return el == "Video"
	case MusicReply:
		return el == "Music"
	case NewsReply:
		return el == "ArticleCount" || el == "Articles"
	case TransferCustomerServiceReply:
		return el == "TransInfo" && v.KfAccount != ""
	}
	return false
}

// All seven kinds are covered by the golden files.
func TestReplyKindsCovered(t *testing.T) {
	t.Parallel()
	kinds := map[string]bool{}
	for _, tc := range replyCases {
		kinds[tc.reply.MsgType()] = true
	}
	for _, k := range []string{"text", "image", "voice", "video", "music", "news", "transfer_customer_service"} {
		if !kinds[k] {
			t.Errorf("no golden reply of kind %s", k)
		}
	}
}

func TestBuildReplyErrors(t *testing.T) {
	t.Parallel()
	articles := func(n int) []Article {
		a := make([]Article, n)
		for i := range a {
			a[i] = Article{Title: "t"}
		}
		return a
	}
	tests := map[string]Reply{
		"news with 0 articles":      NewsReply{},
		"news with 9 articles":      NewsReply{Articles: articles(9)},
		"music without thumb":       MusicReply{Title: "t", MusicURL: "https://example.com/a.mp3"},
		"pointer is not a kind":     &TextReply{Content: "x"},
		"nil reply of unknown type": nil,
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if r == nil {
				defer func() {
					if p := recover(); p != nil {
						t.Errorf("BuildReply(nil) panicked: %v", p)
					}
				}()
			}
			if out, err := BuildReply(replyTo, replyFrom, replyTime, r); err == nil {
				t.Errorf("BuildReply = %s, want an error", out)
			}
		})
	}
	if _, err := BuildReply(replyTo, replyFrom, replyTime, NewsReply{Articles: articles(8)}); err != nil {
		t.Errorf("news with 8 articles: %v", err)
	}
}

// Reply text that XML cannot carry must not produce a body WeChat rejects.
func TestBuildReplyAwkwardText(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a]]>b", "x\x00y", "bell\x07", "bad \xff utf8", "tab\tand\nnewline", "😀"} {
		out, err := BuildReply(replyTo, replyFrom, replyTime, TextReply{Content: s})
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		r, err := ParseReply(out)
		if err != nil {
			t.Errorf("%q: BuildReply wrote invalid XML: %v\n%q", s, err, out)
			continue
		}
		if strings.ContainsRune(s, 0) || strings.ContainsRune(s, 7) || strings.Contains(s, "\xff") {
			if !strings.Contains(r.Content, "\uFFFD") {
				t.Errorf("%q came back as %q", s, r.Content)
			}
		} else if r.Content != s {
			t.Errorf("%q came back as %q", s, r.Content)
		}
	}
}

func TestParseReplyErrors(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", "success", "<reply/>", "<xml><Content>", `{"Content":"x"}`} {
		if r, err := ParseReply([]byte(body)); !errors.Is(err, ErrMalformedMessage) {
			t.Errorf("ParseReply(%q) = %+v, %v; want ErrMalformedMessage", body, r, err)
		}
	}
}

func TestIsNoReply(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"":            true,
		"success":     true,
		"success\n":   true,
		" \r\n":       true,
		"SUCCESS":     false,
		"successful":  false,
		`"success"`:   false,
		"<xml></xml>": false,
		"<xml><Content><![CDATA[]]></Content></xml>": false,
	}
	for body, wantNoReply := range tests {
		if got := IsNoReply([]byte(body)); got != wantNoReply {
			t.Errorf("IsNoReply(%q) = %v, want %v", body, got, wantNoReply)
		}
	}
	if !IsNoReply(nil) {
		t.Error("IsNoReply(nil) = false")
	}
}
