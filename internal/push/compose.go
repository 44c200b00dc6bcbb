package push

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sort"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/wechat"
)

// Channels of a send.
const (
	ChannelTemplate    = "template"     // OA template message
	ChannelSubscribe   = "subscribe"    // OA subscription notification (bizsend)
	ChannelMPSubscribe = "mp_subscribe" // mini program subscription message
	ChannelCustom      = "custom"       // customer-service message (48-hour window)
)

// composed is a template send made ready: the template, the data after
// alias mapping, defaults and truncation, all checked against WeChat's
// rules.
type composed struct {
	channel   string
	template  Template
	alias     *Alias
	data      DataMap
	truncated []string
	// registered is false for a raw template id unknown to the registry:
	// only the keys the request gave are checked.
	registered bool
	// problems are the values a send would refuse (drafts only).
	problems []FieldProblem
}

// channelFor returns the channel of a template kind on an account.
func channelFor(kind string, a config.Account) string {
	switch {
	case kind == KindTemplate:
		return ChannelTemplate
	case a.Kind == config.KindMiniProgram:
		return ChannelMPSubscribe
	}
	return ChannelSubscribe
}

// checkChannel says whether a channel exists and fits the account's kind.
func checkChannel(channel string, a config.Account) error {
	mp := a.Kind == config.KindMiniProgram
	switch channel {
	case ChannelTemplate, ChannelSubscribe:
		if mp {
			return problem.Invalidf("channel_not_supported", "channel",
				"channel %q needs an official account; %q is a mini program (use mp_subscribe) — 小程序账号请使用 mp_subscribe", channel, a.Name)
		}
	case ChannelMPSubscribe:
		if !mp {
			return problem.Invalidf("channel_not_supported", "channel",
				"channel mp_subscribe needs a mini program; %q is an official account (use subscribe) — 公众号请使用 subscribe", a.Name)
		}
	case ChannelCustom:
	default:
		return problem.Invalidf("invalid_channel", "channel",
			"channel must be template, subscribe, mp_subscribe or custom, got %q — channel 只能是 template、subscribe、mp_subscribe 或 custom", channel)
	}
	return nil
}

// normalizeData reads the request's data: each value a string (a number is
// taken as its text). {"value": …} is accepted; color is refused, since
// WeChat ignores it since 2023-05-04.
func normalizeData(raw map[string]json.RawMessage) (map[string]string, error) {
	out := make(map[string]string, len(raw))
	for _, k := range sortedKeys(raw) {
		v := bytes.TrimSpace(raw[k])
		field := "data." + k
		switch {
		case len(v) == 0 || string(v) == "null":
			out[k] = ""
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, problem.Invalidf("invalid_data", field, "%s is not a valid string — %s 不是有效的字符串", field, field)
			}
			out[k] = s
		case v[0] == '{':
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(v, &obj); err != nil {
				return nil, problem.Invalidf("invalid_data", field, "%s is not valid JSON — %s 不是有效的 JSON", field, field)
			}
			if _, ok := obj["color"]; ok {
				return nil, problem.Invalidf("color_not_supported", field+".color",
					"%s.color: WeChat ignores colors since 2023-05-04; send the value alone — 自 2023-05-04 起微信不再支持 color，请只传 value", field)
			}
			val, ok := obj["value"]
			if !ok || len(obj) != 1 {
				return nil, problem.Invalidf("invalid_data", field, `%s must be a string or {"value": "…"} — %s 必须是字符串`, field, field)
			}
			s, err := normalizeData(map[string]json.RawMessage{k: val})
			if err != nil {
				return nil, err
			}
			out[k] = s[k]
		case v[0] == '-' || v[0] >= '0' && v[0] <= '9':
			var n json.Number
			if err := json.Unmarshal(v, &n); err != nil {
				return nil, problem.Invalidf("invalid_data", field, "%s is not a valid number — %s 不是有效的数字", field, field)
			}
			out[k] = n.String()
		default:
			return nil, problem.Invalidf("invalid_data", field, "%s must be a string — %s 必须是字符串", field, field)
		}
	}
	return out, nil
}

