package wechat

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Value rules of typed template keywords: WeChat's rules since the
// 2023-05-04 change, shared by category template messages, OA subscription
// notifications and mini program subscription messages; a value that
// breaks them is refused with 47003 "argument invalid! data.<key>.value …".
// A keyword's type is its key without the trailing digits: thing1 → thing,
// character_string12 → character_string. Keys of older templates
// (keyword1, first, remark …) have no type and no rule.

// Keyword types.
const (
	KeywordThing           = "thing"
	KeywordNumber          = "number"
	KeywordLetter          = "letter"
	KeywordSymbol          = "symbol"
	KeywordCharacterString = "character_string"
	KeywordTime            = "time"
	KeywordDate            = "date"
	KeywordAmount          = "amount"
	KeywordPhoneNumber     = "phone_number"
	KeywordCarNumber       = "car_number"
	KeywordName            = "name"
	KeywordPhrase          = "phrase"
	KeywordEnum            = "enum"
)

// What can be wrong with a keyword value (CheckKeywordValue).
const (
	ValueEmpty   = "empty"
	ValueTooLong = "too_long"
	ValueFormat  = "format"
)

// keywordRule describes a type in English and Chinese.
type keywordRule struct{ en, zh string }

// keywordRules returns the description of each type.
func keywordRules(typ string) (keywordRule, bool) {
	switch typ {
	case KeywordThing:
		return keywordRule{"at most 20 characters", "最多 20 个字"}, true
	case KeywordNumber:
		return keywordRule{"a number (decimals allowed) of at most 32 digits", "纯数字（可带小数），最多 32 位"}, true
	case KeywordLetter:
		return keywordRule{"letters only, at most 32", "纯字母，最多 32 个"}, true
	case KeywordSymbol:
		return keywordRule{"symbols only, at most 5", "纯符号，最多 5 个"}, true
	case KeywordCharacterString:
		return keywordRule{"digits, letters and symbols, at most 32", "数字、字母或符号组合，最多 32 个"}, true
	case KeywordTime:
		return keywordRule{"a 24-hour time with an optional date, e.g. 15:01 or 2019年10月1日 15:01; a range with ~",
			"24 小时制时间，可带日期，如 15:01 或 2019年10月1日 15:01；范围用 ~ 连接"}, true
	case KeywordDate:
		return keywordRule{"a date with an optional time, e.g. 2019年10月1日 or 2019-10-01 15:01; a range with ~",
			"日期，可带时间，如 2019年10月1日 或 2019-10-01 15:01；范围用 ~ 连接"}, true
	case KeywordAmount:
		return keywordRule{"one currency symbol, at most 10 digits, optional decimals and a trailing 元, e.g. ¥39.80",
			"一个币种符号 + 最多 10 位数字，可带小数和结尾的“元”，如 ¥39.80"}, true
	case KeywordPhoneNumber:
		return keywordRule{"at most 17 digits and symbols, e.g. +86-0766-66888866", "最多 17 位数字和符号，如 +86-0766-66888866"}, true
	case KeywordCarNumber:
		return keywordRule{"at most 8 characters; only the first and the last may be Chinese, e.g. 粤A8Z888挂", "最多 8 位，首尾可为汉字，如 粤A8Z888挂"}, true
	case KeywordName:
		return keywordRule{"at most 10 Chinese characters or 20 letters", "最多 10 个汉字或 20 个字母"}, true
	case KeywordPhrase:
		return keywordRule{"at most 5 Chinese characters, Chinese only", "最多 5 个汉字，只能是汉字"}, true
	case KeywordEnum:
		return keywordRule{"one of the template's values", "模板的枚举值之一"}, true
	}
	return keywordRule{}, false
}

// KeywordType returns the type of a keyword key, or "" for an untyped
// (legacy) key.
func KeywordType(key string) string {
	typ := strings.TrimRightFunc(key, unicode.IsDigit)
	if _, ok := keywordRules(typ); ok {
		return typ
	}
	return ""
}

// KeywordRule describes the rule of a keyword's type in English and
// Chinese; ok is false for an untyped key.
func KeywordRule(key string) (en, zh string, ok bool) {
	r, ok := keywordRules(KeywordType(key))
	return r.en, r.zh, ok
}

// DroppedKeyword reports whether WeChat stopped showing the key on
// 2023-05-04 (first, remark).
func DroppedKeyword(key string) bool { return key == "first" || key == "remark" }

