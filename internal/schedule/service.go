package schedule

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/push"
)

// Sender hands messages to the push pipeline; *push.Service is one.
type Sender interface {
	Send(ctx context.Context, req push.Request, o push.SendOptions) (*push.SendResult, error)
}

// JobInserter writes River jobs inside a transaction; *queue.Queue is one.
type JobInserter interface {
	InsertManyTx(ctx context.Context, tx *sql.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// ExternalIDResolver returns the openids an external id is bound to in an
// account; *follower.Store is one.
type ExternalIDResolver interface {
	ResolveExternalID(ctx context.Context, account, externalID string) ([]string, error)
}

// Options build a Service. DB and Accounts are required; Push and Jobs are
// needed to run schedules (without them the Service manages schedules
// only).
type Options struct {
	DB       *db.DB
	Accounts []config.Account
	Push     Sender
	Jobs     JobInserter
	// Bindings resolves external ids; without it an external_ids audience
	// skips everyone as not_bound.
	Bindings ExternalIDResolver
	// HTTPClient calls data sources; a client without cookies or proxy
	// settings from the environment when nil.
	HTTPClient *http.Client
	// Secrets fill {{secret "NAME"}}; none when nil.
	Secrets Secrets
	Logger  *slog.Logger
	// Now is the clock of due times, misfires and manual runs; time.Now
	// when nil.
	Now func() time.Time
	// Queue is the River queue of tick and run jobs; River's default when
	// empty.
	Queue string
	// SourceConcurrency is how many distinct source URLs a run fetches at
	// once (default 8).
	SourceConcurrency int
	// SourceBackoff is the wait before the first retry of a source call,
	// doubled for each further one (default 200 ms).
	SourceBackoff time.Duration
}

// Service keeps schedules and runs them.
type Service struct {
	opts     Options
	db       *db.DB
	log      *slog.Logger
	now      func() time.Time
	accounts map[string]config.Account
	client   *http.Client
}

// New builds the service.
func New(opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Queue == "" {
		opts.Queue = river.QueueDefault
	}
	if opts.SourceConcurrency <= 0 {
		opts.SourceConcurrency = DefaultSourceConcurrency
	}
	if opts.SourceBackoff <= 0 {
		opts.SourceBackoff = 200 * time.Millisecond
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: opts.SourceConcurrency, IdleConnTimeout: time.Minute},
			// Headers may carry an API key: follow redirects on the same
			// host only (http → https, a moved path).
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				if req.URL.Hostname() != via[0].URL.Hostname() {
					return errors.New("redirected to another host, which is not followed (it would receive the headers)")
				}
				return nil
			},
		}
	}
	s := &Service{opts: opts, db: opts.DB, log: opts.Logger, now: opts.Now, accounts: map[string]config.Account{}, client: client}
	for _, a := range opts.Accounts {
		s.accounts[a.Name] = a
	}
	return s
}

func (s *Service) stamp() time.Time { return db.Timestamp(s.now()) }

// Limits of a schedule's fields.
const (
	maxName       = 100
	maxTemplate   = 64 << 10
	maxAudience   = 100_000
	maxVars       = 100
	maxDataFields = 50
)

// checked is a validated input.
type checked struct {
	in    Input
	cron  *Cron
	grace time.Duration
}

