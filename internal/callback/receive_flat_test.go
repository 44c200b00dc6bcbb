package callback

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/wxgate/wxgate/internal/wechat"
)

// The direct path reads the common pushes.
func TestParseFlatMessageTakesTheCommonPushes(t *testing.T) {
	for _, name := range []string{"text.xml", "event_click.xml", "event_subscribe.xml", "event_unsubscribe.xml"} {
		b, err := os.ReadFile(filepath.Join("..", "wechat", "testdata", "messages", name))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := parseFlatMessage(b)
		if !ok {
			t.Errorf("%s: not read directly", name)
			continue
		}
		want, err := wechat.ParseMessage(b)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got: %#v\nwant: %#v (%v)", name, got, want, err)
		}
	}
}

// Whatever the direct path accepts, wechat.ParseMessage reads the same.
func FuzzParseFlatMessage(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "wechat", "testdata", "messages", "*.xml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		" <xml>\n<CreateTime> 12</CreateTime></xml>", "<xml><CreateTime>+12</CreateTime></xml>", "<xml><MsgId>99999999999999999999</MsgId></xml>",
		"<xml><Content>a&amp;b</Content></xml>", "<xml><Content><![CDATA[a\rb]]></Content></xml>", "<xml><Content/></xml>", "<xml></xml>trailing",
		"<xml><Content></Content><Content>x</Content></xml>", "<xml><Content>a b\tc\n</Content></xml>", "<xml><Idx></Idx></xml>",
		"<xml><Content><![CDATA[\xff]]></Content></xml>", "<xml><Content><![CDATA[\uFFFE]]></Content></xml>", "<xml><CreateTime><![CDATA[7]]></CreateTime></xml>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := parseFlatMessage(body)
		if !ok {
			return
		}
		want, err := wechat.ParseMessage(body)
		if err != nil {
			t.Fatalf("direct path accepted what ParseMessage refuses (%v): %q", err, body)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q\n got: %#v\nwant: %#v", body, got, want)
		}
	})
}

// The same, from text messages built of arbitrary values.
func FuzzParseFlatTextMessage(f *testing.F) {
	f.Add("gh_1", "o1", "你好\n<a href=\"x\">y</a>", int64(1348831860), int64(1234567890123456), " ", true)
	f.Add("gh_1", "o1", "a]]>b\r", int64(-1), int64(0), "\r\n", false)
	f.Fuzz(func(t *testing.T, to, from, content string, createTime, msgID int64, space string, cdata bool) {
		wrap := func(s string) string {
			if cdata {
				return "<![CDATA[" + s + "]]>"
			}
			return s
		}
		body := []byte("<xml>" + space + "<ToUserName>" + wrap(to) + "</ToUserName>" + space +
			"<FromUserName>" + wrap(from) + "</FromUserName><CreateTime>" + strconv.FormatInt(createTime, 10) +
			"</CreateTime><MsgType>" + wrap("text") + "</MsgType><Content>" + wrap(content) + "</Content><MsgId>" +
			strconv.FormatInt(msgID, 10) + "</MsgId>" + space + "</xml>" + space)
		got, ok := parseFlatMessage(body)
		if !ok {
			return
		}
		want, err := wechat.ParseMessage(body)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q\n got: %#v\nwant: %#v (%v)", body, got, want, err)
		}
	})
}
