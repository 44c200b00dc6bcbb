package push

import (
	"strings"
	"testing"

	"github.com/wxgate/wxgate/internal/wechat"
)

// The rules of each type are wechat's (keywords_test.go); push adds that
// no value may hold a line break.
func TestCheckValueLineBreaks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value, want string
	}{
		{"thing1", "两行\n文字", ProblemNewline},
		{"keyword1", "a\nb", ProblemNewline},
		{"keyword1", "a\r\nb", ProblemNewline},
		{"thing1", "", wechat.ValueEmpty},
		{"thing1", strings.Repeat("字", 21), wechat.ValueTooLong},
		{"number2", "12a", wechat.ValueFormat},
		{"keyword1", "", ""},
		{"thing1", "张三", ""},
	}
	for _, tt := range tests {
		if got := CheckValue(tt.key, tt.value); got != tt.want {
			t.Errorf("CheckValue(%q, %q) = %q, want %q", tt.key, tt.value, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("很", 25)
	tests := []struct{ key, in, want string }{
		{"thing1", long, strings.Repeat("很", 19) + "…"},
		{"thing1", "短", "短"},
		{"thing1", "第一行\n第二行", "第一行 第二行"},
		{"phrase2", "多云转晴天气好", "多云转晴天"},
		{"character_string1", strings.Repeat("A", 40), strings.Repeat("A", 32)},
		{"name1", strings.Repeat("李", 12), strings.Repeat("李", 10)},
		{"time3", "not a time at all", "not a time at all"},
		{"keyword1", long, long},
	}
	for _, tt := range tests {
		got := Truncate(tt.key, tt.in)
		if got != tt.want {
			t.Errorf("Truncate(%q, %q) = %q, want %q", tt.key, tt.in, got, tt.want)
		}
		if wechat.KeywordType(tt.key) != wechat.KeywordTime && CheckValue(tt.key, got) != "" {
			t.Errorf("Truncate(%q, %q) = %q still breaks the rule: %s", tt.key, tt.in, got, CheckValue(tt.key, got))
		}
	}
}

func TestParseKeywordsAndRender(t *testing.T) {
	t.Parallel()
	content := "{{first.DATA}}\n客户：{{thing1.DATA}}\n访问页面：{{thing2.DATA}}\n访问时间：{ {time3.DATA} }\n{{remark.DATA}}"
	kws := ParseKeywords(content)
	want := []Keyword{
		{Key: "first", Dropped: true},
		{Key: "thing1", Type: "thing", Label: "客户"},
		{Key: "thing2", Type: "thing", Label: "访问页面"},
		{Key: "time3", Type: "time", Label: "访问时间"},
		{Key: "remark", Dropped: true},
	}
	if len(kws) != len(want) {
		t.Fatalf("keywords = %+v", kws)
	}
	for i := range want {
		if kws[i] != want[i] {
			t.Errorf("keyword %d = %+v, want %+v", i, kws[i], want[i])
		}
	}
	got := Render(content, DataMap{"first": "hi", "thing1": "张三", "thing2": "楼盘A", "time3": "10:00"})
	if got != "客户：张三\n访问页面：楼盘A\n访问时间：10:00" {
		t.Errorf("Render = %q", got)
	}
}

func FuzzParseKeywords(f *testing.F) {
	f.Add("客户：{{thing1.DATA}}\n时间：{{time2.DATA}}")
	f.Add("{ {a.DATA} }{{b.DATA}}{{")
	f.Fuzz(func(t *testing.T, content string) {
		kws := ParseKeywords(content)
		data := DataMap{}
		for _, k := range kws {
			data[k.Key] = "v"
		}
		_ = Render(content, data)
	})
}
