package web

// replyRoutes registers the replies pages.
func (c *Console) replyRoutes() {}

// replyTexts are the replies pages' texts.
var replyTexts = texts{}
