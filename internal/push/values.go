package push

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Value rules of typed template keywords are WeChat's (wechat.CheckKeywordValue);
// push adds that a value holds no line break, which the card cannot show.

// ProblemNewline is the problem of a value with a line break; the others
// are wechat.ValueEmpty, wechat.ValueTooLong and wechat.ValueFormat.
const ProblemNewline = "newline"

// CheckValue returns "" when value follows the rules of the keyword key,
// or the problem it has (ProblemNewline or a wechat.Value… constant).
func CheckValue(key, value string) string {
	if strings.ContainsAny(value, "\r\n") {
		return ProblemNewline
	}
	return wechat.CheckKeywordValue(key, value)
}

// Truncate shortens value to what its keyword allows, when only its
// length is wrong, and turns line breaks into spaces. A thing loses its end
// to "…". Values of the wrong format are returned unchanged (CheckValue
// still rejects them), and so are car numbers: a shorter one is another car.
func Truncate(key, value string) string {
	if strings.ContainsAny(value, "\r\n") {
		value = strings.Join(strings.Fields(strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(value)), " ")
	}
	typ := wechat.KeywordType(key)
	limit, ok := wechat.KeywordMaxLength(key, value)
	if !ok || typ == wechat.KeywordCarNumber {
		return value
	}
	runes := []rune(value)
	if len(runes) <= limit {
		return value
	}
	if typ == wechat.KeywordThing {
		return string(runes[:limit-1]) + "…"
	}
	return string(runes[:limit])
}

// Rule describes the rule of a keyword's type, in English and Chinese.
func Rule(key string) (en, zh string) {
	en, zh, ok := wechat.KeywordRule(key)
	if !ok {
		return "no line breaks", "不能换行"
	}
	return en + ", no line breaks", zh + "，不能换行"
}

// problemMessage explains a problem of data.<key>, naming the field.
func problemMessage(field, key, problem, value string) string {
	en, zh := Rule(key)
	switch problem {
	case wechat.ValueEmpty:
		return fmt.Sprintf("%s is empty; WeChat requires a value (%s) — %s 不能为空（%s）", field, en, field, zh)
	case ProblemNewline:
		return fmt.Sprintf("%s contains a line break, which WeChat does not allow — %s 不能包含换行", field, field)
	case wechat.ValueTooLong:
		return fmt.Sprintf("%s is too long (%d characters): %s; set truncate on the alias to shorten it — %s 太长（%d 个字符）：%s",
			field, utf8.RuneCountInString(value), en, field, utf8.RuneCountInString(value), zh)
	default:
		return fmt.Sprintf("%s %q is not valid: %s — %s 格式不正确：%s", field, value, en, field, zh)
	}
}
