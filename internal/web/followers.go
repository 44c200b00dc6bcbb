package web

// followerRoutes registers the followers pages.
func (c *Console) followerRoutes() {}

// followerTexts are the followers pages' texts.
var followerTexts = texts{}
