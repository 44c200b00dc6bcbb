package wechatsim

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"
)

// LoadAppsFile reads apps from a YAML file, either a list of apps or a
// mapping with an "apps" list:
//
//	apps:
//	  - app_id: wx0123456789abcdef
//	    app_secret: secret
//	    kind: official_account        # or mini_program
//	    name: Demo
//	    open_platform: group1         # apps of one group share unionids
//	    callback_url: http://127.0.0.1:8080/wx/demo
//	    token: mytoken
//	    encoding_aes_key: <43 chars>
//	    mode: safe                    # plaintext | compatible | safe
//	    ip_whitelist: [127.0.0.1]
//	    test: false
//	    templates:
//	      - id: tmpl_new_visitor
//	        title: 新访客提醒
//	        content: "客户：{{thing1.DATA}}\n到访时间：{{time2.DATA}}"
//	        kind: template            # or subscribe
//
// Unknown keys are errors, so a misspelt key does not silently drop a
// setting. The apps are validated when given to New or AddApp.
func LoadAppsFile(path string) ([]AppConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wechatsim: read apps file: %w", err)
	}
	var node yaml.Node
	if err := yaml.Unmarshal(data, &node); err != nil {
		return nil, fmt.Errorf("wechatsim: parse %s: %w", path, err)
	}
	if len(node.Content) == 0 {
		return nil, nil
	}
	var apps []AppConfig
	if node.Content[0].Kind == yaml.SequenceNode {
		err = decodeStrict(data, &apps)
	} else {
		var file struct {
			Apps []AppConfig `yaml:"apps"`
		}
		err = decodeStrict(data, &file)
		apps = file.Apps
	}
	if err != nil {
		return nil, fmt.Errorf("wechatsim: parse %s: %w", path, err)
	}
	for i, app := range apps {
		if app.AppID == "" {
			return nil, fmt.Errorf("wechatsim: %s: app #%d has no app_id", path, i+1)
		}
	}
	return apps, nil
}

func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}
