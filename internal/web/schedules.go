package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/schedule"
)

// scheduleRoutes registers the schedules pages.
func (c *Console) scheduleRoutes() {
	c.page("GET /admin/schedules", c.schedulesPage)
	c.page("GET /admin/schedules/new", c.newSchedulePage)
	c.page("POST /admin/schedules", c.saveSchedule)
	c.page("POST /admin/schedules/cron", c.cronPreview)
	c.page("GET /admin/schedules/{id}", c.schedulePage)
	c.page("POST /admin/schedules/{id}", c.saveSchedule)
	c.page("POST /admin/schedules/{id}/pause", c.pauseSchedule)
	c.page("POST /admin/schedules/{id}/resume", c.resumeSchedule)
	c.page("POST /admin/schedules/{id}/run", c.runSchedule)
	c.page("POST /admin/schedules/{id}/try", c.trySchedule)
	c.page("GET /admin/schedules/{id}/runs/{run}", c.runPage)
	c.page("GET /admin/schedules/{id}/runs/{run}/status", c.runFragment)
}

var errNoSchedules = problem.New(problem.Unavailable, "schedules_not_configured", "",
	"this server does not run schedules — 此服务未启用定时任务")

// audienceKinds are the audiences the form offers, in order.
var audienceKinds = []string{schedule.AudienceAll, schedule.AudienceTag, schedule.AudienceOpenIDs, schedule.AudienceExternalIDs}

func (c *Console) schedules(w http.ResponseWriter, r *http.Request) (*schedule.Service, bool) {
	if c.opts.Schedules == nil {
		c.fail(w, r, errNoSchedules)
		return nil, false
	}
	return c.opts.Schedules, true
}

func (c *Console) schedulesPage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.schedules(w, r)
	if !ok {
		return
	}
	list, err := s.List(r.Context(), "")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "schedules", "schedules.title", list, nil)
}

// scheduleForm is the create/edit form as typed.
type scheduleForm struct {
	ID                                     int64
	Name, Account, Cron, TimeZone, Enabled string
	Audience, TagID, Recipients            string
	Template, Data, Source, Vars           string
	DefaultCity                            string
	Kinds                                  []string
	// Schedule and Runs are set when editing.
	Schedule *schedule.Schedule
	Runs     []schedule.Run
	// TryOpenID is the follower to try the schedule for; Trial what it
	// would send them.
	TryOpenID string
	Trial     *schedule.Trial
}

func newScheduleForm() scheduleForm {
	return scheduleForm{TimeZone: "Asia/Shanghai", Enabled: "1", Audience: schedule.AudienceAll, Kinds: audienceKinds,
		Cron: "30 7 * * *"}
}

func (c *Console) newSchedulePage(w http.ResponseWriter, r *http.Request) {
	if _, ok := c.schedules(w, r); !ok {
		return
	}
	f := newScheduleForm()
	if len(c.opts.Accounts) > 0 {
		f.Account = c.opts.Accounts[0].Name
	}
	c.render(w, r, http.StatusOK, "schedule", "schedules.new", f, nil)
}

// formOf shows a stored schedule in the form.
func formOf(sc schedule.Schedule) scheduleForm {
	f := newScheduleForm()
	f.ID, f.Name, f.Account, f.Cron, f.TimeZone = sc.ID, sc.Name, sc.Account, sc.Cron, sc.TimeZone
	f.Enabled = ""
	if sc.Enabled {
		f.Enabled = "1"
	}
	f.Audience, f.Template, f.DefaultCity = sc.Audience.Kind, sc.Template, sc.DefaultCity
	if sc.Audience.TagID != 0 {
		f.TagID = strconv.FormatInt(sc.Audience.TagID, 10)
	}
	f.Recipients = strings.Join(append(append([]string(nil), sc.Audience.OpenIDs...), sc.Audience.ExternalIDs...), "\n")
	f.Data = pairLines(sc.Data)
	f.Vars = pairLines(sc.Vars)
	if sc.Source != nil && sc.Source.Type != "" && sc.Source.Type != schedule.SourceStatic {
		b, _ := json.MarshalIndent(sc.Source, "", "  ")
		f.Source = string(b)
	}
	s := sc
	f.Schedule = &s
	return f
}

