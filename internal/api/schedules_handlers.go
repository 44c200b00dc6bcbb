package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/wxgate/wxgate/internal/problem"
	"github.com/wxgate/wxgate/internal/schedule"
)

// Schedules manages scheduled pushes and the follower attributes they read
// (*schedule.Service).
type Schedules interface {
	List(ctx context.Context, account string) ([]schedule.Schedule, error)
	Create(ctx context.Context, in schedule.Input) (schedule.Schedule, error)
	Get(ctx context.Context, id int64) (schedule.Schedule, error)
	Update(ctx context.Context, id int64, in schedule.Input) (schedule.Schedule, error)
	Delete(ctx context.Context, id int64) error
	SetEnabled(ctx context.Context, id int64, enabled bool) (schedule.Schedule, error)
	RunNow(ctx context.Context, id int64) (schedule.Run, error)
	Try(ctx context.Context, id int64, openid string) (schedule.Trial, error)
	NextTimes(ctx context.Context, id int64, n int) ([]time.Time, error)
	Runs(ctx context.Context, id int64, f schedule.RunFilter) ([]schedule.Run, error)
	GetRunPage(ctx context.Context, id, runID, after int64, limit int) (schedule.RunDetail, error)

	Attributes(ctx context.Context, account, openid string) (map[string]string, error)
	SetAttributes(ctx context.Context, account, openid string, attrs map[string]*string, merge bool) (map[string]string, error)
}

var errNoSchedules = &problem.Error{Kind: problem.Unavailable, Code: "not_configured",
	Message: "schedules are not available on this server — 此服务未启用定时任务"}

// maxScheduleBody bounds a schedule's body: an openids audience of
// 100 000 is about 3 MB.
const maxScheduleBody = 8 << 20

// readScheduleBody reads a JSON body, refusing unknown fields.
func readScheduleBody(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxScheduleBody+1))
	if err != nil {
		return &problem.Error{Kind: problem.Invalid, Code: "invalid_body", Message: "the body could not be read — 无法读取请求体"}
	}
	if len(body) > maxScheduleBody {
		return &problem.Error{Kind: problem.TooLarge, Code: "body_too_large", Message: "the body is larger than 8 MiB — 请求体过大"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &problem.Error{Kind: problem.Invalid, Code: "invalid_json",
			Message: "the body is not the expected JSON: " + err.Error() + " — 请求体不是有效的 JSON"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &problem.Error{Kind: problem.Invalid, Code: "invalid_json",
			Message: "the body has more after its JSON object — 请求体在 JSON 之后还有多余内容"}
	}
	return nil
}

// scheduleID reads {id}; an id that is not a number is an unknown schedule.
func scheduleID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		if name == "run_id" {
			return 0, schedule.ErrRunNotFound
		}
		return 0, schedule.ErrNotFound
	}
	return id, nil
}

// scheduleQueryInt reads a non-negative integer parameter.
func scheduleQueryInt(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &problem.Error{Kind: problem.Invalid, Code: "invalid_" + name, Message: name + " must be a non-negative integer — " + name + " 须为非负整数"}
	}
	return n, nil
}

// withSchedules answers 503 when the server has no schedules.
func (h *handler) withSchedules(f func(w http.ResponseWriter, r *http.Request, s Schedules) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if h.opts.Schedules == nil {
			h.writeError(w, r, errNoSchedules)
			return
		}
		if err := f(w, r, h.opts.Schedules); err != nil {
			h.writeError(w, r, err)
		}
	}
}

// listSchedules is GET /api/v1/schedules?account= (scope read).
func (h *handler) listSchedules(w http.ResponseWriter, r *http.Request, s Schedules) error {
	list, err := s.List(r.Context(), r.URL.Query().Get("account"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"schedules": list})
	return nil
}

