package web

// bindingRoutes registers the bindings pages.
func (c *Console) bindingRoutes() {}

// bindingTexts are the bindings pages' texts.
var bindingTexts = texts{}
