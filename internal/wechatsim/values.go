package wechatsim

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Value rules of typed template keys (protocol doc §5.9), shared by category
// template messages, OA subscription notifications and mini program
// subscription messages. The key's type is its name without the trailing
// digits: thing1 → thing, character_string12 → character_string.

// keyType returns the type prefix of a data key.
func keyType(key string) string {
	return strings.TrimRightFunc(key, unicode.IsDigit)
}

var (
	reNumber   = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)
	reLetter   = regexp.MustCompile(`^[A-Za-z]+$`)
	reAmount   = regexp.MustCompile(`^[¥￥$€£]?[0-9]{1,10}(\.[0-9]{1,2})?元?$`)
	rePhone    = regexp.MustCompile(`^[0-9+\-() ]+$`)
	reCarInner = regexp.MustCompile(`^[A-Za-z0-9]*$`)
	reCharStr  = regexp.MustCompile(`^[\x21-\x7e]+$`)
	// A date: 2019年10月1日, 2019-10-01, 2019/10/01, 2019.10.01, 10月1日.
	datePart = `(?:[0-9]{4}[年\-/.])?[0-9]{1,2}[月\-/.][0-9]{1,2}日?`
	timePart = `[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?`
	reTime   = regexp.MustCompile(`^(?:` + datePart + `\s*)?` + timePart + `$`)
	reDate   = regexp.MustCompile(`^` + datePart + `(?:\s*` + timePart + `)?$`)
)

// checkValue returns "" when value satisfies the rules of key's type, or the
// reason WeChat gives after "argument invalid! data.<key>.value ".
func checkValue(key, value string) string {
	typ := keyType(key)
	if value == "" {
		if ruledTypes[typ] {
			return "is empty"
		}
		return ""
	}
	n := utf8.RuneCountInString(value)
	tooLong := "exceed max length"
	switch typ {
	case "thing":
		if n > 20 {
			return tooLong
		}
	case "number":
		if n > 32 {
			return tooLong
		}
		if !reNumber.MatchString(value) {
			return "invalid"
		}
	case "letter":
		if n > 32 {
			return tooLong
		}
		if !reLetter.MatchString(value) {
			return "invalid"
		}
	case "symbol":
		if n > 5 {
			return tooLong
		}
		for _, r := range value {
			if !unicode.IsPunct(r) && !unicode.IsSymbol(r) {
				return "invalid"
			}
		}
	case "character_string":
		if n > 32 {
			return tooLong
		}
		if !reCharStr.MatchString(value) {
			return "invalid"
		}
	case "time":
		if !eachRangePart(value, reTime) {
			return "invalid"
		}
	case "date":
		if !eachRangePart(value, reDate) {
			return "invalid"
		}
	case "amount":
		if !reAmount.MatchString(value) {
			return "invalid"
		}
	case "phone_number":
		if n > 17 {
			return tooLong
		}
		if !rePhone.MatchString(value) {
			return "invalid"
		}
	case "car_number":
		if n > 8 {
			return tooLong
		}
		if !validCarNumber(value) {
			return "invalid"
		}
	case "name":
		if !validName(value) {
			return tooLong
		}
	case "phrase":
		if n > 5 {
			return tooLong
		}
		for _, r := range value {
			if !unicode.Is(unicode.Han, r) {
				return "invalid"
			}
		}
	}
	return ""
}

// ruledTypes are the typed keys WeChat requires a value for; legacy keys
// (keyword1, first …) may be empty.
var ruledTypes = map[string]bool{
	"thing": true, "number": true, "letter": true, "symbol": true, "character_string": true,
	"time": true, "date": true, "amount": true, "phone_number": true, "car_number": true,
	"name": true, "phrase": true, "enum": true,
}

// eachRangePart accepts "A" or a range "A~B" where each side matches re.
func eachRangePart(value string, re *regexp.Regexp) bool {
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

// validCarNumber: letters and digits, the first and last character may be
// Chinese (粤A8Z888挂).
func validCarNumber(v string) bool {
	runes := []rune(v)
	if len(runes) < 2 {
		return false
	}
	first, last := runes[0], runes[len(runes)-1]
	inner := string(runes[1 : len(runes)-1])
	okEnd := func(r rune) bool {
		return unicode.Is(unicode.Han, r) || r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r))
	}
	return okEnd(first) && okEnd(last) && reCarInner.MatchString(inner)
}

// validName: ≤10 Chinese characters, or ≤20 letters/symbols; a mix counts
// as Chinese.
func validName(v string) bool {
	hasHan := false
	for _, r := range v {
		if unicode.Is(unicode.Han, r) {
			hasHan = true
			break
		}
	}
	n := utf8.RuneCountInString(v)
	if hasHan {
		return n <= 10
	}
	return n <= 20
}

// placeholderPattern finds {{key.DATA}} in template content.
var placeholderPattern = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_]+)\.DATA\s*\}\}`)

// templateKeys lists the keys of a template's content in order of appearance.
func templateKeys(content string) []string {
	var keys []string
	seen := map[string]bool{}
	for _, m := range placeholderPattern.FindAllStringSubmatch(content, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			keys = append(keys, m[1])
		}
	}
	return keys
}

// droppedKeys are filtered out since WeChat's May 2023 rule change.
var droppedKeys = map[string]bool{"first": true, "remark": true}

// renderTemplate fills the placeholders; dropped keys render empty and the
// lines they leave blank disappear.
func renderTemplate(content string, data map[string]string) string {
	var lines []string
	for _, line := range strings.Split(content, "\n") {
		rendered := placeholderPattern.ReplaceAllStringFunc(line, func(ph string) string {
			key := placeholderPattern.FindStringSubmatch(ph)[1]
			if droppedKeys[key] {
				return ""
			}
			return data[key]
		})
		if strings.TrimSpace(rendered) == "" && containsDropped(line) {
			continue
		}
		lines = append(lines, rendered)
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

func containsDropped(line string) bool {
	for _, m := range placeholderPattern.FindAllStringSubmatch(line, -1) {
		if droppedKeys[m[1]] {
			return true
		}
	}
	return false
}

// validateData checks the data of a send against a template: every typed key
// of the template needs a valid value. It returns the 47003 error naming the
// first bad key, in template order.
func validateData(t *appTemplate, data map[string]string) *apiError {
	for _, key := range templateKeys(t.Content) {
		if droppedKeys[key] {
			continue
		}
		if reason := checkValue(key, data[key]); reason != "" {
			return wxErrf(47003, "argument invalid! data.%s.value %s", key, reason)
		}
	}
	return nil
}
