package wechatsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

// Fault makes the fake API misbehave for matching calls. Callback delivery
// faults are not here: a slow or failing app server is the server's side,
// and the simulator retries it as WeChat does.
type Fault struct {
	ID int `json:"id"`
	// AppID limits the fault to one app; "" means every app.
	AppID string `json:"app_id,omitempty"`
	// Path is an API path such as /cgi-bin/message/template/send; "" or "*"
	// means every path.
	Path string `json:"path,omitempty"`
	// Domain limits the fault to calls through one DomainHandler label.
	Domain string `json:"domain,omitempty"`

	// ErrCode answers this errcode instead of running the API (ErrMsg, or
	// WeChat's usual errmsg for the code).
	ErrCode int    `json:"errcode,omitempty"`
	ErrMsg  string `json:"errmsg,omitempty"`
	// Latency delays the answer.
	Latency time.Duration `json:"-"`
	// Timeout never answers: the call hangs until the client gives up.
	Timeout bool `json:"timeout,omitempty"`
	// LoseAnswer runs the call, then never answers: it takes effect (a
	// message is delivered) but the client hears nothing, as when the
	// connection drops on the way back.
	LoseAnswer bool `json:"lose_answer,omitempty"`
	// TemplateJobFailure makes template sends report
	// TEMPLATESENDJOBFINISH "failed: system failed" (the send itself
	// succeeds, as it does on WeChat).
	TemplateJobFailure bool `json:"template_job_failure,omitempty"`

	// Rate is the probability (0..1] that a matching call is hit; 0 means
	// always. Draws come from Config.FaultSeed's source.
	Rate float64 `json:"rate,omitempty"`
	// Times limits the fault to the next N hits; 0 means no limit.
	Times int `json:"times,omitempty"`
	// Skip lets the first N matching calls through before the fault hits
	// (the second of two uploads fails).
	Skip int `json:"skip,omitempty"`
	// skipped counts the calls let through.
	skipped int
	// Hits counts the calls the fault has hit.
	Hits int `json:"hits"`

	// One-shot effects applied by SetFault and not kept as a fault:
	// InvalidateTokens makes all current tokens of AppID answer 40001;
	// DomainDown takes Domain down until ClearFaults.
	InvalidateTokens bool `json:"invalidate_tokens,omitempty"`
	DomainDown       bool `json:"domain_down,omitempty"`
}

type faultJSON Fault

// MarshalJSON writes Latency as latency_ms.
func (f Fault) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		faultJSON
		LatencyMS int64 `json:"latency_ms,omitempty"`
	}{faultJSON(f), f.Latency.Milliseconds()})
}

// UnmarshalJSON reads latency_ms into Latency.
func (f *Fault) UnmarshalJSON(data []byte) error {
	var v struct {
		faultJSON
		LatencyMS int64 `json:"latency_ms"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*f = Fault(v.faultJSON)
	f.Latency = time.Duration(v.LatencyMS) * time.Millisecond
	return nil
}

func (f *Fault) affectsAPI() bool {
	return f.ErrCode != 0 || f.Latency > 0 || f.Timeout || f.LoseAnswer
}

// matches reports whether the fault concerns calls of app on path.
func (f *Fault) matches(appID, path string) bool {
	return (f.AppID == "" || f.AppID == appID) && (f.Path == "" || f.Path == "*" || f.Path == path)
}

// onDomain reports whether the fault concerns calls through a domain label.
func (f *Fault) onDomain(domain string) bool { return f.Domain == "" || f.Domain == domain }

// SetFault applies a fault and returns its id (0 when it was only one-shot
// effects). Later faults do not replace earlier ones: the first matching
// fault in the order they were set hits a call.
func (s *Simulator) SetFault(f Fault) (int, error) {
	if f.Rate < 0 || f.Rate > 1 {
		return 0, errorf(CodeInvalid, "rate 必须在 0..1 之间 rate must be within 0..1, got %v", f.Rate)
	}
	if f.InvalidateTokens {
		if f.AppID == "" {
			return 0, errorf(CodeInvalid, "invalidate_tokens 需要 app_id: invalidate_tokens needs app_id")
		}
		if err := s.InvalidateTokens(f.AppID); err != nil {
			return 0, err
		}
	}
	if f.DomainDown {
		if f.Domain == "" {
			return 0, errorf(CodeInvalid, "domain_down 需要 domain: domain_down needs domain")
		}
		s.SetDomainDown(f.Domain, true)
	}
	if !f.affectsAPI() && !f.TemplateJobFailure {
		if !f.InvalidateTokens && !f.DomainDown {
			return 0, errorf(CodeInvalid, "故障没有效果 the fault has no effect: set errcode, latency_ms, timeout, lose_answer, template_job_failure, invalidate_tokens or domain_down")
		}
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextFaultID++
	f.ID, f.Hits = s.nextFaultID, 0
	f.InvalidateTokens, f.DomainDown = false, false
	s.faults = append(s.faults, &f)
	return f.ID, nil
}

// RemoveFault removes one fault.
func (s *Simulator) RemoveFault(id int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.faults, func(f *Fault) bool { return f.ID == id })
	if i < 0 {
		return false
	}
	s.faults = slices.Delete(s.faults, i, i+1)
	return true
}

// ClearFaults removes every fault and brings every domain back up.
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	s.downDomains = map[string]bool{}
}

// Faults lists the active faults.
func (s *Simulator) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Fault, 0, len(s.faults))
	for _, f := range s.faults {
		out = append(out, *f)
	}
	return out
}

// hitLocked decides whether fault f hits this call, counting the hit;
// callers hold s.mu.
func (s *Simulator) hitLocked(f *Fault) bool {
	if f.Times > 0 && f.Hits >= f.Times {
		return false
	}
	if f.skipped < f.Skip {
		f.skipped++
		return false
	}
	if f.Rate > 0 && f.Rate < 1 && s.rng.Float64() >= f.Rate {
		return false
	}
	f.Hits++
	return true
}

// pickFault returns a copy of the fault that hits an API call, or nil.
func (s *Simulator) pickFault(domain, appID, path string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.faults {
		if f.affectsAPI() && f.matches(appID, path) && f.onDomain(domain) && s.hitLocked(f) {
			c := *f
			return &c
		}
	}
	return nil
}

// applyFault waits out latency or a timeout; false means the call must end
// without an answer (the client went away, or the simulator is closing).
func (s *Simulator) applyFault(r *http.Request, f *Fault) bool {
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		case <-s.ctx.Done():
			return false
		}
	}
	if f.Timeout {
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
		return false
	}
	return true
}

// loseAnswer holds a call that has run until the client gives up, then
// drops it unanswered.
func (s *Simulator) loseAnswer(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-s.ctx.Done():
	}
	panic(http.ErrAbortHandler) // close the connection without an answer
}

// jobFailureLocked reports whether a template_job_failure fault hits a send
// of app on path; callers hold s.mu.
func (s *Simulator) jobFailureLocked(appID, path string) bool {
	for _, f := range s.faults {
		if f.TemplateJobFailure && f.matches(appID, path) && s.hitLocked(f) {
			return true
		}
	}
	return false
}
