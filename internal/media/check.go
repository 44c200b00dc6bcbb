package media

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/wxgate/wxgate/internal/problem"
)

// Rule is WeChat's limit for one media type (the same for temporary and
// permanent uploads): the largest file and the formats taken.
type Rule struct {
	Type     string   `json:"type"`
	MaxBytes int      `json:"max_bytes"`
	Formats  []string `json:"formats"`
	Label    string   `json:"-"` // the type in Chinese
}

// Rules are WeChat's limits, checked before any upload. A voice's length
// (at most 60 s) is not checked: reading it needs a decoder per format.
var Rules = map[string]Rule{
	"image": {"image", 10 << 20, []string{"jpg", "png", "gif", "bmp"}, "图片"},
	"voice": {"voice", 2 << 20, []string{"amr", "mp3"}, "语音"},
	"video": {"video", 10 << 20, []string{"mp4"}, "视频"},
	"thumb": {"thumb", 64 << 10, []string{"jpg"}, "缩略图"},
}

// Format names a file's format from its first bytes, "" when unknown.
func Format(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte{0xFF, 0xD8, 0xFF}):
		return "jpg"
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		return "png"
	case bytes.HasPrefix(data, []byte("GIF87a")), bytes.HasPrefix(data, []byte("GIF89a")):
		return "gif"
	case bytes.HasPrefix(data, []byte("BM")):
		return "bmp"
	case bytes.HasPrefix(data, []byte("#!AMR")):
		return "amr"
	case bytes.HasPrefix(data, []byte("ID3")), len(data) > 1 && data[0] == 0xFF && data[1]&0xE0 == 0xE0:
		return "mp3"
	case len(data) > 8 && string(data[4:8]) == "ftyp":
		return "mp4"
	}
	return ""
}

func sizeText(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Check applies WeChat's rule for the type to the data, so a file WeChat
// would refuse is refused here first, naming the rule.
func Check(typ string, data []byte) error {
	rule, ok := Rules[typ]
	if !ok {
		return problem.Invalidf("invalid_media_type", "type",
			"type must be image, voice, video or thumb (got %q) — 素材类型只能是 image（图片）、voice（语音）、video（视频）或 thumb（缩略图）", typ)
	}
	if len(data) == 0 {
		return problem.Invalidf("media_empty", "file", "the file is empty — 文件为空")
	}
	if len(data) > rule.MaxBytes {
		return problem.Newf(problem.TooLarge, "media_too_large", "file",
			"a %s may be at most %s (this one is %s) — %s最大 %s（当前 %s）",
			typ, sizeText(rule.MaxBytes), sizeText(len(data)), rule.Label, sizeText(rule.MaxBytes), sizeText(len(data)))
	}
	if f := Format(data); !slices.Contains(rule.Formats, f) {
		got := f
		if got == "" {
			got = "unknown"
		}
		list := strings.ToUpper(strings.Join(rule.Formats, "/"))
		return problem.Invalidf("media_format_invalid", "file",
			"a %s must be %s (this file is %s) — %s只支持 %s 格式（当前文件格式：%s）", typ, list, got, rule.Label, list, got)
	}
	return nil
}