// pairLines writes a map as "name = value" lines, sorted.
func pairLines(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, m[k])
	}
	return b.String()
}

// parsePairs reads "name = value" lines; field names the form field for
// the error.
func parsePairs(text, field string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, problem.Invalidf("invalid_"+field, field,
				"line %d is not \"name = value\" — 第 %d 行应为「名称 = 值」", i+1, i+1)
		}
		out[name] = strings.TrimSpace(value)
	}
	return out, nil
}

// input turns the form into the service's input; problems name the form
// field.
func (f *scheduleForm) input() (schedule.Input, error) {
	in := schedule.Input{Name: strings.TrimSpace(f.Name), Account: f.Account, Cron: strings.TrimSpace(f.Cron), TimeZone: strings.TrimSpace(f.TimeZone)}
	enabled := f.Enabled == "1"
	in.Enabled = &enabled
	in.Audience.Kind = f.Audience
	ids := strings.Fields(strings.NewReplacer(",", " ", "，", " ").Replace(f.Recipients))
	switch f.Audience {
	case schedule.AudienceTag:
		n, err := strconv.ParseInt(strings.TrimSpace(f.TagID), 10, 64)
		if err != nil {
			return in, problem.Invalidf("invalid_tag_id", "audience.tag_id", "the tag id is a number — 标签 ID 应为数字")
		}
		in.Audience.TagID = n
	case schedule.AudienceOpenIDs:
		in.Audience.OpenIDs = ids
	case schedule.AudienceExternalIDs:
		in.Audience.ExternalIDs = ids
	}
	in.Template = strings.TrimSpace(f.Template)
	in.DefaultCity = strings.TrimSpace(f.DefaultCity)
	var err error
	if in.Data, err = parsePairs(f.Data, "data"); err != nil {
		return in, err
	}
	if in.Vars, err = parsePairs(f.Vars, "vars"); err != nil {
		return in, err
	}
	if len(in.Vars) == 0 {
		in.Vars = nil
	}
	if src := strings.TrimSpace(f.Source); src != "" {
		var s schedule.Source
		dec := json.NewDecoder(strings.NewReader(src))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			return in, problem.Invalidf("invalid_source", "source", "the data source is not valid JSON: %v — 数据源不是有效的 JSON", err)
		}
		in.Source = &s
	}
	return in, nil
}

func readScheduleForm(r *http.Request) scheduleForm {
	f := newScheduleForm()
	v := r.PostFormValue
	f.Name, f.Account, f.Cron, f.TimeZone, f.Enabled = v("name"), v("account"), v("cron"), v("timezone"), v("enabled")
	f.Audience, f.TagID, f.Recipients = v("audience"), v("tag_id"), v("recipients")
	f.Template, f.Data, f.Source, f.Vars, f.DefaultCity = v("template"), v("data"), v("source"), v("vars"), v("default_city")
	return f
}

// saveSchedule is POST /admin/schedules (create) and /admin/schedules/{id}
// (replace). Bad input brings the form back with the field marked; nothing
// is saved.
func (c *Console) saveSchedule(w http.ResponseWriter, r *http.Request) {
	s, ok := c.schedules(w, r)
	if !ok {
		return
	}
	f := readScheduleForm(r)
	editing := r.PathValue("id") != ""
	if editing {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			c.fail(w, r, errPageNotFound)
			return
		}
		sc, err := s.Get(r.Context(), id)
		if err != nil {
			c.fail(w, r, notFoundPage(err))
			return
		}
		f.ID, f.Schedule = id, &sc
	}
	title := "schedules.new"
	if editing {
		title = "schedules.edit"
	}
	in, err := f.input()
	if err != nil {
		c.failForm(w, r, "schedule", title, f, err)
		return
	}
	var sc schedule.Schedule
	if editing {
		sc, err = s.Update(r.Context(), f.ID, in)
	} else {
		sc, err = s.Create(r.Context(), in)
	}
	if err != nil {
		c.failForm(w, r, "schedule", title, f, err)
		return
	}
	action := "schedule.create"
	if editing {
		action = "schedule.update"
	}
	c.audit(r, action, strconv.FormatInt(sc.ID, 10), sc.Name)
	http.Redirect(w, r, fmt.Sprintf("/admin/schedules/%d?done=saved", sc.ID), http.StatusSeeOther)
}

