package web

import "net/http"

// auditRoutes registers the audit log page.
func (c *Console) auditRoutes() {
	c.page("GET /admin/audit", c.auditPage)
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) {
	entries, err := c.opts.Admins.AuditLog(r.Context(), 200)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "audit", "audit.title", entries, nil)
}

// auditTexts are the audit page's texts.
var auditTexts = texts{
	"audit.title":  {"操作日志", "Audit log"},
	"audit.intro":  {"后台里的每一次修改（谁、何时、改了什么）。", "Every change made in the console: who, when, what."},
	"audit.at":     {"时间", "When"},
	"audit.user":   {"用户", "User"},
	"audit.action": {"操作", "Action"},
	"audit.target": {"对象", "Object"},
	"audit.detail": {"详情", "Detail"},
}