// createSchedule is POST /api/v1/schedules (scope admin) → 201 with the
// schedule and its next_run_at.
func (h *handler) createSchedule(w http.ResponseWriter, r *http.Request, s Schedules) error {
	var in schedule.Input
	if err := readScheduleBody(r, &in); err != nil {
		return err
	}
	sc, err := s.Create(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/schedules/"+strconv.FormatInt(sc.ID, 10))
	writeJSON(w, http.StatusCreated, sc)
	return nil
}

// getSchedule is GET /api/v1/schedules/{id} (scope read).
func (h *handler) getSchedule(w http.ResponseWriter, r *http.Request, s Schedules) error {
	id, err := scheduleID(r, "id")
	if err != nil {
		return err
	}
	sc, err := s.Get(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sc)
	return nil
}

// updateSchedule is PUT /api/v1/schedules/{id} (scope admin): the body
// replaces the whole schedule, as in a create.
func (h *handler) updateSchedule(w http.ResponseWriter, r *http.Request, s Schedules) error {
	id, err := scheduleID(r, "id")
	if err != nil {
		return err
	}
	var in schedule.Input
	if err := readScheduleBody(r, &in); err != nil {
		return err
	}
	sc, err := s.Update(r.Context(), id, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sc)
	return nil
}

// deleteSchedule is DELETE /api/v1/schedules/{id} (scope admin), with its
// run history.
func (h *handler) deleteSchedule(w http.ResponseWriter, r *http.Request, s Schedules) error {
	id, err := scheduleID(r, "id")
	if err != nil {
		return err
	}
	if err := s.Delete(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pauseSchedule is POST /api/v1/schedules/{id}/pause (scope admin).
func (h *handler) pauseSchedule(w http.ResponseWriter, r *http.Request, s Schedules) error {
	return h.setScheduleEnabled(w, r, s, false)
}

// resumeSchedule is POST /api/v1/schedules/{id}/resume (scope admin): the
// next run is the first due time after now.
func (h *handler) resumeSchedule(w http.ResponseWriter, r *http.Request, s Schedules) error {
	return h.setScheduleEnabled(w, r, s, true)
}

func (h *handler) setScheduleEnabled(w http.ResponseWriter, r *http.Request, s Schedules, enabled bool) error {
	id, err := scheduleID(r, "id")
	if err != nil {
		return err
	}
	sc, err := s.SetEnabled(r.Context(), id, enabled)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sc)
	return nil
}

// runSchedule is POST /api/v1/schedules/{id}/run (scope send): run it now,
// paused or not → 202 with the queued run.
func (h *handler) runSchedule(w http.ResponseWriter, r *http.Request, s Schedules) error {
	id, err := scheduleID(r, "id")
	if err != nil {
		return err
	}
	run, err := s.RunNow(r.Context(), id)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/schedules/"+strconv.FormatInt(id, 10)+"/runs/"+strconv.FormatInt(run.ID, 10))
	writeJSON(w, http.StatusAccepted, run)
	return nil
}

// trySchedule is POST /api/v1/schedules/{id}/try {"openid"} (scope
// send): what a run now would send that follower (the data source is
// called); nothing is sent.
func (h *handler) trySchedule(w http.ResponseWriter, r *http.Request, s Schedules) error {
	id, err := scheduleID(r, "id")
	if err != nil {
		return err
	}
	var in struct {
		OpenID string `json:"openid"`
	}
	if err := readScheduleBody(r, &in); err != nil {
		return err
	}
	tr, err := s.Try(r.Context(), id, in.OpenID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, tr)
	return nil
}

// nextScheduleTimes is GET /api/v1/schedules/{id}/next?n=5 (scope read):
// the next due times in the schedule's zone.
func (h *handler) nextScheduleTimes(w http.ResponseWriter, r *http.Request, s Schedules) error {
	id, err := scheduleID(r, "id")
	if err != nil {
		return err
	}
	n, err := scheduleQueryInt(r, "n")
	if err != nil {
		return err
	}
	sc, err := s.Get(r.Context(), id)
	if err != nil {
		return err
	}
	times, err := s.NextTimes(r.Context(), id, int(min(n, 100)))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "cron": sc.Cron, "timezone": sc.TimeZone, "enabled": sc.Enabled, "next": times})
	return nil
}

// listScheduleRuns is GET /api/v1/schedules/{id}/runs?before=&limit=
// (scope read): the runs, newest first, with their counts.
func (h *handler) listScheduleRuns(w http.ResponseWriter, r *http.Request, s Schedules) error {
	id, err := scheduleID(r, "id")
	if err != nil {
		return err
	}
	before, err := scheduleQueryInt(r, "before")
	if err != nil {
		return err
	}
	limit, err := scheduleQueryInt(r, "limit")
	if err != nil {
		return err
	}
	runs, err := s.Runs(r.Context(), id, schedule.RunFilter{Before: before, Limit: int(min(limit, 200))})
	if err != nil {
		return err
	}
	answer := map[string]any{"runs": runs}
	if len(runs) > 0 && (limit == 0 && len(runs) == 20 || limit > 0 && int64(len(runs)) == min(limit, 200)) {
		answer["next_before"] = runs[len(runs)-1].ID
	}
	writeJSON(w, http.StatusOK, answer)
	return nil
}

// getScheduleRun is GET /api/v1/schedules/{id}/runs/{run_id}?after=&limit=
// (scope read): a run with its recipients, each with their status and the
// reason of a skip.
func (h *handler) getScheduleRun(w http.ResponseWriter, r *http.Request, s Schedules) error {
	id, err := scheduleID(r, "id")
	if err != nil {
		return err
	}
	runID, err := scheduleID(r, "run_id")
	if err != nil {
		return err
	}
	after, err := scheduleQueryInt(r, "after")
	if err != nil {
		return err
	}
	limit, err := scheduleQueryInt(r, "limit")
	if err != nil {
		return err
	}
	d, err := s.GetRunPage(r.Context(), id, runID, after, int(min(limit, 10000)))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// followerAttributes is GET /api/v1/followers/{openid}/attributes?account=
// (scope read).
func (h *handler) followerAttributes(w http.ResponseWriter, r *http.Request, s Schedules) error {
	account, openid := r.URL.Query().Get("account"), r.PathValue("openid")
	attrs, err := s.Attributes(r.Context(), account, openid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": account, "openid": openid, "attributes": attrs})
	return nil
}

// putFollowerAttributes is PUT (replace) and PATCH (merge; null removes a
// name) /api/v1/followers/{openid}/attributes?account= (scope admin), body
// {"city":"北京","location":"101010100"}.
func (h *handler) putFollowerAttributes(w http.ResponseWriter, r *http.Request, s Schedules) error {
	account, openid := r.URL.Query().Get("account"), r.PathValue("openid")
	var in map[string]*string
	if err := readScheduleBody(r, &in); err != nil {
		return err
	}
	attrs, err := s.SetAttributes(r.Context(), account, openid, in, r.Method == http.MethodPatch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": account, "openid": openid, "attributes": attrs})
	return nil
}