// KeywordMaxLength is the most characters value may have under its key's
// type; ok is false when the type has no length limit (or no type). A name
// with Chinese characters is limited to 10, otherwise 20.
func KeywordMaxLength(key, value string) (limit int, ok bool) {
	switch KeywordType(key) {
	case KeywordThing:
		return 20, true
	case KeywordNumber, KeywordLetter, KeywordCharacterString:
		return 32, true
	case KeywordSymbol, KeywordPhrase:
		return 5, true
	case KeywordPhoneNumber:
		return 17, true
	case KeywordCarNumber:
		return 8, true
	case KeywordName:
		for _, r := range value {
			if unicode.Is(unicode.Han, r) {
				return 10, true
			}
		}
		return 20, true
	}
	return 0, false
}

var (
	reKeywordNumber  = regexp.MustCompile(`^[+-]?[0-9]+(?:\.[0-9]+)?$`)
	reKeywordLetter  = regexp.MustCompile(`^[A-Za-z]+$`)
	reKeywordCharStr = regexp.MustCompile(`^[\x21-\x7e]+$`)
	reKeywordAmount  = regexp.MustCompile(`^[¥￥$€£]?[0-9]{1,10}(?:\.[0-9]{1,2})?元?$`)
	reKeywordPhone   = regexp.MustCompile(`^[0-9+\-() ]+$`)
	reKeywordCarMid  = regexp.MustCompile(`^[A-Za-z0-9]*$`)

	// A date: 2019年10月1日, 2019-10-01, 2019/10/01, 2019.10.01, 10月1日.
	keywordDateExpr = `(?:[0-9]{4}(?:年|-|/|\.))?[0-9]{1,2}(?:月|-|/|\.)[0-9]{1,2}日?`
	keywordTimeExpr = `[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?`
	reKeywordTime   = regexp.MustCompile(`^(?:` + keywordDateExpr + `\s*)?` + keywordTimeExpr + `$`)
	reKeywordDate   = regexp.MustCompile(`^` + keywordDateExpr + `(?:\s*` + keywordTimeExpr + `)?$`)
)

// CheckKeywordValue returns "" when value follows the rules of the keyword
// key's type, or ValueEmpty, ValueTooLong or ValueFormat. An untyped key
// accepts any value, also none.
func CheckKeywordValue(key, value string) string {
	typ := KeywordType(key)
	if typ == "" {
		return ""
	}
	if value == "" {
		return ValueEmpty
	}
	if limit, ok := KeywordMaxLength(key, value); ok && utf8.RuneCountInString(value) > limit {
		return ValueTooLong
	}
	if !keywordFormatOK(typ, value) {
		return ValueFormat
	}
	return ""
}

// keywordFormatOK checks the characters of a value of a type, its length
// aside.
func keywordFormatOK(typ, value string) bool {
	switch typ {
	case KeywordNumber:
		return reKeywordNumber.MatchString(value)
	case KeywordLetter:
		return reKeywordLetter.MatchString(value)
	case KeywordSymbol:
		for _, r := range value {
			if !unicode.IsPunct(r) && !unicode.IsSymbol(r) {
				return false
			}
		}
	case KeywordCharacterString:
		return reKeywordCharStr.MatchString(value)
	case KeywordTime:
		return eachRangeSide(value, reKeywordTime)
	case KeywordDate:
		return eachRangeSide(value, reKeywordDate)
	case KeywordAmount:
		return reKeywordAmount.MatchString(value)
	case KeywordPhoneNumber:
		return reKeywordPhone.MatchString(value)
	case KeywordCarNumber:
		return carNumber(value)
	case KeywordPhrase:
		for _, r := range value {
			if !unicode.Is(unicode.Han, r) {
				return false
			}
		}
	}
	return true
}

// eachRangeSide accepts "A" or a range "A~B" where each side matches re.
func eachRangeSide(value string, re *regexp.Regexp) bool {
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

// carNumber: letters and digits; the first and last may also be Chinese
// (粤A8Z888挂).
func carNumber(v string) bool {
	runes := []rune(v)
	if len(runes) < 2 {
		return false
	}
	end := func(r rune) bool {
		return unicode.Is(unicode.Han, r) || r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))
	}
	return end(runes[0]) && end(runes[len(runes)-1]) && reKeywordCarMid.MatchString(string(runes[1:len(runes)-1]))
}
