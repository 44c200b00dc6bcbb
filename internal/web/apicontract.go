package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// apiContractRoutes registers the rendered view of /api/v1's OpenAPI
// document, for people; machines take openapi.json itself.
func (c *Console) apiContractRoutes() {
	c.page("GET /admin/api", c.apiContractPage)
}

// contractView is the OpenAPI document as the page shows it: operations
// grouped by tag, references resolved to names.
type contractView struct {
	Title, Version, Description string
	Groups                      []contractGroup
	Operations                  int
}

type contractGroup struct {
	Tag        string
	Operations []contractOperation
}

type contractOperation struct {
	ID, Method, Path, Summary, Description string
	Scopes                                 []string
	Params                                 []contractParam
	// Body is the request schema's name (or "object"); BodyExample the
	// example, indented.
	Body, BodyExample string
	Responses         []contractResponse
}

type contractParam struct {
	Name, In, Type, Example, Description string
	Required                             bool
}

type contractResponse struct {
	Status, Description, Schema string
}

// openAPIDoc is the part of an OpenAPI 3.1 document the page reads.
type openAPIDoc struct {
	Info struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Responses map[string]openAPIResponse `json:"responses"`
	} `json:"components"`
}

type openAPIOperation struct {
	OperationID string   `json:"operationId"`
	Summary     string   `json:"summary"`
	Description string   `json:"description"`
	Tags        []string `json:"tags"`
	Scopes      []string `json:"x-scopes"`
	Parameters  []struct {
		Name        string          `json:"name"`
		In          string          `json:"in"`
		Required    bool            `json:"required"`
		Description string          `json:"description"`
		Schema      openAPISchema   `json:"schema"`
		Example     json.RawMessage `json:"example"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema  openAPISchema   `json:"schema"`
			Example json.RawMessage `json:"example"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]openAPIResponse `json:"responses"`
}

type openAPIResponse struct {
	Ref         string `json:"$ref"`
	Description string `json:"description"`
	Content     map[string]struct {
		Schema openAPISchema `json:"schema"`
	} `json:"content"`
}

type openAPISchema struct {
	Ref   string         `json:"$ref"`
	Type  any            `json:"type"`
	Items *openAPISchema `json:"items"`
}

// name is how a schema is shown: its component name, "array of X", or
// its type.
func (s openAPISchema) name() string {
	if s.Ref != "" {
		return s.Ref[strings.LastIndex(s.Ref, "/")+1:]
	}
	if s.Items != nil {
		return "array of " + s.Items.name()
	}
	switch t := s.Type.(type) {
	case string:
		return t
	case []any:
		parts := make([]string, 0, len(t))
		for _, p := range t {
			parts = append(parts, fmt.Sprint(p))
		}
		return strings.Join(parts, " | ")
	}
	return "object"
}

var methodOrder = map[string]int{"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}

// parseContract turns the document into the page's view.
func parseContract(raw []byte) (*contractView, error) {
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("web: reading the OpenAPI document: %w", err)
	}
	v := &contractView{Title: doc.Info.Title, Version: doc.Info.Version, Description: doc.Info.Description}
	groups := map[string][]contractOperation{}
	for p, methods := range doc.Paths {
		for method, rawOp := range methods {
			if _, ok := methodOrder[method]; !ok {
				continue // parameters, summary…: not an operation
			}
			var op openAPIOperation
			if err := json.Unmarshal(rawOp, &op); err != nil {
				return nil, fmt.Errorf("web: reading %s %s of the OpenAPI document: %w", method, p, err)
			}
			o := contractOperation{ID: op.OperationID, Method: strings.ToUpper(method), Path: p,
				Summary: op.Summary, Description: op.Description, Scopes: op.Scopes}
			for _, prm := range op.Parameters {
				o.Params = append(o.Params, contractParam{Name: prm.Name, In: prm.In, Required: prm.Required,
					Type: prm.Schema.name(), Example: compactExample(prm.Example), Description: prm.Description})
			}
			if op.RequestBody != nil {
				for _, ct := range op.RequestBody.Content {
					o.Body, o.BodyExample = ct.Schema.name(), indentExample(ct.Example)
				}
			}
			for status, resp := range op.Responses {
				if resp.Ref != "" {
					resp = doc.Components.Responses[resp.Ref[strings.LastIndex(resp.Ref, "/")+1:]]
				}
				cr := contractResponse{Status: status, Description: resp.Description}
				for _, ct := range resp.Content {
					cr.Schema = ct.Schema.name()
				}
				o.Responses = append(o.Responses, cr)
			}
			sort.Slice(o.Responses, func(i, j int) bool { return o.Responses[i].Status < o.Responses[j].Status })
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			groups[tag] = append(groups[tag], o)
			v.Operations++
		}
	}
	for tag, ops := range groups {
		sort.Slice(ops, func(i, j int) bool {
			if ops[i].Path != ops[j].Path {
				return ops[i].Path < ops[j].Path
			}
			return methodOrder[strings.ToLower(ops[i].Method)] < methodOrder[strings.ToLower(ops[j].Method)]
		})
		v.Groups = append(v.Groups, contractGroup{Tag: tag, Operations: ops})
	}
	sort.Slice(v.Groups, func(i, j int) bool { return v.Groups[i].Tag < v.Groups[j].Tag })
	return v, nil
}

func compactExample(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

func indentExample(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return string(raw)
	}
	return buf.String()
}

func (c *Console) apiContractPage(w http.ResponseWriter, r *http.Request) {
	if len(c.opts.OpenAPI) == 0 {
		c.fail(w, r, errPageNotFound)
		return
	}
	v, err := parseContract(c.opts.OpenAPI)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "api", "api.title", v, nil)
}

// apiContractTexts are the API contract page's texts.
var apiContractTexts = texts{
	"api.title":      {"接口文档", "API reference"},
	"api.intro":      {"/api/v1 的全部接口，由 OpenAPI 3.1 文档生成；用它生成 Java、Python、TypeScript 客户端。", "Every /api/v1 route, from the OpenAPI 3.1 document; generate Java, Python or TypeScript clients from it."},
	"api.download":   {"下载 openapi.json", "Download openapi.json"},
	"api.operations": {"%d 个接口", "%d operations"},
	"api.scopes":     {"所需权限", "Scopes"},
	"api.params":     {"参数", "Parameters"},
	"api.body":       {"请求体", "Request body"},
	"api.responses":  {"响应", "Responses"},
	"api.required":   {"必填", "required"},
	"api.example":    {"示例", "Example"},
	"api.in":         {"位置", "In"},
	"api.type":       {"类型", "Type"},
	"api.name":       {"名称", "Name"},
	"api.status":     {"状态码", "Status"},
	"api.schema":     {"结构", "Schema"},
	"api.auth":       {"每个接口都要 API 密钥（Authorization: Bearer wxg_…），admin 密钥可调用全部接口。", "Every route takes an API key (Authorization: Bearer wxg_…); an admin key may call every route."},
}
