package wechat

import (
	"bytes"
	"time"
)

// MediaLimit is WeChat's rule for one media type, the same for temporary
// and permanent uploads: the largest file, the errcode of a larger one,
// and the formats taken (as MediaFormat names them).
type MediaLimit struct {
	MaxBytes int
	SizeCode int
	Formats  []string
}

// MaxVoiceLength is the longest voice WeChat takes (VoiceLength measures it).
const MaxVoiceLength = 60 * time.Second

// MediaLimits are WeChat's upload limits per type; a voice is also at most
// MaxVoiceLength long.
var MediaLimits = map[string]MediaLimit{
	MediaImage: {10 << 20, 40009, []string{"jpg", "png", "gif", "bmp"}},
	MediaVoice: {2 << 20, 40010, []string{"amr", "mp3"}},
	MediaVideo: {10 << 20, 40011, []string{"mp4"}},
	MediaThumb: {64 << 10, 40012, []string{"jpg"}},
}

// NewsImageLimit is media/uploadimg's rule (MediaNewsImage).
var NewsImageLimit = MediaLimit{1 << 20, 40009, []string{"jpg", "png"}}

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

// VoiceLength is how long an AMR or MP3 voice plays, from its frame
// headers (no decoding); ok is false when no frame could be read. Reading
// stops at the first bytes that are no frame, so a damaged file measures
// at most its length.
func VoiceLength(data []byte) (length time.Duration, ok bool) {
	switch {
	case bytes.HasPrefix(data, []byte("#!AMR-WB\n")):
		return amrLength(data[9:], amrWBFrameBytes)
	case bytes.HasPrefix(data, []byte("#!AMR\n")):
		return amrLength(data[6:], amrNBFrameBytes)
	case MediaFormat(data) == "mp3":
		return mp3Length(data)
	}
	return 0, false
}

// AMR frame sizes by frame type, the one-byte header included; every
// frame is 20 ms.
var (
	amrNBFrameBytes = [16]int{13, 14, 16, 18, 20, 21, 27, 32, 6, 1, 1, 1, 1, 1, 1, 1}
	amrWBFrameBytes = [16]int{18, 24, 33, 37, 41, 47, 51, 59, 61, 6, 1, 1, 1, 1, 1, 1}
)

func amrLength(frames []byte, sizes [16]int) (time.Duration, bool) {
	n := 0
	for i := 0; i < len(frames); n++ {
		i += sizes[frames[i]>>3&0x0F]
	}
	return time.Duration(n) * 20 * time.Millisecond, n > 0
}

// MP3 bitrates in kbit/s by bitrate index: MPEG-1 layers I, II, III, then
// MPEG-2/2.5 layer I and layers II/III.
var mp3Bitrates = [5][15]int{
	{0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448},
	{0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384},
	{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},
	{0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256},
	{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
}

func mp3Length(data []byte) (time.Duration, bool) {
	i := 0
	if bytes.HasPrefix(data, []byte("ID3")) && len(data) >= 10 {
		// An ID3v2 tag: a syncsafe size, and a footer when flagged.
		size := int(data[6]&0x7F)<<21 | int(data[7]&0x7F)<<14 | int(data[8]&0x7F)<<7 | int(data[9]&0x7F)
		i = 10 + size
		if data[5]&0x10 != 0 {
			i += 10
		}
	}
	var seconds float64
	frames := 0
	for i+4 <= len(data) {
		h := data[i : i+4]
		version, layer := h[1]>>3&3, h[1]>>1&3 // version 3 MPEG-1, 2 MPEG-2, 0 MPEG-2.5; layer 3 I, 2 II, 1 III
		rateIdx, srIdx := h[2]>>4, h[2]>>2&3
		if h[0] != 0xFF || h[1]&0xE0 != 0xE0 || version == 1 || layer == 0 || rateIdx == 0 || rateIdx == 15 || srIdx == 3 {
			break
		}
		sampleRate := [3]int{44100, 48000, 32000}[srIdx]
		table := 4
		switch {
		case version == 3:
			table = int(3 - layer)
		case layer == 3:
			table = 3
		}
		if version == 2 {
			sampleRate /= 2
		} else if version == 0 {
			sampleRate /= 4
		}
		bitrate := mp3Bitrates[table][rateIdx] * 1000
		padding := int(h[2] >> 1 & 1)
		var samples, size int
		switch {
		case layer == 3:
			samples = 384
			size = (12*bitrate/sampleRate + padding) * 4
		case layer == 1 && version != 3:
			samples = 576
			size = 72*bitrate/sampleRate + padding
		default:
			samples = 1152
			size = 144*bitrate/sampleRate + padding
		}
		if size < 4 {
			break
		}
		seconds += float64(samples) / float64(sampleRate)
		frames++
		i += size
	}
	return time.Duration(seconds * float64(time.Second)), frames > 0
}
