package push

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Value rules of typed template keywords (WeChat's rules since the
// 2023-05-04 change, shared by category template messages, OA
// subscription notifications and mini program subscription messages).
// A keyword's type is its key without the trailing digits: thing1 → thing,
// character_string12 → character_string. Keys of older templates
// (keyword1, first, remark …) have no type and only the common rules.

// Keyword types.
const (
	TypeThing           = "thing"
	TypeNumber          = "number"
	TypeLetter          = "letter"
	TypeSymbol          = "symbol"
	TypeCharacterString = "character_string"
	TypeTime            = "time"
	TypeDate            = "date"
	TypeAmount          = "amount"
	TypePhoneNumber     = "phone_number"
	TypeCarNumber       = "car_number"
	TypeName            = "name"
	TypePhrase          = "phrase"
	TypeEnum            = "enum"
)

// rules describe each type for error messages, in English and Chinese.
var rules = map[string]struct{ en, zh string }{
	TypeThing:           {"at most 20 characters", "最多 20 个字"},
	TypeNumber:          {"a number (decimals allowed) of at most 32 digits", "纯数字（可带小数），最多 32 位"},
	TypeLetter:          {"letters only, at most 32", "纯字母，最多 32 个"},
	TypeSymbol:          {"symbols only, at most 5", "纯符号，最多 5 个"},
	TypeCharacterString: {"digits, letters and symbols, at most 32", "数字、字母或符号组合，最多 32 个"},
	TypeTime:            {"a 24-hour time with an optional date, e.g. 15:01 or 2019年10月1日 15:01; a range with ~", "24 小时制时间，可带日期，如 15:01 或 2019年10月1日 15:01；范围用 ~ 连接"},
	TypeDate:            {"a date with an optional time, e.g. 2019年10月1日 or 2019-10-01 15:01; a range with ~", "日期，可带时间，如 2019年10月1日 或 2019-10-01 15:01；范围用 ~ 连接"},
	TypeAmount:          {"one currency symbol, at most 10 digits, optional decimals and a trailing 元, e.g. ¥39.80", "一个币种符号 + 最多 10 位数字，可带小数和结尾的“元”，如 ¥39.80"},
	TypePhoneNumber:     {"at most 17 digits and symbols, e.g. +86-0766-66888866", "最多 17 位数字和符号，如 +86-0766-66888866"},
	TypeCarNumber:       {"at most 8 characters; only the first and the last may be Chinese, e.g. 粤A8Z888挂", "最多 8 位，首尾可为汉字，如 粤A8Z888挂"},
	TypeName:            {"at most 10 Chinese characters or 20 letters", "最多 10 个汉字或 20 个字母"},
	TypePhrase:          {"at most 5 Chinese characters, Chinese only", "最多 5 个汉字，只能是汉字"},
	TypeEnum:            {"one of the template's values", "模板的枚举值之一"},
}

// KeywordType returns the type of a keyword key, or "" for an untyped
// (legacy) key.
func KeywordType(key string) string {
	typ := strings.TrimRightFunc(key, unicode.IsDigit)
	if _, ok := rules[typ]; ok {
		return typ
	}
	return ""
}

// DroppedKeys are the keys WeChat stopped showing on 2023-05-04.
var DroppedKeys = map[string]bool{"first": true, "remark": true}

var (
	reNumber  = regexp.MustCompile(`^[+-]?[0-9]+(?:\.[0-9]+)?$`)
	reLetter  = regexp.MustCompile(`^[A-Za-z]+$`)
	reCharStr = regexp.MustCompile(`^[\x21-\x7e]+$`)
	reAmount  = regexp.MustCompile(`^[¥￥$€£]?[0-9]{1,10}(?:\.[0-9]{1,2})?元?$`)
	rePhone   = regexp.MustCompile(`^[0-9+\-() ]+$`)
	reCarMid  = regexp.MustCompile(`^[A-Za-z0-9]*$`)

	dateExpr = `(?:[0-9]{4}(?:年|-|/|\.))?[0-9]{1,2}(?:月|-|/|\.)[0-9]{1,2}日?`
	timeExpr = `[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?`
	reTime   = regexp.MustCompile(`^(?:` + dateExpr + `\s*)?` + timeExpr + `$`)
	reDate   = regexp.MustCompile(`^` + dateExpr + `(?:\s*` + timeExpr + `)?$`)
)

// Problems a value can have.
const (
	ProblemEmpty   = "empty"
	ProblemNewline = "newline"
	ProblemTooLong = "too_long"
	ProblemFormat  = "format"
)

// CheckValue returns "" when value follows the rules of the keyword key,
// or one of the Problem constants.
func CheckValue(key, value string) string {
	typ := KeywordType(key)
	if value == "" {
		if typ != "" {
			return ProblemEmpty
		}
		return ""
	}
	if strings.ContainsAny(value, "\r\n") {
		return ProblemNewline
	}
	n := utf8.RuneCountInString(value)
	switch typ {
	case TypeThing:
		if n > 20 {
			return ProblemTooLong
		}
	case TypeNumber:
		if n > 32 {
			return ProblemTooLong
		}
		if !reNumber.MatchString(value) {
			return ProblemFormat
		}
	case TypeLetter:
		if n > 32 {
			return ProblemTooLong
		}
		if !reLetter.MatchString(value) {
			return ProblemFormat
		}
	case TypeSymbol:
		if n > 5 {
			return ProblemTooLong
		}
		for _, r := range value {
			if !unicode.IsPunct(r) && !unicode.IsSymbol(r) {
				return ProblemFormat
			}
		}
	case TypeCharacterString:
		if n > 32 {
			return ProblemTooLong
		}
		if !reCharStr.MatchString(value) {
			return ProblemFormat
		}
	case TypeTime:
		if !eachSide(value, reTime) {
			return ProblemFormat
		}
	case TypeDate:
		if !eachSide(value, reDate) {
			return ProblemFormat
		}
	case TypeAmount:
		if !reAmount.MatchString(value) {
			return ProblemFormat
		}
	case TypePhoneNumber:
		if n > 17 {
			return ProblemTooLong
		}
		if !rePhone.MatchString(value) {
			return ProblemFormat
		}
	case TypeCarNumber:
		if n > 8 {
			return ProblemTooLong
		}
		if !carNumber(value) {
			return ProblemFormat
		}
	case TypeName:
		if n > nameLimit(value) {
			return ProblemTooLong
		}
	case TypePhrase:
		if n > 5 {
			return ProblemTooLong
		}
		for _, r := range value {
			if !unicode.Is(unicode.Han, r) {
				return ProblemFormat
			}
		}
	}
	return ""
}

// Truncate shortens value to what its keyword allows, when only its
// length is wrong, and turns line breaks into spaces. A thing loses its end
// to "…". Values of the wrong format are returned unchanged (CheckValue
// still rejects them).
func Truncate(key, value string) string {
	if strings.ContainsAny(value, "\r\n") {
		value = strings.Join(strings.Fields(strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(value)), " ")
	}
	limit := 0
	ellipsis := false
	switch KeywordType(key) {
	case TypeThing:
		limit, ellipsis = 20, true
	case TypeNumber, TypeLetter, TypeCharacterString:
		limit = 32
	case TypeSymbol, TypePhrase:
		limit = 5
	case TypeName:
		limit = nameLimit(value)
	case TypePhoneNumber:
		limit = 17
	default:
		return value
	}
	runes := []rune(value)
	if len(runes) <= limit {
		return value
	}
	if ellipsis {
		return string(runes[:limit-1]) + "…"
	}
	return string(runes[:limit])
}

// Rule describes the rule of a keyword's type, in English and Chinese.
func Rule(key string) (en, zh string) {
	r, ok := rules[KeywordType(key)]
	if !ok {
		return "no line breaks", "不能换行"
	}
	return r.en + ", no line breaks", r.zh + "，不能换行"
}

// problemMessage explains a problem of data.<key>, naming the field.
func problemMessage(field, key, problem, value string) string {
	en, zh := Rule(key)
	switch problem {
	case ProblemEmpty:
		return fmt.Sprintf("%s is empty; WeChat requires a value (%s) — %s 不能为空（%s）", field, en, field, zh)
	case ProblemNewline:
		return fmt.Sprintf("%s contains a line break, which WeChat does not allow — %s 不能包含换行", field, field)
	case ProblemTooLong:
		return fmt.Sprintf("%s is too long (%d characters): %s; set truncate on the alias to shorten it — %s 太长（%d 个字符）：%s",
			field, utf8.RuneCountInString(value), en, field, utf8.RuneCountInString(value), zh)
	default:
		return fmt.Sprintf("%s %q is not valid: %s — %s 格式不正确：%s", field, value, en, field, zh)
	}
}

func eachSide(value string, re *regexp.Regexp) bool {
	parts := strings.Split(value, "~")
	if len(parts) > 2 {
		return false
	}
	for _, p := range parts {
		if !re.MatchString(strings.TrimSpace(p)) {
			return false
		}
	}
	return true
}

// carNumber: letters and digits; the first and last may also be Chinese.
func carNumber(v string) bool {
	runes := []rune(v)
	if len(runes) < 2 {
		return false
	}
	end := func(r rune) bool {
		return unicode.Is(unicode.Han, r) || r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))
	}
	return end(runes[0]) && end(runes[len(runes)-1]) && reCarMid.MatchString(string(runes[1:len(runes)-1]))
}

// nameLimit is 10 when the name has Chinese characters, else 20.
func nameLimit(v string) int {
	for _, r := range v {
		if unicode.Is(unicode.Han, r) {
			return 10
		}
	}
	return 20
}
