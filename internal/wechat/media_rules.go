package wechat

import "bytes"

// MediaLimit is WeChat's rule for one media type, the same for temporary
// and permanent uploads: the largest file, the errcode of a larger one,
// and the formats taken (as MediaFormat names them).
type MediaLimit struct {
	MaxBytes int
	SizeCode int
	Formats  []string
}

// MediaLimits are WeChat's upload limits per type. A voice's length (at
// most 60 s) is not among them: reading it needs a decoder per format.
var MediaLimits = map[string]MediaLimit{
	MediaImage: {10 << 20, 40009, []string{"jpg", "png", "gif", "bmp"}},
	MediaVoice: {2 << 20, 40010, []string{"amr", "mp3"}},
	MediaVideo: {10 << 20, 40011, []string{"mp4"}},
	MediaThumb: {64 << 10, 40012, []string{"jpg"}},
}

// MediaFormat names a file's format from its first bytes, "" when unknown.
func MediaFormat(data []byte) string {
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
