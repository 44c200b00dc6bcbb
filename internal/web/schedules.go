package web

// scheduleRoutes registers the schedules pages.
func (c *Console) scheduleRoutes() {}

// scheduleTexts are the schedules pages' texts.
var scheduleTexts = texts{}
