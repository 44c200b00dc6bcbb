package push

import (
	"strings"
	"testing"
)

func TestCheckValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value, want string
	}{
		{"thing1", "张三", ""},
		{"thing1", strings.Repeat("字", 20), ""},
		{"thing1", strings.Repeat("字", 21), ProblemTooLong},
		{"thing1", "", ProblemEmpty},
		{"thing1", "两行\n文字", ProblemNewline},
		{"thing12", "ok", ""},
		{"number2", "339208499", ""},
		{"number2", "-3.14", ""},
		{"number2", "12a", ProblemFormat},
		{"number2", strings.Repeat("1", 33), ProblemTooLong},
		{"letter3", "abcXYZ", ""},
		{"letter3", "abc1", ProblemFormat},
		{"symbol4", "!?%", ""},
		{"symbol4", "!a", ProblemFormat},
		{"symbol4", "!!!!!!", ProblemTooLong},
		{"character_string5", "ORDER-8812_a", ""},
		{"character_string5", "订单8812", ProblemFormat},
		{"time3", "15:01", ""},
		{"time3", "2019年10月1日 15:01", ""},
		{"time3", "2026-11-24 10:00", ""},
		{"time3", "2026-11-24 10:00~2026-11-24 12:00", ""},
		{"time3", "10:00~12:00~14:00", ProblemFormat},
		{"time3", "2026-11-24", ProblemFormat},
		{"time3", "明天上午", ProblemFormat},
		{"date4", "2019年10月1日", ""},
		{"date4", "2019-10-01 15:01", ""},
		{"date4", "10月1日~10月7日", ""},
		{"date4", "15:01", ProblemFormat},
		{"amount1", "¥39.80", ""},
		{"amount1", "39.8元", ""},
		{"amount1", "￥100", ""},
		{"amount1", "¥12345678901", ProblemFormat},
		{"amount1", "about 40", ProblemFormat},
		{"phone_number3", "+86-0766-66888866", ""},
		{"phone_number3", "020-8888888888888888", ProblemTooLong},
		{"phone_number3", "tel 123", ProblemFormat},
		{"car_number1", "粤A8Z888挂", ""},
		{"car_number1", "粤A8Z8889挂", ProblemTooLong},
		{"car_number1", "粤A汉888", ProblemFormat},
		{"name1", "李四", ""},
		{"name1", strings.Repeat("李", 11), ProblemTooLong},
		{"name1", strings.Repeat("a", 20), ""},
		{"name1", "a" + strings.Repeat("李", 10), ProblemTooLong},
		{"phrase2", "多云", ""},
		{"phrase2", "多云转晴天气好", ProblemTooLong},
		{"phrase2", "sunny", ProblemFormat},
		{"enum1", "任意", ""},
		{"keyword1", "", ""},
		{"keyword1", strings.Repeat("长", 200), ""},
		{"keyword1", "a\nb", ProblemNewline},
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
		if KeywordType(tt.key) != TypeTime && CheckValue(tt.key, got) != "" {
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
