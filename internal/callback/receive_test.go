package callback

import "testing"

func TestSafeEnvelope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want string // "" = not taken by the fast path
	}{
		{"as WeChat writes it", "<xml>\n    <ToUserName><![CDATA[gh_1]]></ToUserName>\n    <Encrypt><![CDATA[ab+/Cd==]]></Encrypt>\n</xml>\n", "ab+/Cd=="},
		{"Encrypt first", "<xml><Encrypt><![CDATA[QUJD]]></Encrypt><ToUserName><![CDATA[gh_1]]></ToUserName></xml>", "QUJD"},
		{"two Encrypt elements", "<xml><Encrypt><![CDATA[QUJD]]></Encrypt><Encrypt><![CDATA[REVG]]></Encrypt></xml>", ""},
		{"Encrypt without CDATA", "<xml><Encrypt>QUJD</Encrypt></xml>", ""},
		{"not base64", "<xml><Encrypt><![CDATA[QU]]>JD]]></Encrypt></xml>", ""},
		{"empty Encrypt", "<xml><Encrypt><![CDATA[]]></Encrypt></xml>", ""},
		{"no root", "<Encrypt><![CDATA[QUJD]]></Encrypt>", ""},
		{"unclosed", "<xml><Encrypt><![CDATA[QUJD", ""},
		{"plaintext body", "<xml><MsgType>text</MsgType></xml>", ""},
	}
	for _, tt := range tests {
		got, ok := safeEnvelope([]byte(tt.body))
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, ok, tt.want)
		}
	}
}
