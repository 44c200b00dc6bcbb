package web

// keyRoutes registers the keys pages.
func (c *Console) keyRoutes() {}

// keyTexts are the keys pages' texts.
var keyTexts = texts{}