// lookupTemplate finds what a request's "template" names: an alias of the
// account, else a template id of the registry, else a raw template id
// unknown to the registry (checked by its keys' types only).
func (s *Service) lookupTemplate(ctx context.Context, a config.Account, ref, channel string) (Template, *Alias, bool, error) {
	if ref == "" {
		return Template{}, nil, false, problem.Invalidf("template_required", "template",
			"template is required: an alias or a template_id — 请填写 template（别名或模板 ID）")
	}
	if aliasName.MatchString(ref) {
		al, err := s.GetAlias(ctx, a.Name, ref)
		if err == nil {
			t, err := s.Template(ctx, a.Name, al.TemplateID)
			if err != nil {
				return Template{}, nil, false, err
			}
			return t, &al, true, nil
		}
		if _, ok := problem.As(err); !ok {
			return Template{}, nil, false, err
		}
	}
	t, err := s.Template(ctx, a.Name, ref)
	if err == nil {
		return t, nil, true, nil
	}
	if _, ok := problem.As(err); !ok {
		return Template{}, nil, false, err
	}
	// WeChat's template ids are 43 characters; anything much shorter is
	// a misspelt alias.
	if len(ref) < 20 {
		return Template{}, nil, false, problem.NotFoundf("template_not_found", "template",
			"template %q is neither an alias nor a template id of account %q (list them with GET /api/v1/templates?account=%s) — 模板 %q 既不是别名也不是模板 ID",
			ref, a.Name, a.Name, ref)
	}
	kind := KindTemplate
	if channel == ChannelSubscribe || channel == ChannelMPSubscribe || channel == "" && a.Kind == config.KindMiniProgram {
		kind = KindSubscribe
	}
	return Template{Account: a.Name, TemplateID: ref, Kind: kind}, nil, false, nil
}

// compose maps and checks a request's data for a template or alias.
// truncate overrides the alias's setting when not nil.
//
// With lenient set (a draft), missing and invalid values do not stop it:
// each is recorded in c.problems and the card shows what was given.
func (s *Service) compose(ctx context.Context, a config.Account, channel, ref string, raw map[string]json.RawMessage, truncate *bool, lenient ...bool) (*composed, error) {
	draft := len(lenient) > 0 && lenient[0]
	t, al, registered, err := s.lookupTemplate(ctx, a, ref, channel)
	if err != nil {
		return nil, err
	}
	if channel == "" {
		channel = channelFor(t.Kind, a)
	}
	if err := checkChannel(channel, a); err != nil {
		return nil, err
	}
	if channel == ChannelCustom {
		return nil, problem.Invalidf("template_not_allowed", "template",
			"a custom (customer-service) message has no template; send text or custom instead — 客服消息不使用模板")
	}
	if want := channelFor(t.Kind, a); want != channel {
		return nil, problem.Invalidf("channel_mismatch", "channel",
			"template %s is a %s template, which is sent with channel %q, not %q — 模板类型与 channel 不符", t.TemplateID, t.Kind, want, channel)
	}
	if t.RemovedAt != nil {
		return nil, problem.Unprocessablef("template_removed", "template",
			"template %s was deleted from the account at WeChat (last sync) — 模板 %s 已在微信后台删除", t.TemplateID, t.TemplateID)
	}
	in, err := normalizeData(raw)
	if err != nil {
		return nil, err
	}
	c := &composed{channel: channel, template: t, alias: al, registered: registered, data: DataMap{}}
	doTruncate := al != nil && al.Truncate
	if truncate != nil {
		doTruncate = *truncate
	}

	known := map[string]bool{}
	for _, k := range t.Keywords {
		known[k.Key] = true
	}
	fieldOf := map[string]string{} // keyword → request field, for messages
	for _, field := range sortedKeys(in) {
		kw := field
		if al != nil {
			if mapped, ok := al.Fields[field]; ok {
				kw = mapped
			}
		}
		if wechat.DroppedKeyword(kw) {
			return nil, problem.Unprocessablef("dropped_keyword", "data."+field, "%s", droppedMessage("data."+field))
		}
		if registered && !known[kw] {
			hint := ""
			if al != nil && len(al.Fields) > 0 {
				hint = " or a field of alias " + al.Alias + " (" + joinSorted(al.Fields) + ")"
			}
			return nil, problem.Invalidf("unknown_field", "data."+field,
				"data.%s is not a keyword of template %s (%s)%s — data.%s 不是模板的关键词", field, t.TemplateID, keywordList(t), hint, field)
		}
		if other, dup := fieldOf[kw]; dup {
			return nil, problem.Invalidf("duplicate_field", "data."+field,
				"data.%s and data.%s both fill keyword %s — data.%s 与 data.%s 填写了同一个关键词 %s", other, field, kw, other, field, kw)
		}
		fieldOf[kw] = field
		c.data[kw] = in[field]
	}
	if al != nil {
		for kw, v := range al.Defaults {
			if _, ok := c.data[kw]; !ok {
				c.data[kw] = v
				fieldOf[kw] = "defaults." + kw
			}
		}
	}
	keys := make([]string, 0, len(c.data))
	if registered {
		for _, k := range t.Keywords {
			if k.Dropped {
				continue
			}
			if _, ok := c.data[k.Key]; !ok {
				field := "data." + k.Key
				if al != nil {
					for f, kw := range al.Fields {
						if kw == k.Key {
							field = "data." + f
						}
					}
				}
				en, zh := Rule(k.Key)
				perr := problem.Unprocessablef("missing_field", field,
					"%s is missing: template %s needs keyword %s (%s%s) — 缺少 %s（%s）", field, t.TemplateID, k.Key, labelPrefix(k), en, field, zh)
				if !draft {
					return nil, perr
				}
				c.problems = append(c.problems, FieldProblem{Field: field, Keyword: k.Key, Err: perr})
				c.data[k.Key] = ""
				keys = append(keys, k.Key)
				continue
			}
			keys = append(keys, k.Key)
		}
	} else {
		keys = sortedKeys(c.data)
		for _, k := range keys {
			t.Keywords = append(t.Keywords, Keyword{Key: k, Type: wechat.KeywordType(k)})
		}
		c.template = t
	}
	for _, kw := range keys {
		v := c.data[kw]
		if doTruncate {
			if cut := Truncate(kw, v); cut != v {
				v = cut
				c.data[kw] = v
				c.truncated = append(c.truncated, kw)
			}
		}
		if p := CheckValue(kw, v); p != "" {
			field := fieldOf[kw]
			if field == "" || field == kw {
				field = "data." + kw
			} else if len(field) < 9 || field[:9] != "defaults." {
				field = "data." + field
			}
			perr := problem.Unprocessablef("invalid_value", field, "%s", problemMessage(describeField(field, kw), kw, p, v))
			if !draft {
				return nil, perr
			}
			if !slices.ContainsFunc(c.problems, func(fp FieldProblem) bool { return fp.Keyword == kw }) {
				c.problems = append(c.problems, FieldProblem{Field: field, Keyword: kw, Err: perr})
			}
		}
	}
	return c, nil
}

