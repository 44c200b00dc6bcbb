package web

// messageRoutes registers the messages pages.
func (c *Console) messageRoutes() {}

// messageTexts are the messages pages' texts.
var messageTexts = texts{}