// notFoundPage shows a domain's not-found as the console's own.
func notFoundPage(err error) error {
	if p, ok := problem.As(err); ok && p.Kind == problem.NotFound {
		return errPageNotFound
	}
	return err
}

func (c *Console) scheduleByID(w http.ResponseWriter, r *http.Request) (*schedule.Service, schedule.Schedule, bool) {
	s, ok := c.schedules(w, r)
	if !ok {
		return nil, schedule.Schedule{}, false
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		c.fail(w, r, errPageNotFound)
		return nil, schedule.Schedule{}, false
	}
	sc, err := s.Get(r.Context(), id)
	if err != nil {
		c.fail(w, r, notFoundPage(err))
		return nil, schedule.Schedule{}, false
	}
	return s, sc, true
}

// schedulePage is the edit form with the run history.
func (c *Console) schedulePage(w http.ResponseWriter, r *http.Request) {
	c.showSchedule(w, r, "", nil, nil)
}

// showSchedule renders a schedule's page, with a trial's outcome or its
// error when there is one.
func (c *Console) showSchedule(w http.ResponseWriter, r *http.Request, tryOpenID string, trial *schedule.Trial, tryErr error) {
	s, sc, ok := c.scheduleByID(w, r)
	if !ok {
		return
	}
	f := formOf(sc)
	runs, err := s.Runs(r.Context(), sc.ID, schedule.RunFilter{Limit: 20})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	f.Runs, f.TryOpenID, f.Trial = runs, tryOpenID, trial
	if f.TryOpenID == "" && len(sc.Audience.OpenIDs) > 0 {
		f.TryOpenID = sc.Audience.OpenIDs[0]
	}
	if tryErr != nil {
		p, ok := problem.As(tryErr)
		if !ok || p.Kind == problem.Internal {
			c.fail(w, r, tryErr)
			return
		}
		c.render(w, r, p.Status(), "schedule", "schedules.edit", f, map[string]string{"try": p.In(lang(r))})
		return
	}
	c.render(w, r, http.StatusOK, "schedule", "schedules.edit", f, nil)
}

// trySchedule is POST /admin/schedules/{id}/try (openid): what a run now
// would send that follower; nothing is sent.
func (c *Console) trySchedule(w http.ResponseWriter, r *http.Request) {
	s, sc, ok := c.scheduleByID(w, r)
	if !ok {
		return
	}
	openid := strings.TrimSpace(r.PostFormValue("openid"))
	tr, err := s.Try(r.Context(), sc.ID, openid)
	if err != nil {
		c.showSchedule(w, r, openid, nil, err)
		return
	}
	c.showSchedule(w, r, openid, &tr, nil)
}

// cronView is the cron preview: the next fire times in the schedule's zone.
type cronView struct {
	Times []string
	Zone  string
	Error string
}

// cronPreview answers the form as one types: the next five fire times.
func (c *Console) cronPreview(w http.ResponseWriter, r *http.Request) {
	v := cronView{Zone: strings.TrimSpace(r.PostFormValue("timezone"))}
	cr, err := schedule.ParseCron(r.PostFormValue("cron"), v.Zone)
	if err != nil {
		if p, ok := problem.As(err); ok {
			v.Error = p.In(lang(r))
		} else {
			v.Error = err.Error()
		}
	} else {
		for _, t := range cr.NextN(c.now(), 5) {
			v.Times = append(v.Times, t.Format("2006-01-02 15:04 Mon"))
		}
	}
	c.fragment(w, r, "schedule", "cron-preview", v, true)
}