func describeField(field, kw string) string {
	if field == "data."+kw {
		return field
	}
	return field + " (" + kw + ")"
}

func labelPrefix(k Keyword) string {
	if k.Label == "" {
		return ""
	}
	return k.Label + ": "
}

// PreviewRequest asks how a message will look.
type PreviewRequest struct {
	Account  string                     `json:"account"`
	Channel  string                     `json:"channel,omitempty"`
	Template string                     `json:"template"`
	Data     map[string]json.RawMessage `json:"data"`
	Truncate *bool                      `json:"truncate,omitempty"`
}

// Preview renders a template message with its data as the follower will
// see it, after the same checks as a send.
func (s *Service) Preview(ctx context.Context, req PreviewRequest) (Preview, error) {
	a, err := s.account(req.Account)
	if err != nil {
		return Preview{}, err
	}
	c, err := s.compose(ctx, a, req.Channel, req.Template, req.Data, req.Truncate)
	if err != nil {
		return Preview{}, err
	}
	return preview(c.template, c.data, c.truncated), nil
}

// FieldProblem is one value of a draft that a send would refuse: the
// request field (data.customer), the keyword it fills and why.
type FieldProblem struct {
	Field   string
	Keyword string
	Err     *problem.Error
}

// Draft renders a message being written, with the same rules as Preview
// and Send, but does not stop at a missing or invalid value: the card shows
// what was typed and every such value is listed, so that a composer can
// mark each field at once. Any other refusal (unknown template, channel,
// unknown field) is returned as the error, like Preview.
func (s *Service) Draft(ctx context.Context, req PreviewRequest) (Preview, []FieldProblem, error) {
	a, err := s.account(req.Account)
	if err != nil {
		return Preview{}, nil, err
	}
	c, err := s.compose(ctx, a, req.Channel, req.Template, req.Data, req.Truncate, true)
	if err != nil {
		return Preview{}, nil, err
	}
	return preview(c.template, c.data, c.truncated), c.problems, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func joinSorted(m map[string]string) string {
	keys := sortedKeys(m)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += k
	}
	return out
}

// InputField is one data field a send of a template or alias takes: the
// request's key (an alias's field name, else the keyword), the keyword it
// fills, and the alias's default when it has one (the field may then be
// left out).
type InputField struct {
	Field      string
	Keyword    Keyword
	Default    string
	HasDefault bool
}

// InputFields lists what a request for ref (an alias or a template id of
// account) fills, in the template's order, with the template (and alias)
// it names: what a composer asks for.
func (s *Service) InputFields(ctx context.Context, account, ref string) (Template, *Alias, []InputField, error) {
	a, err := s.account(account)
	if err != nil {
		return Template{}, nil, nil, err
	}
	t, al, registered, err := s.lookupTemplate(ctx, a, ref, "")
	if err != nil {
		return Template{}, nil, nil, err
	}
	if !registered {
		return Template{}, nil, nil, problem.NotFoundf("template_not_found", "template",
			"template %q is not in the registry of account %q; sync the templates first — 模板 %q 不在账号 %q 的模板库中，请先同步", ref, account, ref, account)
	}
	fieldOf := map[string]string{}
	if al != nil {
		for f, kw := range al.Fields {
			fieldOf[kw] = f
		}
	}
	var out []InputField
	for _, k := range t.Keywords {
		if k.Dropped {
			continue
		}
		f := InputField{Field: k.Key, Keyword: k}
		if name, ok := fieldOf[k.Key]; ok {
			f.Field = name
		}
		if al != nil {
			f.Default, f.HasDefault = al.Defaults[k.Key]
		}
		out = append(out, f)
	}
	return t, al, out, nil
}
