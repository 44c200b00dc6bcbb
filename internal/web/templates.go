package web

// templateRoutes registers the templates pages.
func (c *Console) templateRoutes() {}

// templateTexts are the templates pages' texts.
var templateTexts = texts{}
