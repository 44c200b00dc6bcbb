package wechat

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// checkMessageJSON fails unless MessageJSON(m) is json.Marshal(m).
func checkMessageJSON(t *testing.T, m *Message) {
	t.Helper()
	want, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	got, err := MessageJSON(m)
	if err != nil {
		t.Fatalf("MessageJSON: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("MessageJSON differs from encoding/json\n got: %s\nwant: %s", got, want)
	}
}

// TestMessageJSONCoversEveryField sets each string and integer field of
// Message on its own, and all of them together: a field added to Message
// but not to MessageJSON fails here.
func TestMessageJSONCoversEveryField(t *testing.T) {
	t.Parallel()
	typ := reflect.TypeFor[Message]()
	var all Message
	for i := range typ.NumField() {
		f := typ.Field(i)
		var one Message
		for _, m := range []*Message{&one, &all} {
			v := reflect.ValueOf(m).Elem().Field(i)
			switch f.Type.Kind() {
			case reflect.String:
				v.SetString(f.Name + " <&> 值")
			case reflect.Int64:
				v.SetInt(int64(1000 + i))
			default:
				continue // coordinates and nested elements: encoding/json's path
			}
		}
		checkMessageJSON(t, &one)
	}
	checkMessageJSON(t, &all)
	checkMessageJSON(t, &Message{})
}

// TestMessageJSONOfEveryPushKind compares the two on every push of the
// test data, the kinds that take encoding/json's path included.
func TestMessageJSONOfEveryPushKind(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "messages", "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test messages (%v)", err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ParseMessage(raw)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		t.Run(filepath.Base(file), func(t *testing.T) { checkMessageJSON(t, m) })
	}
}

func FuzzMessageJSONMatchesEncodingJSON(f *testing.F) {
	for _, s := range awkwardTexts {
		f.Add(s, int64(1714036504), s+"k")
	}
	f.Add("\u2028\u2029\b\f\x1f", int64(-1), "")
	f.Fuzz(func(t *testing.T, text string, n int64, key string) {
		checkMessageJSON(t, &Message{
			ToUserName: "gh_" + key, FromUserName: text, CreateTime: n, MsgType: "text",
			MsgID: n + 1, Content: text, Event: key, EventKey: text, Status: strconv.FormatInt(n, 10),
		})
	})
}
