package wechatsim

import (
	"regexp"
	"strings"

	"github.com/wxgate/wxgate/internal/wechat"
)

// checkValue returns "" when value satisfies WeChat's rules of key's type
// (wechat.CheckKeywordValue), or the reason WeChat gives after
// "argument invalid! data.<key>.value ".
func checkValue(key, value string) string {
	switch wechat.CheckKeywordValue(key, value) {
	case wechat.ValueEmpty:
		return "is empty"
	case wechat.ValueTooLong:
		return "exceed max length"
	case wechat.ValueFormat:
		return "invalid"
	}
	return ""
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

// renderTemplate fills the placeholders; dropped keys render empty and the
// lines they leave blank disappear.
func renderTemplate(content string, data map[string]string) string {
	var lines []string
	for _, line := range strings.Split(content, "\n") {
		rendered := placeholderPattern.ReplaceAllStringFunc(line, func(ph string) string {
			key := placeholderPattern.FindStringSubmatch(ph)[1]
			if wechat.DroppedKeyword(key) {
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
		if wechat.DroppedKeyword(m[1]) {
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
		if wechat.DroppedKeyword(key) {
			continue
		}
		if reason := checkValue(key, data[key]); reason != "" {
			return wxErrf(47003, "argument invalid! data.%s.value %s", key, reason)
		}
	}
	return nil
}
