package web

// accountRoutes registers the accounts pages.
func (c *Console) accountRoutes() {}

// accountTexts are the accounts pages' texts.
var accountTexts = texts{}
