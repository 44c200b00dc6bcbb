// Package reply holds the auto-reply rules of each account: how they are
// stored (reply_rules), seeded from the configuration, validated, cached in
// memory and matched against an inbound push.
package reply

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// What a rule matches on.
const (
	MatchKeyword   = "keyword"
	MatchMsgType   = "msg_type"
	MatchSubscribe = "subscribe"
	MatchClick     = "click"
	MatchDefault   = "default"
)

// How a keyword rule compares the text.
const (
	ModeExact    = "exact"
	ModeContains = "contains"
	ModeRegex    = "regex"
)

// Where a rule came from. Config rules are replaced on every start; rules
// added from the CLI stay.
const (
	SourceConfig = "config"
	SourceCLI    = "cli"
)

// Reply kinds. None answers "success": WeChat shows nothing.
const (
	ReplyText  = "text"
	ReplyImage = "image"
	ReplyVoice = "voice"
	ReplyVideo = "video"
	ReplyNews  = "news"
	ReplyNone  = "none"
)

// Content is what a rule answers with. It is the configuration's type so a
// rule in wxgate.yaml and a stored rule have one shape (also in JSON, the
// reply column).
type Content = config.ReplyContent

// Rule is one auto-reply rule of an account.
type Rule struct {
	ID        int64     `json:"id"`
	Account   string    `json:"account"`
	Position  int       `json:"position"`
	Match     string    `json:"match"`
	Mode      string    `json:"mode,omitempty"`
	Pattern   string    `json:"pattern,omitempty"`
	MsgType   string    `json:"msg_type,omitempty"`
	EventKey  string    `json:"event_key,omitempty"`
	Reply     Content   `json:"reply"`
	Enabled   bool      `json:"enabled"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`

	re *regexp.Regexp // compiled once, when the rule is validated
}

// FromConfig turns a rule of the configuration into a stored rule.
func FromConfig(account string, position int, r config.ReplyRule) Rule {
	return Rule{
		Account:  account,
		Position: position,
		Match:    r.Match,
		Mode:     r.Mode,
		Pattern:  r.Pattern,
		MsgType:  r.MsgType,
		EventKey: r.EventKey,
		Reply:    r.Reply,
		Enabled:  true,
		Source:   SourceConfig,
	}
}

// ErrInvalidRule is the cause of every validation failure, so callers (the
// CLI, the API) can tell a user's mistake from a storage failure.
var ErrInvalidRule = errors.New("invalid reply rule")

// invalidRule says everything that is wrong with a rule, each problem in
// English and Chinese.
func invalidRule(problems []string) *problem.Error {
	return &problem.Error{Kind: problem.Invalid, Code: "invalid_reply_rule",
		Message: "invalid reply rule: " + strings.Join(problems, "; "), Err: ErrInvalidRule}
}

// messageTypes a msg_type rule may name: the user messages WeChat pushes.
var messageTypes = map[string]bool{
	wechat.MsgTypeText: true, wechat.MsgTypeImage: true, wechat.MsgTypeVoice: true,
	wechat.MsgTypeVideo: true, wechat.MsgTypeShortVideo: true, wechat.MsgTypeLocation: true,
	wechat.MsgTypeLink: true,
}

// maxTextBytes is the passive text reply limit developers measured; longer
// text is cut by WeChat or refused.
const maxTextBytes = 2048

// normalize fills defaults, validates the rule and compiles its regex. It is
// the single gate every rule passes before it is stored or matched.
func (r *Rule) normalize() error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	r.Match = strings.TrimSpace(r.Match)
	if r.Account == "" {
		add("account is required — 缺少 account（公众号名称）")
	}
	if r.Source == "" {
		r.Source = SourceCLI
	}
	if r.Source != SourceConfig && r.Source != SourceCLI {
		add("source must be config or cli (got %q) — source 只能是 config 或 cli", r.Source)
	}
	r.re = nil
	switch r.Match {
	case MatchKeyword:
		if r.Mode == "" {
			r.Mode = ModeExact
		}
		if strings.TrimSpace(r.Pattern) == "" {
			add("a keyword rule needs a pattern — 关键词规则需要 pattern（要匹配的关键词）")
			break
		}
		switch r.Mode {
		case ModeExact, ModeContains:
		case ModeRegex:
			re, err := regexp.Compile(r.Pattern)
			if err != nil {
				add("pattern %q is not a valid regular expression (%v) — pattern %q 不是合法的正则表达式（%v）", r.Pattern, err, r.Pattern, err)
			}
			r.re = re
		default:
			add("mode must be exact, contains or regex (got %q) — mode 只能是 exact（完全匹配）、contains（包含）或 regex（正则）", r.Mode)
		}
	case MatchMsgType:
		if !messageTypes[r.MsgType] {
			add("msg_type must be one of text, image, voice, video, shortvideo, location, link (got %q) — msg_type 只能是 text、image、voice、video、shortvideo、location、link 之一", r.MsgType)
		}
	case MatchClick:
		if r.EventKey == "" {
			add("a click rule needs the menu button's event_key — 菜单点击规则需要 event_key（自定义菜单按钮的 key）")
		}
	case MatchSubscribe, MatchDefault:
	case "":
		add("match is required (keyword, msg_type, subscribe, click or default) — 缺少 match（keyword、msg_type、subscribe、click 或 default）")
	default:
		add("match must be keyword, msg_type, subscribe, click or default (got %q) — match 只能是 keyword（关键词）、msg_type（消息类型）、subscribe（关注）、click（菜单点击）或 default（默认回复）", r.Match)
	}
	if r.Reply.File != "" && r.Reply.Type != ReplyImage && r.Reply.Type != ReplyVoice && r.Reply.Type != ReplyVideo {
		add("file belongs to image, voice and video replies — file 只用于图片、语音和视频回复")
	}
	if r.Match != MatchKeyword && (r.Mode != "" || r.Pattern != "") {
		add("mode and pattern belong to keyword rules only — mode 和 pattern 只用于关键词规则")
	}
	problems = append(problems, contentProblems(r.Reply)...)
	if len(problems) > 0 {
		return invalidRule(problems)
	}
	return nil
}

