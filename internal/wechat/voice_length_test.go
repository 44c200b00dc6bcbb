package wechat_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// amr is an AMR-NB file of n 12.2 kbit/s frames (32 bytes, 20 ms each).
func amr(n int) []byte {
	frame := append([]byte{7<<3 | 0x04}, make([]byte, 31)...)
	return append([]byte("#!AMR\n"), bytes.Repeat(frame, n)...)
}

// mp3 is an MP3 of n frames after an ID3v2 tag: MPEG-1 layer III at
// 128 kbit/s, 44.1 kHz (417 bytes, 1152 samples each), or MPEG-2 layer III
// at 80 kbit/s, 22.05 kHz (261 bytes, 576 samples) when mpeg2.
func mp3(n int, mpeg2 bool) []byte {
	header, size := []byte{0xFF, 0xFB, 0x90, 0x00}, 417
	if mpeg2 {
		header, size = []byte{0xFF, 0xF3, 0x90, 0x00}, 261
	}
	frame := append(header, make([]byte, size-4)...)
	tag := append([]byte("ID3\x03\x00\x00\x00\x00\x00\x0A"), make([]byte, 10)...)
	return append(append(tag, bytes.Repeat(frame, n)...), []byte("TAG trailing id3v1")...)
}

func TestVoiceLength(t *testing.T) {
	t.Parallel()
	wb := append([]byte("#!AMR-WB\n"), bytes.Repeat(append([]byte{8<<3 | 0x04}, make([]byte, 60)...), 100)...)
	for _, tt := range []struct {
		name string
		data []byte
		want time.Duration
	}{
		{"amr 60 s", amr(3000), 60 * time.Second},
		{"amr 60.02 s", amr(3001), 60*time.Second + 20*time.Millisecond},
		{"amr-wb 2 s", wb, 2 * time.Second},
		{"mp3 mpeg-1", mp3(2336, false), 2336 * 1152 * time.Second / 44100},
		{"mp3 mpeg-2", mp3(1000, true), 1000 * 576 * time.Second / 22050},
	} {
		got, ok := wechat.VoiceLength(tt.data)
		if !ok || (got-tt.want).Abs() > time.Millisecond {
			t.Errorf("%s: %v %v, want %v", tt.name, got, ok, tt.want)
		}
	}
	if _, ok := wechat.VoiceLength([]byte("not audio")); ok {
		t.Error("a text file has a voice length")
	}
}

// VoiceLength reads uploads as they come: no input may make it panic or
// measure a negative length.
func FuzzVoiceLength(f *testing.F) {
	f.Add(amr(3))
	f.Add(mp3(3, false))
	f.Add(mp3(2, true))
	f.Add([]byte("#!AMR-WB\n\x44"))
	f.Add([]byte("ID3\x03\x00\x10\x7f\x7f\x7f\x7f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if length, _ := wechat.VoiceLength(data); length < 0 {
			t.Fatalf("negative length %v", length)
		}
	})
}
