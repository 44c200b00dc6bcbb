package web

// dashboardRoutes registers the dashboard pages.
func (c *Console) dashboardRoutes() {}

// dashboardTexts are the dashboard pages' texts.
var dashboardTexts = texts{}
