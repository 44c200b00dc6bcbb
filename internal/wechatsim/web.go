package wechatsim

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/wechat"
)

// The web page at /sim/: server-rendered with html/template, assets
// embedded, a little plain JavaScript that calls the control API. The chat
// is re-rendered as an HTML fragment (?part=chat) so the page and the
// script share one template.

//go:embed web
var webFiles embed.FS

var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"lines": func(s string) []string { return strings.Split(s, "\n") },
	"clock": func(t time.Time) string { return t.In(wechat.BeijingTime).Format("01-02 15:04:05") },
	"short": func(s string) string { return truncate(s, 12) },
}).ParseFS(webFiles, "web/page.html"))

func (s *Simulator) webRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sim/", http.StatusFound)
	})
	mux.HandleFunc("GET /sim/{$}", s.servePage)
	mux.HandleFunc("GET /sim", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sim/", http.StatusFound)
	})
	static, err := fs.Sub(webFiles, "web/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux.Handle("GET /sim/static/", http.StripPrefix("/sim/static/", http.FileServerFS(static)))
}

// pageData is what page.html renders.
type pageData struct {
	Apps         []AppView
	App          *AppView
	Users        []User
	User         *User
	Chat         []InboxItem
	Menu         []MenuButton
	QRCodes      []QRCode
	SubTemplates []TemplateConfig
	Grants       map[string]int
	Alarms       []Alarm
	IsOA         bool
}

func (s *Simulator) servePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	data := pageData{}
	for _, cfg := range s.Apps() {
		if v, err := s.getAppView(cfg.AppID); err == nil {
			data.Apps = append(data.Apps, v)
		}
	}
	appID := q.Get("app_id")
	if appID == "" && len(data.Apps) > 0 {
		appID = data.Apps[0].AppID
	}
	for i := range data.Apps {
		if data.Apps[i].AppID == appID {
			data.App = &data.Apps[i]
		}
	}
	if data.App != nil {
		data.IsOA = data.App.Kind == KindOfficialAccount
		data.Users, _ = s.Users(appID)
		data.QRCodes = s.QRCodes(appID)
		for _, t := range s.Templates(appID) {
			if t.Kind == TemplateKindSubscribe {
				data.SubTemplates = append(data.SubTemplates, t)
			}
		}
		alarms := s.Alarms(appID)
		if len(alarms) > 5 {
			alarms = alarms[len(alarms)-5:]
		}
		data.Alarms = alarms
		openid := q.Get("openid")
		if openid == "" && len(data.Users) > 0 {
			openid = data.Users[0].OpenID
		}
		data.Menu = s.Menu(appID, openid)
		if u, err := s.GetUser(appID, openid); err == nil {
			data.User = u
			data.Chat, _ = s.Conversation(appID, openid)
			data.Grants, _ = s.SubscriptionGrants(appID, openid)
		}
	}
	name := "page.html"
	if q.Get("part") == "chat" {
		name = "chat"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplate.ExecuteTemplate(w, name, data); err != nil {
		s.log.Error("wechatsim: render page", "err", err)
	}
}