func contentProblems(c Content) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	switch c.Type {
	case ReplyText:
		if c.Content == "" {
			add("a text reply needs content — 文本回复需要 content（回复内容）")
		} else if len(c.Content) > maxTextBytes {
			add("a text reply may be at most %d bytes (got %d) — 文本回复最长 %d 字节（当前 %d 字节）", maxTextBytes, len(c.Content), maxTextBytes, len(c.Content))
		}
		if !utf8.ValidString(c.Content) {
			add("text reply content is not valid UTF-8 — 文本回复内容不是合法的 UTF-8")
		}
	case ReplyImage, ReplyVoice, ReplyVideo:
		switch {
		case c.MediaID == "" && c.File == "":
			add("a %s reply needs media_id (from `wxgate media upload`) or file (a local file wxgate uploads) — %s 回复需要 media_id（素材上传后得到）或 file（本地文件，由 wxgate 自动上传）", c.Type, c.Type)
		case c.MediaID != "" && c.File != "":
			add("a %s reply takes media_id or file, not both — %s 回复只能填写 media_id 或 file 之一", c.Type, c.Type)
		}
	case ReplyNews:
		if len(c.Articles) == 0 || len(c.Articles) > 8 {
			add("a news reply needs 1 to 8 articles (got %d) — 图文回复需要 1 到 8 篇文章（当前 %d 篇）", len(c.Articles), len(c.Articles))
		}
		for i, a := range c.Articles {
			if a.Title == "" {
				add("news article %d needs a title — 第 %d 篇图文需要 title（标题）", i+1, i+1)
			}
			if a.PicURL != "" && a.PicFile != "" {
				add("news article %d takes pic_url or pic_file, not both — 第 %d 篇图文只能填写 pic_url 或 pic_file 之一", i+1, i+1)
			}
		}
	case ReplyNone:
	case "":
		add("reply type is required (text, image, voice, video, news or none) — 缺少回复类型（text、image、voice、video、news 或 none）")
	default:
		add("reply type must be text, image, voice, video, news or none (got %q) — 回复类型只能是 text、image、voice、video、news 或 none", c.Type)
	}
	return problems
}

// Build turns the rule's content into the passive reply for m, or nil when
// the rule says "no reply". In a text reply "{content}" stands for the text
// the user sent, so a starter rule can echo it.
func (r *Rule) Build(m *wechat.Message) wechat.Reply {
	c := r.Reply
	switch c.Type {
	case ReplyText:
		text := c.Content
		if m.MsgType == wechat.MsgTypeText && strings.Contains(text, "{content}") {
			text = strings.ReplaceAll(text, "{content}", m.Content)
		}
		return wechat.TextReply{Content: text}
	case ReplyImage:
		return wechat.ImageReply{MediaID: c.MediaID}
	case ReplyVoice:
		return wechat.VoiceReply{MediaID: c.MediaID}
	case ReplyVideo:
		return wechat.VideoReply{MediaID: c.MediaID, Title: c.Title, Description: c.Description}
	case ReplyNews:
		articles := make([]wechat.Article, 0, len(c.Articles))
		for _, a := range c.Articles {
			articles = append(articles, wechat.Article{Title: a.Title, Description: a.Description, PicURL: a.PicURL, URL: a.URL})
		}
		// WeChat shows a single article when answering a user's message and
		// refuses more; events (subscribe, menu clicks) may carry up to eight.
		if !m.IsEvent() && len(articles) > 1 {
			articles = articles[:1]
		}
		return wechat.NewsReply{Articles: articles}
	}
	return nil
}
