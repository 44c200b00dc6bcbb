package wechatsim

import (
	"slices"
	"unicode/utf8"
)

// User tags (protocol doc §5.13).

const (
	maxTags         = 100
	maxTagNameRunes = 30
	maxTagBatch     = 50
	maxTagsPerUser  = 20
	reservedTagMax  = 2 // tags 0, 1 and 2 are the system's
)

type tagBody struct {
	Tag struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	} `json:"tag"`
}

func (a *appState) tagByID(id int) *tag {
	for _, t := range a.Tags {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func (a *appState) checkTagName(name string, except int) *apiError {
	switch {
	case name == "":
		return wxErr(45157)
	case utf8.RuneCountInString(name) > maxTagNameRunes:
		return wxErr(45158)
	}
	for _, t := range a.Tags {
		if t.Name == name && t.ID != except {
			return wxErr(45157)
		}
	}
	return nil
}

// handleTagCreate is POST /cgi-bin/tags/create.
func (s *Simulator) handleTagCreate(c *apiCall) (any, *apiError) {
	var req tagBody
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if apiErr := c.app.checkTagName(req.Tag.Name, -1); apiErr != nil {
		return nil, apiErr
	}
	if len(c.app.Tags) >= maxTags {
		return nil, wxErr(45056)
	}
	c.app.NextTagID++
	t := &tag{ID: c.app.NextTagID, Name: req.Tag.Name}
	c.app.Tags = append(c.app.Tags, t)
	var ans tagBody
	ans.Tag.ID, ans.Tag.Name = t.ID, t.Name
	return ans, nil
}

type tagCount struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// handleTagGet is GET /cgi-bin/tags/get.
func (s *Simulator) handleTagGet(c *apiCall) (any, *apiError) {
	list := []tagCount{}
	for _, t := range c.app.Tags {
		n := 0
		for _, openid := range c.app.UserOrder {
			if u := s.st.Users[openid]; u != nil && slices.Contains(u.TagIDs, t.ID) {
				n++
			}
		}
		list = append(list, tagCount{t.ID, t.Name, n})
	}
	return struct {
		Tags []tagCount `json:"tags"`
	}{list}, nil
}

// handleTagUpdate is POST /cgi-bin/tags/update.
func (s *Simulator) handleTagUpdate(c *apiCall) (any, *apiError) {
	var req tagBody
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if req.Tag.ID <= reservedTagMax {
		return nil, wxErr(45058)
	}
	t := c.app.tagByID(req.Tag.ID)
	if t == nil {
		return nil, wxErr(45159)
	}
	if apiErr := c.app.checkTagName(req.Tag.Name, t.ID); apiErr != nil {
		return nil, apiErr
	}
	t.Name = req.Tag.Name
	return okAnswer, nil
}

// handleTagDelete is POST /cgi-bin/tags/delete; the tag leaves its users.
func (s *Simulator) handleTagDelete(c *apiCall) (any, *apiError) {
	var req tagBody
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if req.Tag.ID <= reservedTagMax {
		return nil, wxErr(45058)
	}
	i := slices.IndexFunc(c.app.Tags, func(t *tag) bool { return t.ID == req.Tag.ID })
	if i < 0 {
		return nil, wxErr(45159)
	}
	c.app.Tags = slices.Delete(c.app.Tags, i, i+1)
	for _, openid := range c.app.UserOrder {
		if u := s.st.Users[openid]; u != nil {
			u.TagIDs = slices.DeleteFunc(u.TagIDs, func(id int) bool { return id == req.Tag.ID })
		}
	}
	return okAnswer, nil
}

type tagMembersRequest struct {
	OpenIDList []string `json:"openid_list"`
	TagID      int      `json:"tagid"`
}

// handleTagBatchTagging is POST /cgi-bin/tags/members/batchtagging.
func (s *Simulator) handleTagBatchTagging(c *apiCall) (any, *apiError) {
	return s.tagMembers(c, true)
}

// handleTagBatchUntagging is POST /cgi-bin/tags/members/batchuntagging.
func (s *Simulator) handleTagBatchUntagging(c *apiCall) (any, *apiError) {
	return s.tagMembers(c, false)
}

func (s *Simulator) tagMembers(c *apiCall, add bool) (any, *apiError) {
	var req tagMembersRequest
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if len(req.OpenIDList) == 0 || len(req.OpenIDList) > maxTagBatch {
		return nil, wxErr(40032)
	}
	if c.app.tagByID(req.TagID) == nil {
		return nil, wxErr(45159)
	}
	users := make([]*userState, 0, len(req.OpenIDList))
	for _, openid := range req.OpenIDList {
		u := s.appUser(c.app, openid)
		if u == nil {
			return nil, wxErr(40003)
		}
		if add && !slices.Contains(u.TagIDs, req.TagID) && len(u.TagIDs) >= maxTagsPerUser {
			return nil, wxErr(45059)
		}
		users = append(users, u)
	}
	for _, u := range users {
		has := slices.Contains(u.TagIDs, req.TagID)
		switch {
		case add && !has:
			u.TagIDs = append(u.TagIDs, req.TagID)
		case !add && has:
			u.TagIDs = slices.DeleteFunc(u.TagIDs, func(id int) bool { return id == req.TagID })
		}
	}
	return okAnswer, nil
}

// handleTagIDList is POST /cgi-bin/tags/getidlist.
func (s *Simulator) handleTagIDList(c *apiCall) (any, *apiError) {
	var req struct {
		OpenID string `json:"openid"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	u := s.appUser(c.app, req.OpenID)
	if u == nil {
		return nil, wxErr(40003)
	}
	ids := slices.Clone(u.TagIDs)
	if ids == nil {
		ids = []int{}
	}
	return struct {
		TagIDList []int `json:"tagid_list"`
	}{ids}, nil
}

// handleTagUsers is POST /cgi-bin/user/tag/get {"tagid","next_openid"}.
func (s *Simulator) handleTagUsers(c *apiCall) (any, *apiError) {
	var req struct {
		TagID      int    `json:"tagid"`
		NextOpenID string `json:"next_openid"`
	}
	if apiErr := c.decode(&req); apiErr != nil {
		return nil, apiErr
	}
	if c.app.tagByID(req.TagID) == nil {
		return nil, wxErr(45159)
	}
	var members []string
	for _, openid := range c.app.UserOrder {
		if u := s.st.Users[openid]; u != nil && u.Subscribed && slices.Contains(u.TagIDs, req.TagID) {
			members = append(members, openid)
		}
	}
	start := 0
	if req.NextOpenID != "" {
		start = slices.Index(members, req.NextOpenID) + 1
	}
	page := members[start:min(start+userGetPageSize, len(members))]
	ans := struct {
		Count      int          `json:"count"`
		Data       *openidsData `json:"data,omitempty"`
		NextOpenID string       `json:"next_openid"`
	}{Count: len(page)}
	if len(page) > 0 {
		ans.Data = &openidsData{OpenID: slices.Clone(page)}
	}
	if len(page) == userGetPageSize {
		ans.NextOpenID = page[len(page)-1]
	}
	return ans, nil
}