// validate checks an input and fills its defaults.
func (s *Service) validate(in Input) (*checked, error) {
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		return nil, problem.Invalidf("name_required", "name", "name is required, e.g. 每日天气 — 请填写名称 (name)")
	case utf8.RuneCountInString(in.Name) > maxName:
		return nil, problem.Invalidf("name_too_long", "name", "name is longer than %d characters — 名称不能超过 %d 个字符", maxName, maxName)
	}
	if in.Account == "" {
		return nil, problem.Invalidf("account_required", "account", "account is required — 请指定 account（账号名）")
	}
	if _, ok := s.accounts[in.Account]; !ok {
		return nil, problem.NotFoundf("account_not_found", "account", "unknown account %q — 账号 %q 不存在", in.Account, in.Account)
	}
	if in.TimeZone == "" {
		in.TimeZone = DefaultTimeZone
	}
	c, err := ParseCron(in.Cron, in.TimeZone)
	if err != nil {
		return nil, err
	}
	in.Cron = c.expr
	grace := DefaultMisfireGrace
	if in.MisfireGrace != nil {
		grace = time.Duration(*in.MisfireGrace)
		if grace < MinMisfireGrace || grace > MaxMisfireGrace {
			return nil, problem.Invalidf("invalid_misfire_grace", "misfire_grace",
				"misfire_grace must be between 1m and 168h, got %s — misfire_grace（错过后补发的宽限时间）须在 1m 到 168h 之间", grace)
		}
	}
	if err := checkAudience(&in.Audience); err != nil {
		return nil, err
	}
	switch in.Channel {
	case "", push.ChannelTemplate, push.ChannelSubscribe, push.ChannelMPSubscribe:
	default:
		return nil, problem.Invalidf("invalid_channel", "channel",
			"channel must be template, subscribe or mp_subscribe, got %q — channel 只能是 template、subscribe 或 mp_subscribe", in.Channel)
	}
	if strings.TrimSpace(in.Template) == "" {
		return nil, problem.Invalidf("template_required", "template", "template is required: an alias or a template_id — 请填写 template（别名或模板 ID）")
	}
	if len(in.Data) == 0 {
		return nil, problem.Invalidf("data_required", "data",
			`data is required: template fields and the Go templates that fill them, e.g. {"thing1": "{{.City}}"} — 请填写 data（模板字段及其取值模板）`)
	}
	if len(in.Data) > maxDataFields || len(in.Vars) > maxVars {
		return nil, problem.Invalidf("too_many_fields", "data", "at most %d data fields and %d vars — data 最多 %d 个字段", maxDataFields, maxVars, maxDataFields)
	}
	for k, v := range in.Data {
		if len(v) > maxTemplate {
			return nil, problem.Invalidf("template_too_long", "data."+k, "data.%s is longer than 64 KiB — data.%s 过长", k, k)
		}
	}
	if err := checkSource(in.Source); err != nil {
		return nil, err
	}
	if in.Source != nil && (in.Source.Type == "" || in.Source.Type == SourceStatic) {
		in.Source = nil
	}
	for tag := range in.TagCities {
		if _, err := parseTagID(tag); err != nil {
			return nil, problem.Invalidf("invalid_tag_cities", "tag_cities."+tag,
				"tag_cities keys are WeChat tag ids (numbers), got %q — tag_cities 的键须为标签 ID（数字）", tag)
		}
	}
	// Parse every template now, so mistakes are reported at once.
	if _, err := compile(&in.Spec, time.Now(), func(string) (string, error) { return "", nil }); err != nil {
		if e, ok := problem.As(err); ok && strings.Contains(e.Message, `"secret" not defined`) {
			e.Message += ` (secrets can be used in source.url and source.headers only — secret 只能用于 source.url 和 source.headers)`
		}
		return nil, err
	}
	return &checked{in: in, cron: c, grace: grace}, nil
}

