package wechat

import (
	"strings"
	"testing"
)

func TestCheckKeywordValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value, want string
	}{
		{"thing1", "张三", ""},
		{"thing1", strings.Repeat("字", 20), ""},
		{"thing1", strings.Repeat("字", 21), ValueTooLong},
		{"thing1", "", ValueEmpty},
		{"thing12", "ok", ""},
		{"number2", "339208499", ""},
		{"number2", "-3.14", ""},
		{"number2", "12a", ValueFormat},
		{"number2", strings.Repeat("1", 33), ValueTooLong},
		{"letter3", "abcXYZ", ""},
		{"letter3", "abc1", ValueFormat},
		{"symbol4", "!?%", ""},
		{"symbol4", "!a", ValueFormat},
		{"symbol4", "!!!!!!", ValueTooLong},
		{"character_string5", "ORDER-8812_a", ""},
		{"character_string5", "订单8812", ValueFormat},
		{"time3", "15:01", ""},
		{"time3", "2019年10月1日 15:01", ""},
		{"time3", "2026-11-24 10:00", ""},
		{"time3", "2026-11-24 10:00~2026-11-24 12:00", ""},
		{"time3", "10:00~12:00~14:00", ValueFormat},
		{"time3", "2026-11-24", ValueFormat},
		{"time3", "明天上午", ValueFormat},
		{"date4", "2019年10月1日", ""},
		{"date4", "2019-10-01 15:01", ""},
		{"date4", "10月1日~10月7日", ""},
		{"date4", "15:01", ValueFormat},
		{"amount1", "¥39.80", ""},
		{"amount1", "39.8元", ""},
		{"amount1", "￥100", ""},
		{"amount1", "¥12345678901", ValueFormat},
		{"amount1", "about 40", ValueFormat},
		{"phone_number3", "+86-0766-66888866", ""},
		{"phone_number3", "020-8888888888888888", ValueTooLong},
		{"phone_number3", "tel 123", ValueFormat},
		{"car_number1", "粤A8Z888挂", ""},
		{"car_number1", "粤A8Z8889挂", ValueTooLong},
		{"car_number1", "粤A汉888", ValueFormat},
		{"name1", "李四", ""},
		{"name1", strings.Repeat("李", 11), ValueTooLong},
		{"name1", strings.Repeat("a", 20), ""},
		{"name1", "a" + strings.Repeat("李", 10), ValueTooLong},
		{"phrase2", "多云", ""},
		{"phrase2", "多云转晴天气好", ValueTooLong},
		{"phrase2", "sunny", ValueFormat},
		{"enum1", "任意", ""},
		{"keyword1", "", ""},
		// The simulator's cases.
		{"thing1", "广州腾讯科技有限公司", ""},
		{"number01", "3.14", ""},
		{"symbol3", "%$#", ""},
		{"symbol3", "%$#@!~", ValueTooLong},
		{"character_string4", "有中文", ValueFormat},
		{"time5", "2019-10-01 15:01 ~ 2019-10-01 16:00", ""},
		{"time5", "tomorrow", ValueFormat},
		{"date6", "2015年01月05日", ""},
		{"date6", "2019-10-01", ""},
		{"date6", "soon", ValueFormat},
		{"amount7", "¥100.50", ""},
		{"amount7", "12345678901", ValueFormat},
		{"phone_number8", "call me", ValueFormat},
		{"car_number9", "粤A8Z888挂12", ValueTooLong},
		{"name10", "Jonathan Smith", ""},
		{"phrase11", "已发货", ""},
		{"phrase11", "shipped", ValueTooLong},
		{"keyword1", "anything at all, 39.8元", ""},
		{"keyword1", "a\nb", ""},
		{"keyword1", strings.Repeat("长", 200), ""},
	}
	for _, tt := range tests {
		if got := CheckKeywordValue(tt.key, tt.value); got != tt.want {
			t.Errorf("CheckKeywordValue(%q, %q) = %q, want %q", tt.key, tt.value, got, tt.want)
		}
	}
}

func TestKeywordTypeRuleAndDropped(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{"thing1": KeywordThing, "character_string12": KeywordCharacterString, "keyword1": "", "first": "", "thing": KeywordThing} {
		if got := KeywordType(key); got != want {
			t.Errorf("KeywordType(%q) = %q, want %q", key, got, want)
		}
	}
	if en, zh, ok := KeywordRule("thing2"); !ok || en != "at most 20 characters" || zh != "最多 20 个字" {
		t.Errorf("KeywordRule(thing2) = %q, %q, %v", en, zh, ok)
	}
	if _, _, ok := KeywordRule("keyword1"); ok {
		t.Error("KeywordRule(keyword1) has a rule")
	}
	if !DroppedKeyword("first") || !DroppedKeyword("remark") || DroppedKeyword("thing1") {
		t.Error("DroppedKeyword: first and remark only")
	}
	if n, ok := KeywordMaxLength("name1", "李四"); !ok || n != 10 {
		t.Errorf("KeywordMaxLength(name1, 李四) = %d, %v", n, ok)
	}
	if n, ok := KeywordMaxLength("name1", "Li"); !ok || n != 20 {
		t.Errorf("KeywordMaxLength(name1, Li) = %d, %v", n, ok)
	}
	if _, ok := KeywordMaxLength("time1", "10:00"); ok {
		t.Error("time has a length limit")
	}
}
