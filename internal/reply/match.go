package reply

import (
	"slices"
	"strings"

	"github.com/wxgate/wxgate/internal/wechat"
)

// ruleSet is the enabled rules of one account, sorted and indexed for
// matching. It is built once per reload and never changed afterwards, so
// concurrent callbacks read it without locks.
type ruleSet struct {
	subscribe *Rule
	click     map[string]*Rule
	keywords  []*Rule
	msgTypes  map[string]*Rule
	fallback  *Rule
	rules     []Rule
}

func (s *ruleSet) all() []Rule { return s.rules }

// buildRuleSet indexes rules (already sorted by position). When several
// rules compete for the same slot the first one wins, as the list shows.
func buildRuleSet(rules []Rule) *ruleSet {
	set := &ruleSet{click: map[string]*Rule{}, msgTypes: map[string]*Rule{}, rules: rules}
	for i := range rules {
		r := &rules[i]
		if !r.Enabled {
			continue
		}
		switch r.Match {
		case MatchSubscribe:
			if set.subscribe == nil {
				set.subscribe = r
			}
		case MatchClick:
			if _, ok := set.click[r.EventKey]; !ok {
				set.click[r.EventKey] = r
			}
		case MatchKeyword:
			set.keywords = append(set.keywords, r)
		case MatchMsgType:
			if _, ok := set.msgTypes[r.MsgType]; !ok {
				set.msgTypes[r.MsgType] = r
			}
		case MatchDefault:
			if set.fallback == nil {
				set.fallback = r
			}
		}
	}
	return set
}

// match picks the rule for m: the welcome on subscribe, the menu rule on a
// CLICK, then keywords for text in order, then the rule for the message
// type, then the default. Events other than subscribe and CLICK get no
// default reply: a LOCATION report every few seconds must not answer
// "I did not understand".
func (s *ruleSet) match(m *wechat.Message) *Rule {
	if m.IsEvent() {
		switch m.Event {
		case wechat.EventSubscribe:
			return s.subscribe
		case wechat.EventClick, wechat.EventScancodePush, wechat.EventScancodeWaitMsg, wechat.EventPicSysPhoto,
			wechat.EventPicPhotoOrAlbum, wechat.EventPicWeixin, wechat.EventLocationSelect:
			// Every menu button with a key: its click rule answers.
			if m.EventKey != "" {
				return s.click[m.EventKey]
			}
		}
		return nil
	}
	if m.MsgType == wechat.MsgTypeText {
		text := strings.TrimSpace(m.Content)
		for _, r := range s.keywords {
			if r.matchesText(text) {
				return r
			}
		}
	}
	if r, ok := s.msgTypes[m.MsgType]; ok {
		return r
	}
	return s.fallback
}

// matchesText compares the trimmed text. Exact and contains ignore case,
// since people type "Help" and "help" alike; a regex says what it means
// (use (?i) to ignore case).
func (r *Rule) matchesText(text string) bool {
	switch r.Mode {
	case ModeExact, "":
		return strings.EqualFold(text, strings.TrimSpace(r.Pattern))
	case ModeContains:
		return containsFold(text, strings.TrimSpace(r.Pattern))
	case ModeRegex:
		return r.re != nil && r.re.MatchString(text)
	}
	return false
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// sortRules orders rules as they are matched: by position, then by id so
// rules added at the same position keep the order they were added in.
func sortRules(rules []Rule) {
	slices.SortStableFunc(rules, func(a, b Rule) int {
		if a.Position != b.Position {
			return a.Position - b.Position
		}
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
}