func checkAudience(a *Audience) error {
	clean := func(list []string) []string {
		var out []string
		seen := map[string]bool{}
		for _, v := range list {
			v = strings.TrimSpace(v)
			if v != "" && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
		return out
	}
	a.OpenIDs, a.ExternalIDs = clean(a.OpenIDs), clean(a.ExternalIDs)
	bad := func(format string, args ...any) error {
		return problem.Invalidf("invalid_audience", "audience", format, args...)
	}
	switch a.Kind {
	case AudienceAll:
		if a.TagID != 0 || len(a.OpenIDs) > 0 || len(a.ExternalIDs) > 0 {
			return bad("audience kind all takes no tag_id, openids or external_ids — audience 为 all 时不需要其他字段")
		}
	case AudienceTag:
		if a.TagID <= 0 || len(a.OpenIDs) > 0 || len(a.ExternalIDs) > 0 {
			return bad("audience kind tag needs tag_id (a WeChat tag id) and nothing else — audience 为 tag 时须填写 tag_id（标签 ID）")
		}
	case AudienceOpenIDs:
		if len(a.OpenIDs) == 0 || a.TagID != 0 || len(a.ExternalIDs) > 0 {
			return bad("audience kind openids needs a list of openids and nothing else — audience 为 openids 时须填写 openids 列表")
		}
	case AudienceExternalIDs:
		if len(a.ExternalIDs) == 0 || a.TagID != 0 || len(a.OpenIDs) > 0 {
			return bad("audience kind external_ids needs a list of external_ids and nothing else — audience 为 external_ids 时须填写 external_ids 列表")
		}
	case "":
		return problem.Invalidf("audience_required", "audience.kind",
			`audience.kind is required: all, tag, openids or external_ids, e.g. {"kind":"all"} — 请填写 audience.kind：all、tag、openids 或 external_ids`)
	default:
		return problem.Invalidf("invalid_audience", "audience.kind",
			"audience.kind must be all, tag, openids or external_ids, got %q — audience.kind 只能是 all、tag、openids 或 external_ids", a.Kind)
	}
	if len(a.OpenIDs) > maxAudience || len(a.ExternalIDs) > maxAudience {
		return bad("at most %d openids or external_ids — 最多 %d 个接收者", maxAudience, maxAudience)
	}
	return nil
}

func checkSource(src *Source) error {
	if src == nil {
		return nil
	}
	switch src.Type {
	case "", SourceStatic:
		if src.URL != "" || len(src.Headers) > 0 || len(src.Expect) > 0 {
			return problem.Invalidf("invalid_source", "source.type", `source.type must be "http" for a source with a url — 带 url 的数据源须设置 source.type 为 http`)
		}
		return nil
	case SourceHTTP:
	default:
		return problem.Invalidf("invalid_source", "source.type", "source.type must be http or static, got %q — source.type 只能是 http 或 static", src.Type)
	}
	u := strings.TrimSpace(src.URL)
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return problem.Invalidf("invalid_source_url", "source.url",
			"source.url must be an http:// or https:// URL (a Go template), e.g. https://devapi.qweather.com/v7/weather/now?location={{.Attr.location}}&key={{secret \"QWEATHER_KEY\"}} — source.url 须为 http(s) 地址")
	}
	if t := time.Duration(src.Timeout); t < 0 || t > MaxSourceTimeout {
		return problem.Invalidf("invalid_source_timeout", "source.timeout", "source.timeout must be between 1s and 1m — source.timeout 须在 1s 到 1m 之间")
	}
	if src.Retries != nil && (*src.Retries < 0 || *src.Retries > MaxSourceRetries) {
		return problem.Invalidf("invalid_source_retries", "source.retries", "source.retries must be between 0 and %d — source.retries 须在 0 到 %d 之间", MaxSourceRetries, MaxSourceRetries)
	}
	for name := range src.Headers {
		if name == "" || strings.ContainsAny(name, " :\r\n") {
			return problem.Invalidf("invalid_source_header", "source.headers", "source.headers has an invalid header name %q — 请求头名称无效", name)
		}
	}
	return nil
}

const scheduleColumns = `id, name, account, cron, timezone, spec, enabled, misfire_grace_seconds, next_due_at, created_at, updated_at`

func scanSchedule(row interface{ Scan(...any) error }) (Schedule, error) {
	var (
		sc    Schedule
		spec  string
		grace int64
		next  sql.NullTime
	)
	if err := row.Scan(&sc.ID, &sc.Name, &sc.Account, &sc.Cron, &sc.TimeZone, &spec, &sc.Enabled, &grace, &next, &sc.CreatedAt, &sc.UpdatedAt); err != nil {
		return sc, err
	}
	if err := json.Unmarshal([]byte(spec), &sc.Spec); err != nil {
		return sc, fmt.Errorf("schedule %d: spec: %w", sc.ID, err)
	}
	sc.MisfireGrace = Duration(time.Duration(grace) * time.Second)
	loc, err := LoadZone(sc.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	if next.Valid && sc.Enabled {
		t := next.Time.In(loc)
		sc.NextRunAt = &t
	}
	sc.CreatedAt, sc.UpdatedAt = sc.CreatedAt.UTC(), sc.UpdatedAt.UTC()
	return sc, nil
}

// Create stores a new schedule; its first due time is the first after now.
func (s *Service) Create(ctx context.Context, in Input) (Schedule, error) {
	c, err := s.validate(in)
	if err != nil {
		return Schedule{}, err
	}
	now := s.stamp()
	enabled := c.in.Enabled == nil || *c.in.Enabled
	next, err := c.cron.nextDue(now)
	if err != nil {
		return Schedule{}, problem.Invalidf("invalid_cron", "cron", "%v — cron 表达式五年内没有执行时间", err)
	}
	spec, _ := json.Marshal(c.in.Spec)
	var id int64
	err = s.db.QueryRowContext(ctx, `
INSERT INTO schedules (name, account, cron, timezone, spec, enabled, misfire_grace_seconds, next_due_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id`,
		c.in.Name, c.in.Account, c.in.Cron, c.in.TimeZone, string(spec), enabled, int64(c.grace/time.Second), db.Timestamp(next), now).Scan(&id)
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule: create: %w", err)
	}
	return s.Get(ctx, id)
}

// ErrNotFound is returned for an unknown schedule id.
var ErrNotFound = problem.NotFoundf("schedule_not_found", "id", "no such schedule — 定时任务不存在")

