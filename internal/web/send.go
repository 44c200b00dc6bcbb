package web

// sendRoutes registers the send pages.
func (c *Console) sendRoutes() {}

// sendTexts are the send pages' texts.
var sendTexts = texts{}