func (c *Console) setScheduleEnabled(w http.ResponseWriter, r *http.Request, enabled bool) {
	s, sc, ok := c.scheduleByID(w, r)
	if !ok {
		return
	}
	if _, err := s.SetEnabled(r.Context(), sc.ID, enabled); err != nil {
		c.fail(w, r, err)
		return
	}
	action := "schedule.pause"
	if enabled {
		action = "schedule.resume"
	}
	c.audit(r, action, strconv.FormatInt(sc.ID, 10), sc.Name)
	http.Redirect(w, r, "/admin/schedules?done=saved", http.StatusSeeOther)
}

func (c *Console) pauseSchedule(w http.ResponseWriter, r *http.Request) {
	c.setScheduleEnabled(w, r, false)
}
func (c *Console) resumeSchedule(w http.ResponseWriter, r *http.Request) {
	c.setScheduleEnabled(w, r, true)
}

// runSchedule is "run now": a manual run, then its page.
func (c *Console) runSchedule(w http.ResponseWriter, r *http.Request) {
	s, sc, ok := c.scheduleByID(w, r)
	if !ok {
		return
	}
	run, err := s.RunNow(r.Context(), sc.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.audit(r, "schedule.run", strconv.FormatInt(sc.ID, 10), sc.Name)
	http.Redirect(w, r, fmt.Sprintf("/admin/schedules/%d/runs/%d", sc.ID, run.ID), http.StatusSeeOther)
}

// runView is one run with its recipients.
type runView struct {
	Schedule schedule.Schedule
	Run      schedule.RunDetail
	Done     bool
}

func (c *Console) loadRun(w http.ResponseWriter, r *http.Request) (runView, bool) {
	s, sc, ok := c.scheduleByID(w, r)
	if !ok {
		return runView{}, false
	}
	runID, err := strconv.ParseInt(r.PathValue("run"), 10, 64)
	if err != nil {
		c.fail(w, r, errPageNotFound)
		return runView{}, false
	}
	d, err := s.GetRunPage(r.Context(), sc.ID, runID, 0, 200)
	if err != nil {
		c.fail(w, r, notFoundPage(err))
		return runView{}, false
	}
	// Final once planned and handed over, and no recipient shown still on
	// its way (Counts.Sent includes the delivered ones).
	done := d.Status == schedule.RunFailed || d.Status == schedule.RunMissed || (d.Status == schedule.RunDone && d.Counts.Pending == 0)
	for _, rr := range d.Recipients {
		switch rr.Status {
		case "pending", "queued", "sent":
			done = done && d.Status != schedule.RunDone
		}
	}
	return runView{Schedule: sc, Run: d, Done: done}, true
}

func (c *Console) runPage(w http.ResponseWriter, r *http.Request) {
	v, ok := c.loadRun(w, r)
	if !ok {
		return
	}
	c.render(w, r, http.StatusOK, "schedule_run", "schedules.run_title", v, nil)
}

func (c *Console) runFragment(w http.ResponseWriter, r *http.Request) {
	v, ok := c.loadRun(w, r)
	if !ok {
		return
	}
	c.fragment(w, r, "schedule_run", "run-state", v, v.Done)
}

// scheduleTexts are the schedules pages' texts.
var scheduleTexts = texts{
	"schedules.title":            {"定时任务", "Schedules"},
	"schedules.intro":            {"按 cron 定时给一批粉丝发模板消息，比如每天早上的天气预报。", "Send a template message to a group of followers on a cron schedule, such as a morning weather report."},
	"schedules.new":              {"新建定时任务", "New schedule"},
	"schedules.edit":             {"编辑定时任务", "Edit schedule"},
	"schedules.none":             {"还没有定时任务。", "No schedule yet."},
	"schedules.name":             {"名称", "Name"},
	"schedules.account":          {"账号", "Account"},
	"schedules.cron":             {"cron（分 时 日 月 周）", "cron (minute hour day month weekday)"},
	"schedules.cron_hint":        {"例：30 7 * * * 每天 07:30；0 9 * * 1-5 工作日 09:00；@every 2h 每 2 小时", "e.g. 30 7 * * * every day at 07:30; 0 9 * * 1-5 weekdays at 09:00; @every 2h"},
	"schedules.timezone":         {"时区", "Time zone"},
	"schedules.enabled":          {"启用", "Enabled"},
	"schedules.next":             {"下次运行", "Next run"},
	"schedules.next_five":        {"接下来 5 次（%s）", "The next five times (%s)"},
	"schedules.state":            {"状态", "State"},
	"schedules.audience":         {"发给谁", "Audience"},
	"schedules.aud.all":          {"全部关注中的粉丝", "Every follower"},
	"schedules.aud.tag":          {"某个标签的粉丝", "Followers with a tag"},
	"schedules.aud.openids":      {"指定 openid", "These openids"},
	"schedules.aud.external_ids": {"指定外部 ID（绑定的粉丝）", "These external ids (their bound followers)"},
	"schedules.tag_id":           {"标签 ID", "Tag id"},
	"schedules.recipients":       {"openid 或外部 ID（每行一个）", "openids or external ids (one per line)"},
	"schedules.template":         {"模板或别名", "Template or alias"},
	"schedules.data":             {"字段（每行「字段 = 模板」）", "Fields (one \"field = template\" per line)"},
	"schedules.data_hint":        {"值是 Go 模板：{{.City}}、{{.Attr.name}}、{{.Vars.name}}、{{get .Response \"daily.0.textDay\"}}", "Values are Go templates: {{.City}}, {{.Attr.name}}, {{.Vars.name}}, {{get .Response \"daily.0.textDay\"}}"},
	"schedules.vars":             {"常量（每行「名称 = 值」）", "Constants (one \"name = value\" per line)"},
	"schedules.default_city":     {"默认城市", "Default city"},
	"schedules.source":           {"数据源（JSON，选填）", "Data source (JSON, optional)"},
	"schedules.source_hint":      {"例：{\"type\":\"http\",\"url\":\"https://…?location={{.Attr.location}}&key={{secret \\\"QWEATHER_KEY\\\"}}\"}", "e.g. {\"type\":\"http\",\"url\":\"https://…?location={{.Attr.location}}&key={{secret \\\"QWEATHER_KEY\\\"}}\"}"},
	"schedules.save":             {"保存", "Save"},
	"schedules.pause":            {"暂停", "Pause"},
	"schedules.resume":           {"恢复", "Resume"},
	"schedules.run_now":          {"立即运行", "Run now"},
	"schedules.runs":             {"运行记录", "Runs"},
	"schedules.try":              {"试运行（只算给一个粉丝看，不发送）", "Try it for one follower (nothing is sent)"},
	"schedules.try_openid":       {"粉丝 openid", "Follower openid"},
	"schedules.try_submit":       {"试一下", "Try"},
	"schedules.try_ready":        {"现在运行会发给 %s 这些内容（调用数据源 %d 次）：", "A run now would send %s this (%d data source calls):"},
	"schedules.try_skipped":      {"现在运行会跳过 %s：%s", "A run now would skip %s: %s"},
	"schedules.no_runs":          {"还没有运行过。", "Not run yet."},
	"schedules.due":              {"计划时间", "Due"},
	"schedules.kind":             {"方式", "Kind"},
	"schedules.kind.cron":        {"定时", "scheduled"},
	"schedules.kind.manual":      {"手动", "manual"},
	"schedules.counts":           {"接收人", "Recipients"},
	"schedules.counts_fmt":       {"%d 人：送达 %d，已发 %d，待发 %d，跳过 %d，失败 %d", "%d: %d delivered, %d sent, %d pending, %d skipped, %d failed"},
	"schedules.run_title":        {"运行详情", "Run"},
	"schedules.reason":           {"原因", "Reason"},
	"schedules.message":          {"消息", "Message"},
	"schedules.back":             {"返回定时任务", "Back to the schedule"},
	"schedules.paused":           {"已暂停", "paused"},
	"status.sending_run":         {"发送中", "sending"},
	"status.missed":              {"已错过", "missed"},
}