// Get returns one schedule.
func (s *Service) Get(ctx context.Context, id int64) (Schedule, error) {
	sc, err := scanSchedule(s.db.QueryRowContext(ctx, `SELECT `+scheduleColumns+` FROM schedules WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Schedule{}, ErrNotFound
	}
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule: get %d: %w", id, err)
	}
	return sc, nil
}

// List returns the schedules, of one account when account is not empty.
func (s *Service) List(ctx context.Context, account string) ([]Schedule, error) {
	query := `SELECT ` + scheduleColumns + ` FROM schedules`
	var args []any
	if account != "" {
		query += ` WHERE account = $1`
		args = append(args, account)
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("schedule: list: %w", err)
	}
	defer rows.Close()
	out := []Schedule{}
	for rows.Next() {
		sc, err := scanSchedule(rows)
		if err != nil {
			return nil, fmt.Errorf("schedule: list: %w", err)
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

// Update replaces a schedule. Its next due time is kept unless the cron
// expression, the zone or enabled change; then it is the first after now.
func (s *Service) Update(ctx context.Context, id int64, in Input) (Schedule, error) {
	c, err := s.validate(in)
	if err != nil {
		return Schedule{}, err
	}
	old, err := s.Get(ctx, id)
	if err != nil {
		return Schedule{}, err
	}
	enabled := c.in.Enabled == nil || *c.in.Enabled
	now := s.stamp()
	spec, _ := json.Marshal(c.in.Spec)
	query := `UPDATE schedules SET name = $1, account = $2, cron = $3, timezone = $4, spec = $5, enabled = $6, misfire_grace_seconds = $7, updated_at = $8`
	args := []any{c.in.Name, c.in.Account, c.in.Cron, c.in.TimeZone, string(spec), enabled, int64(c.grace / time.Second), now}
	if old.Cron != c.in.Cron || old.TimeZone != c.in.TimeZone || old.Enabled != enabled {
		next, err := c.cron.nextDue(now)
		if err != nil {
			return Schedule{}, problem.Invalidf("invalid_cron", "cron", "%v — cron 表达式五年内没有执行时间", err)
		}
		query += `, next_due_at = $9 WHERE id = $10`
		args = append(args, db.Timestamp(next), id)
	} else {
		query += ` WHERE id = $9`
		args = append(args, id)
	}
	if _, err := s.db.ExecContext(ctx, query, args...); err != nil {
		return Schedule{}, fmt.Errorf("schedule: update %d: %w", id, err)
	}
	return s.Get(ctx, id)
}

// Delete removes a schedule with its run history. A run in progress stops
// at its next step; messages already handed to the push pipeline are sent.
func (s *Service) Delete(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM schedules WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("schedule: delete %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetEnabled pauses (false) or resumes (true) a schedule. Resuming does
// not catch up on the due times of the pause: the next due time is the
// first after now.
func (s *Service) SetEnabled(ctx context.Context, id int64, enabled bool) (Schedule, error) {
	sc, err := s.Get(ctx, id)
	if err != nil {
		return Schedule{}, err
	}
	if sc.Enabled == enabled {
		return sc, nil
	}
	now := s.stamp()
	if !enabled {
		_, err = s.db.ExecContext(ctx, `UPDATE schedules SET enabled = FALSE, updated_at = $1 WHERE id = $2`, now, id)
	} else {
		c, cerr := ParseCron(sc.Cron, sc.TimeZone)
		if cerr != nil {
			return Schedule{}, cerr
		}
		next, nerr := c.nextDue(now)
		if nerr != nil {
			return Schedule{}, problem.Invalidf("invalid_cron", "cron", "%v — cron 表达式五年内没有执行时间", nerr)
		}
		_, err = s.db.ExecContext(ctx, `UPDATE schedules SET enabled = TRUE, next_due_at = $1, updated_at = $2 WHERE id = $3`, db.Timestamp(next), now, id)
	}
	if err != nil {
		return Schedule{}, fmt.Errorf("schedule: pause/resume %d: %w", id, err)
	}
	return s.Get(ctx, id)
}

// NextTimes previews the next n due times (at most 100) of a schedule, in
// its zone, from its next due time on (from now while it is paused).
func (s *Service) NextTimes(ctx context.Context, id int64, n int) ([]time.Time, error) {
	sc, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		n = 5
	}
	n = min(n, 100)
	c, err := ParseCron(sc.Cron, sc.TimeZone)
	if err != nil {
		return nil, err
	}
	out := []time.Time{}
	after := s.now()
	if sc.NextRunAt != nil {
		first := sc.NextRunAt.In(c.loc)
		out = append(out, first)
		after = first
		n--
	}
	return append(out, c.NextN(after, n)...), nil
}
