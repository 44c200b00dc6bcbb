package wechatsim

import "slices"

// Template management (protocol doc §5.6, §5.8).

// maxTemplates is the number of templates an account may have in use.
const maxTemplates = 25

// templateLibrary is the simulator's small public library for
// api_add_template, keyed by template_id_short. The numeric entries follow
// the category-template style (typed keys), TM00015 the legacy style.
var templateLibrary = map[string]TemplateConfig{
	"TM00015": {Title: "订单支付成功", PrimaryIndustry: "IT科技", DeputyIndustry: "互联网|电子商务",
		Content: "{{first.DATA}}\n支付金额：{{keyword1.DATA}}\n商品信息：{{keyword2.DATA}}\n{{remark.DATA}}",
		Example: "支付金额：30元\n商品信息：我是商品名字"},
	"10001": {Title: "新访客提醒", PrimaryIndustry: "IT科技", DeputyIndustry: "互联网|电子商务",
		Content: "客户：{{thing1.DATA}}\n到访时间：{{time2.DATA}}\n来源：{{thing3.DATA}}",
		Example: "客户：张三\n到访时间：2026-11-24 10:00\n来源：分享的小程序"},
	"10002": {Title: "订单发货通知", PrimaryIndustry: "IT科技", DeputyIndustry: "互联网|电子商务",
		Content: "订单号：{{character_string1.DATA}}\n商品：{{thing2.DATA}}\n发货时间：{{time3.DATA}}",
		Example: "订单号：8812\n商品：咖啡豆\n发货时间：2026-11-24 10:00"},
	"10003": {Title: "天气预报提醒", PrimaryIndustry: "IT科技", DeputyIndustry: "互联网|电子商务",
		Content: "城市：{{thing1.DATA}}\n日期：{{date2.DATA}}\n天气：{{thing3.DATA}}\n温度：{{thing4.DATA}}",
		Example: "城市：广州\n日期：2026年11月24日\n天气：多云\n温度：18~25℃"},
	"10004": {Title: "预约成功通知", PrimaryIndustry: "IT科技", DeputyIndustry: "互联网|电子商务",
		Content: "预约人：{{name1.DATA}}\n预约时间：{{time2.DATA}}\n联系电话：{{phone_number3.DATA}}",
		Example: "预约人：李四\n预约时间：2026-11-24 15:00\n联系电话：020-88888888"},
	"10005": {Title: "支付成功通知", PrimaryIndustry: "IT科技", DeputyIndustry: "互联网|电子商务",
		Content: "金额：{{amount1.DATA}}\n时间：{{time2.DATA}}\n订单号：{{character_string3.DATA}}",
		Example: "金额：¥39.80\n时间：2026-11-24 10:00\n订单号：8812"},
}

type templateListEntry struct {
	TemplateID      string `json:"template_id"`
	Title           string `json:"title"`
	PrimaryIndustry string `json:"primary_industry"`
	DeputyIndustry  string `json:"deputy_industry"`
	Content         string `json:"content"`
	Example         string `json:"example"`
}

// handleTemplateList is GET /cgi-bin/template/get_all_private_template:
// the template-message templates (subscription templates are listed by
// /wxaapi/newtmpl/gettemplate).
func (s *Simulator) handleTemplateList(c *apiCall) (any, *apiError) {
	list := []templateListEntry{}
	for _, t := range c.app.Templates {
		if t.Kind == TemplateKindTemplate {
			list = append(list, templateListEntry{t.ID, t.Title, t.PrimaryIndustry, t.DeputyIndustry, t.Content, t.Example})
		}
	}
	return struct {
		TemplateList []templateListEntry `json:"template_list"`
	}{list}, nil
}

// handleTemplateAdd is POST /cgi-bin/template/api_add_template
// {"template_id_short", "keyword_name_list"?}: adds a template from the
// library (40037 for a short id it does not have, 45026 past 25 templates).
func (s *Simulator) handleTemplateAdd(c *apiCall) (any, *apiError) {
	var req struct {
		Short           string   `json:"template_id_short"`
		KeywordNameList []string `json:"keyword_name_list"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	lib, found := templateLibrary[req.Short]
	if !found {
		return nil, wxErr(40037)
	}
	n := 0
	for _, t := range c.app.Templates {
		if t.Kind == TemplateKindTemplate {
			n++
		}
	}
	if n >= maxTemplates {
		return nil, wxErr(45026)
	}
	lib.ID, lib.Kind = newTemplateID(), TemplateKindTemplate
	c.app.Templates = append(c.app.Templates, &appTemplate{TemplateConfig: lib})
	return struct {
		ErrCode    int    `json:"errcode"`
		ErrMsg     string `json:"errmsg"`
		TemplateID string `json:"template_id"`
	}{0, "ok", lib.ID}, nil
}

// handleTemplateDelete is POST /cgi-bin/template/del_private_template.
func (s *Simulator) handleTemplateDelete(c *apiCall) (any, *apiError) {
	var req struct {
		TemplateID string `json:"template_id"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	i := slices.IndexFunc(c.app.Templates, func(t *appTemplate) bool {
		return t.ID == req.TemplateID && t.Kind == TemplateKindTemplate
	})
	if i < 0 {
		return nil, wxErr(40037)
	}
	c.app.Templates = slices.Delete(c.app.Templates, i, i+1)
	return okAnswer, nil
}

type subscribeTemplateEntry struct {
	PriTmplID string `json:"priTmplId"`
	Title     string `json:"title"`
	Content   string `json:"content"`
	Example   string `json:"example"`
	Type      int    `json:"type"` // 2 one-time, 3 long-term
}

// handleSubscribeTemplateList is GET /wxaapi/newtmpl/gettemplate: the
// subscription templates (all one-time in the simulator).
func (s *Simulator) handleSubscribeTemplateList(c *apiCall) (any, *apiError) {
	data := []subscribeTemplateEntry{}
	for _, t := range c.app.Templates {
		if t.Kind == TemplateKindSubscribe {
			data = append(data, subscribeTemplateEntry{t.ID, t.Title, t.Content, t.Example, 2})
		}
	}
	return struct {
		ErrCode int                      `json:"errcode"`
		ErrMsg  string                   `json:"errmsg"`
		Data    []subscribeTemplateEntry `json:"data"`
	}{0, "ok", data}, nil
}

// Templates lists an app's templates (both kinds).
func (s *Simulator) Templates(appID string) []TemplateConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	app := s.st.Apps[appID]
	if app == nil {
		return nil
	}
	out := make([]TemplateConfig, 0, len(app.Templates))
	for _, t := range app.Templates {
		out = append(out, t.TemplateConfig)
	}
	return out
}

// SubscriptionGrants returns the user's unused subscription accepts per
// template id.
func (s *Simulator) SubscriptionGrants(appID, openid string) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, _, err := s.lookupUser(appID, openid)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(u.Grants))
	for k, v := range u.Grants {
		out[k] = v
	}
	return out, nil
}
