package media

import (
	"fmt"
	"slices"
	"strings"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// labels name the types in Chinese.
var labels = map[string]string{"image": "图片", "voice": "语音", "video": "视频", "thumb": "缩略图", "news_image": "图文图片"}

// Format names a file's format from its first bytes, "" when unknown.
func Format(data []byte) string { return wechat.MediaFormat(data) }

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
	rule, ok := wechat.MediaLimits[typ]
	if typ == wechat.MediaNewsImage {
		rule, ok = wechat.NewsImageLimit, true
	}
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
			typ, sizeText(rule.MaxBytes), sizeText(len(data)), labels[typ], sizeText(rule.MaxBytes), sizeText(len(data)))
	}
	if f := Format(data); !slices.Contains(rule.Formats, f) {
		got := f
		if got == "" {
			got = "unknown"
		}
		list := strings.ToUpper(strings.Join(rule.Formats, "/"))
		return problem.Invalidf("media_format_invalid", "file",
			"a %s must be %s (this file is %s) — %s只支持 %s 格式（当前文件格式：%s）", typ, list, got, labels[typ], list, got)
	}
	if typ == wechat.MediaVoice {
		if length, ok := wechat.VoiceLength(data); ok && length > wechat.MaxVoiceLength {
			secs := fmt.Sprintf("%.1f", length.Seconds())
			return problem.Invalidf("media_too_long", "file",
				"a voice may play at most %d s (this one plays %s s) — 语音最长 %d 秒（当前 %s 秒）",
				int(wechat.MaxVoiceLength.Seconds()), secs, int(wechat.MaxVoiceLength.Seconds()), secs)
		}
	}
	return nil
}
