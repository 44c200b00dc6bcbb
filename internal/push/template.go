package push

import (
	"regexp"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// Template kinds: a template message of an official account, or a
// subscription template (OA subscription notification or mini program
// subscription message).
const (
	KindTemplate  = "template"
	KindSubscribe = "subscribe"
)

// Template is a template of an account as WeChat lists it, with its
// keywords parsed from the content.
type Template struct {
	Account    string    `json:"account"`
	TemplateID string    `json:"template_id"`
	Kind       string    `json:"kind"`
	Title      string    `json:"title"`
	Content    string    `json:"content"`
	Example    string    `json:"example,omitempty"`
	Keywords   []Keyword `json:"keywords"`
	// Source is "sync" (from WeChat) or "manual" (registered through the API).
	Source    string     `json:"source"`
	SyncedAt  *time.Time `json:"synced_at,omitempty"`
	RemovedAt *time.Time `json:"removed_at,omitempty"` // gone from WeChat at the last sync
}

// Keyword is one {{key.DATA}} of a template.
type Keyword struct {
	Key string `json:"key"`
	// Type is the value rule (thing, time, amount …); "" for a legacy key.
	Type string `json:"type,omitempty"`
	// Label is the text before the placeholder on its line ("客户").
	Label string `json:"label,omitempty"`
	// Dropped: first and remark are no longer shown (2023-05-04).
	Dropped bool `json:"dropped,omitempty"`
}

// placeholder finds {{key.DATA}} (WeChat's documents sometimes print it
// with spaces, { {key.DATA} }).
var placeholder = regexp.MustCompile(`\{\s*\{\s*([A-Za-z0-9_]+)\.DATA\s*\}\s*\}`)

// ParseKeywords lists the keywords of a template's content in order.
func ParseKeywords(content string) []Keyword {
	var out []Keyword
	seen := map[string]bool{}
	for _, line := range strings.Split(content, "\n") {
		locs := placeholder.FindAllStringSubmatchIndex(line, -1)
		prev := 0
		for _, loc := range locs {
			key := line[loc[2]:loc[3]]
			label := strings.TrimSpace(line[prev:loc[0]])
			label = strings.TrimSpace(strings.TrimRight(label, ":："))
			prev = loc[1]
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, Keyword{Key: key, Type: wechat.KeywordType(key), Label: label, Dropped: wechat.DroppedKeyword(key)})
		}
	}
	return out
}

// Render fills the template's placeholders with data as the follower sees
// the card: dropped keys render empty and the lines they leave blank go.
func Render(content string, data map[string]string) string {
	var lines []string
	for _, line := range strings.Split(content, "\n") {
		dropped := false
		out := placeholder.ReplaceAllStringFunc(line, func(ph string) string {
			key := placeholder.FindStringSubmatch(ph)[1]
			if wechat.DroppedKeyword(key) {
				dropped = true
				return ""
			}
			return data[key]
		})
		if dropped && strings.TrimSpace(out) == "" {
			continue
		}
		lines = append(lines, out)
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

// CardLine is one line of a rendered card.
type CardLine struct {
	Label string `json:"label,omitempty"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Preview is a message as the follower will see it.
type Preview struct {
	TemplateID string     `json:"template_id"`
	Title      string     `json:"title"`
	Text       string     `json:"text"`
	Lines      []CardLine `json:"lines"`
	Data       DataMap    `json:"data"`
	// Truncated lists the keys whose values were shortened by the alias.
	Truncated []string `json:"truncated,omitempty"`
}

// DataMap is keyword → value, the data of one send.
type DataMap map[string]string

func preview(t Template, data DataMap, truncated []string) Preview {
	p := Preview{TemplateID: t.TemplateID, Title: t.Title, Text: Render(t.Content, data), Data: data, Truncated: truncated}
	for _, k := range t.Keywords {
		if k.Dropped {
			continue
		}
		p.Lines = append(p.Lines, CardLine{Label: k.Label, Key: k.Key, Value: data[k.Key]})
	}
	return p
}
