package wechat

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

func readFixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "messages", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// xmlRoot is the XMLName every parsed message carries.
var xmlRoot = xml.Name{Local: "xml"}

const (
	ghOA     = "gh_97417a04a28d"
	userOA   = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
	ghMenu   = "gh_e136c6e50636"
	userMenu = "oMgHVjngRipVsoxg6TuX3vz6glDg"
	ghSub    = "gh_123456789abc"
	userSub  = "otFpruAK8D-E6EfStSYonYSBZ8_4"
	qrTick   = "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUwMEmm3sUw=="
)

// messageFixtures maps every file of testdata/messages to the message it must
// parse to, field for field.
var messageFixtures = map[string]Message{
	"text.xml": {
		XMLName: xmlRoot, ToUserName: "gh_10f6c3c3ac5a", FromUserName: "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
		CreateTime: 1409735668, MsgType: MsgTypeText, Content: "abcdteT", MsgID: 6054768590064713728,
	},
	"text_article.xml": {
		XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1348831860, MsgType: MsgTypeText,
		Content: "this is a test", MsgID: 1234567890123463, MsgDataID: "2247483685", Idx: 2,
	},
	"text_msgmenu.xml": {
		XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1500000000, MsgType: MsgTypeText,
		Content: "满意", MsgID: 24003427598405302, BizMsgMenuID: "101",
	},
	"image.xml": {
		XMLName: xmlRoot, ToUserName: "toUser", FromUserName: "fromUser", CreateTime: 1348831860, MsgType: MsgTypeImage,
		PicURL: "http://mmbiz.qpic.cn/mmbiz_jpg/abc/0", MediaID: "media_id", MsgID: 1234567890123456,
	},
	"voice.xml": {
		XMLName: xmlRoot, ToUserName: "toUser", FromUserName: "fromUser", CreateTime: 1357290913, MsgType: MsgTypeVoice,
		MediaID: "media_id", Format: "amr", MediaID16K: "media_id_16k", Recognition: "腾讯微信团队", MsgID: 1234567890123458,
	},
	"video.xml": {
		XMLName: xmlRoot, ToUserName: "toUser", FromUserName: "fromUser", CreateTime: 1357290913, MsgType: MsgTypeVideo,
		MediaID: "media_id", ThumbMediaID: "thumb_media_id", MsgID: 1234567890123459,
	},
	"shortvideo.xml": {
		XMLName: xmlRoot, ToUserName: "toUser", FromUserName: "fromUser", CreateTime: 1357290913, MsgType: MsgTypeShortVideo,
		MediaID: "media_id", ThumbMediaID: "thumb_media_id", MsgID: 1234567890123457,
	},
	"location.xml": {
		XMLName: xmlRoot, ToUserName: "toUser", FromUserName: "fromUser", CreateTime: 1351776360, MsgType: MsgTypeLocation,
		LocationX: 23.134521, LocationY: 113.358803, Scale: 20, Label: "位置信息", MsgID: 1234567890123460,
	},
	"link.xml": {
		XMLName: xmlRoot, ToUserName: "toUser", FromUserName: "fromUser", CreateTime: 1351776360, MsgType: MsgTypeLink,
		Title: "公众平台官网链接", Description: "公众平台官网链接", URL: "https://mp.weixin.qq.com/", MsgID: 1234567890123461,
	},
	"miniprogrampage.xml": {
		XMLName: xmlRoot, ToUserName: "toUser", FromUserName: "fromUser", CreateTime: 1482048670, MsgType: MsgTypeMiniProgramPage,
		MsgID: 1234567890123462, AppID: "wx286b93c14bbf93aa", Title: "Title", PagePath: "pages/index/index?scene=1",
		ThumbURL: "https://mmbiz.qpic.cn/thumb", ThumbMediaID: "thumb_media_id",
	},
	"event_subscribe.xml": {
		XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1714112445, MsgType: MsgTypeEvent, Event: EventSubscribe,
	},
	"event_subscribe_empty_eventkey.xml": {
		XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1714112445, MsgType: MsgTypeEvent, Event: EventSubscribe,
	},
	"event_subscribe_qrscene.xml": {
		XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1714112446, MsgType: MsgTypeEvent, Event: EventSubscribe,
		EventKey: "qrscene_S-1024", Ticket: qrTick,
	},
	"event_unsubscribe.xml": {
		XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1714112500, MsgType: MsgTypeEvent, Event: EventUnsubscribe,
	},
	"event_scan.xml": {
		XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1714112600, MsgType: MsgTypeEvent, Event: EventScan,
		EventKey: "123123", Ticket: qrTick,
	},
	"event_location.xml": {
		XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1714112445, MsgType: MsgTypeEvent, Event: EventLocation,
		Latitude: 23.137466, Longitude: 113.352425, Precision: 119.38504,
	},
	"event_click.xml": {
		XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1714112700, MsgType: MsgTypeEvent, Event: EventClick,
		EventKey: "V1001_TODAY_MUSIC",
	},
	"event_view.xml": {
		XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1714112701, MsgType: MsgTypeEvent, Event: EventView,
		EventKey: "http://www.soso.com/", MenuID: "208379533",
	},
	"event_view_miniprogram.xml": {
		XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1714112702, MsgType: MsgTypeEvent, Event: EventViewMiniProgram,
		EventKey: "pages/lunar/index", MenuID: "208379533",
	},
	"event_scancode_push.xml": {
		XMLName: xmlRoot, ToUserName: ghMenu, FromUserName: userMenu, CreateTime: 1408090502, MsgType: MsgTypeEvent, Event: EventScancodePush,
		EventKey: "6", ScanCodeInfo: &ScanCodeInfo{ScanType: "qrcode", ScanResult: "1"},
	},
	"event_scancode_waitmsg.xml": {
		XMLName: xmlRoot, ToUserName: ghMenu, FromUserName: userMenu, CreateTime: 1408090606, MsgType: MsgTypeEvent, Event: EventScancodeWaitMsg,
		EventKey: "6", ScanCodeInfo: &ScanCodeInfo{ScanType: "barcode", ScanResult: "EAN_13,6901234567892"},
	},
	"event_pic_sysphoto.xml": {
		XMLName: xmlRoot, ToUserName: ghMenu, FromUserName: userMenu, CreateTime: 1408090651, MsgType: MsgTypeEvent, Event: EventPicSysPhoto,
		EventKey: "6", SendPicsInfo: &SendPicsInfo{Count: 1, PicList: []PicItem{{PicMd5Sum: "1b5f7c23b5bf75682a53e7b6d163e185"}}},
	},
	"event_pic_photo_or_album.xml": {
		XMLName: xmlRoot, ToUserName: ghMenu, FromUserName: userMenu, CreateTime: 1408090816, MsgType: MsgTypeEvent, Event: EventPicPhotoOrAlbum,
		EventKey: "6", SendPicsInfo: &SendPicsInfo{Count: 2, PicList: []PicItem{
			{PicMd5Sum: "5a75aaca956d97be686719218f275c6b"}, {PicMd5Sum: "1b5f7c23b5bf75682a53e7b6d163e185"},
		}},
	},
	"event_pic_weixin.xml": {
		XMLName: xmlRoot, ToUserName: ghMenu, FromUserName: userMenu, CreateTime: 1408090817, MsgType: MsgTypeEvent, Event: EventPicWeixin,
		EventKey: "6", SendPicsInfo: &SendPicsInfo{Count: 1, PicList: []PicItem{{PicMd5Sum: "5a75aaca956d97be686719218f275c6b"}}},
	},
	"event_location_select.xml": {
		XMLName: xmlRoot, ToUserName: ghMenu, FromUserName: userMenu, CreateTime: 1408091189, MsgType: MsgTypeEvent, Event: EventLocationSelect,
		EventKey: "6", SendLocationInfo: &SendLocationInfo{LocationX: 23, LocationY: 113, Scale: 15, Label: "广州市海珠区客村艺苑路 106号"},
	},
	"event_templatesendjobfinish_success.xml": {
		XMLName: xmlRoot, ToUserName: "gh_7f083739789a", FromUserName: "oia2TjuEGTNoeX76QEjQNrcURxG8", CreateTime: 1395658920,
		MsgType: MsgTypeEvent, Event: EventTemplateSendJobFinish, JobMsgID: 3717005636572528642, Status: TemplateStatusSuccess,
	},
	"event_templatesendjobfinish_userblock.xml": {
		XMLName: xmlRoot, ToUserName: "gh_7f083739789a", FromUserName: "oia2TjuEGTNoeX76QEjQNrcURxG8", CreateTime: 1395658984,
		MsgType: MsgTypeEvent, Event: EventTemplateSendJobFinish, JobMsgID: 200163840, Status: TemplateStatusUserBlock,
	},
	"event_templatesendjobfinish_systemfailed.xml": {
		XMLName: xmlRoot, ToUserName: "gh_7f083739789a", FromUserName: "oia2TjuEGTNoeX76QEjQNrcURxG8", CreateTime: 1395659184,
		MsgType: MsgTypeEvent, Event: EventTemplateSendJobFinish, JobMsgID: 200163836, Status: TemplateStatusSystemFailed,
	},
	"event_templatesendjobfinish_systemfailed_nospace.xml": {
		XMLName: xmlRoot, ToUserName: "gh_7f083739789a", FromUserName: "oia2TjuEGTNoeX76QEjQNrcURxG8", CreateTime: 1395659185,
		MsgType: MsgTypeEvent, Event: EventTemplateSendJobFinish, JobMsgID: 200163837, Status: "failed:system failed",
	},
	"event_masssendjobfinish.xml": {
		XMLName: xmlRoot, ToUserName: "gh_4d00ed8d6399", FromUserName: "oV5CrjpxgaGXNHIQigzNlgLTnwic", CreateTime: 1481013459,
		MsgType: MsgTypeEvent, Event: EventMassSendJobFinish, JobMsgID: 1000001625, Status: "err(30003)",
		CopyrightCheckResult: &CopyrightCheckResult{Count: 2, CheckState: 2, ResultList: []CopyrightCheckItem{
			{ArticleIdx: 1, AuditState: 2, OriginalArticleURL: "Url_1", OriginalArticleType: 1, CanReprint: 1, NeedReplaceContent: 1, NeedShowReprintSource: 1},
			{ArticleIdx: 2, AuditState: 2, OriginalArticleURL: "Url_2", OriginalArticleType: 1, CanReprint: 1, NeedReplaceContent: 1, NeedShowReprintSource: 1},
		}},
	},
	"event_masssendjobfinish_success.xml": {
		XMLName: xmlRoot, ToUserName: "gh_3e8adccde292", FromUserName: "oR5Gjjl_eiZoUpGozMo7dbBJ362A", CreateTime: 1394524295,
		MsgType: MsgTypeEvent, Event: EventMassSendJobFinish, JobMsgID: 1000000016, Status: "send success",
		TotalCount: 100, FilterCount: 80, SentCount: 75, ErrorCount: 5,
		ArticleURLResult: &ArticleURLResult{Count: 1, ResultList: []ArticleURLItem{{ArticleIdx: 1, ArticleURL: "https://mp.weixin.qq.com/s/xxx"}}},
	},
	"event_subscribe_msg_popup.xml": {
		XMLName: xmlRoot, ToUserName: ghSub, FromUserName: userSub, CreateTime: 1610969440, MsgType: MsgTypeEvent, Event: EventSubscribeMsgPopup,
		SubscribeMsgPopupEvent: &SubscribeMsgEvent{List: []SubscribeMsgItem{
			{TemplateID: "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", SubscribeStatusString: "accept", PopupScene: 2},
			{TemplateID: "9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI", SubscribeStatusString: "reject", PopupScene: 2},
		}},
	},
	"event_subscribe_msg_change.xml": {
		XMLName: xmlRoot, ToUserName: ghSub, FromUserName: userSub, CreateTime: 1610969468, MsgType: MsgTypeEvent, Event: EventSubscribeMsgChange,
		SubscribeMsgChangeEvent: &SubscribeMsgEvent{List: []SubscribeMsgItem{
			{TemplateID: "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", SubscribeStatusString: "reject"},
		}},
	},
	"event_subscribe_msg_sent.xml": {
		XMLName: xmlRoot, ToUserName: ghSub, FromUserName: userSub, CreateTime: 1610969500, MsgType: MsgTypeEvent, Event: EventSubscribeMsgSent,
		SubscribeMsgSentEvent: &SubscribeMsgEvent{List: []SubscribeMsgItem{
			{TemplateID: "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", MsgID: 1700827132819554304, ErrorCode: 0, ErrorStatus: "success"},
		}},
	},
	"event_kf_create_session.xml": {
		XMLName: xmlRoot, ToUserName: "touser", FromUserName: "fromuser", CreateTime: 1399197672, MsgType: MsgTypeEvent, Event: EventKfCreateSession,
		KfAccount: "test1@test",
	},
	"event_kf_close_session.xml": {
		XMLName: xmlRoot, ToUserName: "touser", FromUserName: "fromuser", CreateTime: 1399197673, MsgType: MsgTypeEvent, Event: EventKfCloseSession,
		KfAccount: "test1@test",
	},
	"event_kf_switch_session.xml": {
		XMLName: xmlRoot, ToUserName: "touser", FromUserName: "fromuser", CreateTime: 1399197674, MsgType: MsgTypeEvent, Event: EventKfSwitchSession,
		FromKfAccount: "test1@test", ToKfAccount: "test2@test",
	},
	"event_user_enter_tempsession.xml": {
		XMLName: xmlRoot, ToUserName: "gh_b1eb3f8bd6c6", FromUserName: "okPEat9FRX96xG8JQvTxHLpzDV64", CreateTime: 1482048670,
		MsgType: MsgTypeEvent, Event: EventUserEnterTempSession, SessionFrom: "order-1024",
	},
	"event_publishjobfinish.xml": {
		XMLName: xmlRoot, ToUserName: "gh_4d00ed8d6399", FromUserName: "oV5CrjpxgaGXNHIQigzNlgLTnwic", CreateTime: 1635826220,
		MsgType: MsgTypeEvent, Event: EventPublishJobFinish,
		PublishEventInfo: &PublishEventInfo{PublishID: "2247503051", ArticleID: "b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvyWP4Hq4",
			ArticleDetail: &PublishArticleDetail{Count: 1, Items: []PublishArticleItem{{Idx: 1, ArticleURL: "https://mp.weixin.qq.com/s/b5O2OUs25HBxRceL7hfReg"}}}},
	},
}

func fixtureNames() []string {
	names := make([]string, 0, len(messageFixtures))
	for name := range messageFixtures {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Every file in testdata/messages has an expectation and vice versa, so a new
// fixture cannot go unchecked.
func TestMessageFixturesAreAllChecked(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "messages", "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	for _, f := range files {
		onDisk[filepath.Base(f)] = true
		if _, ok := messageFixtures[filepath.Base(f)]; !ok {
			t.Errorf("fixture %s has no expectation in messageFixtures", f)
		}
	}
	for name := range messageFixtures {
		if !onDisk[name] {
			t.Errorf("messageFixtures[%q] has no file", name)
		}
	}
}

func TestParseMessageFixtures(t *testing.T) {
	t.Parallel()
	for _, name := range fixtureNames() {
		want := messageFixtures[name]
		t.Run(strings.TrimSuffix(name, ".xml"), func(t *testing.T) {
			t.Parallel()
			got, err := ParseMessage(readFixture(t, name))
			if err != nil {
				t.Fatalf("ParseMessage: %v", err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("ParseMessage mismatch\n got: %+v\nwant: %+v", *got, want)
			}
			if got.IsEvent() != strings.HasPrefix(name, "event_") {
				t.Errorf("IsEvent() = %v", got.IsEvent())
			}
		})
	}
}

// 64-bit ids must survive exactly: these exceed 2^53, where float64 loses
// the last digits.
func TestParseMessageLargeIDsExact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fixture string
		get     func(*Message) int64
		want    int64
	}{
		{"text.xml", func(m *Message) int64 { return m.MsgID }, 6054768590064713728},
		{"event_templatesendjobfinish_success.xml", func(m *Message) int64 { return m.JobMsgID }, 3717005636572528642},
		{"event_subscribe_msg_sent.xml", func(m *Message) int64 { return m.SubscribeMsgSentEvent.List[0].MsgID }, 1700827132819554304},
	}
	for _, tt := range tests {
		m, err := ParseMessage(readFixture(t, tt.fixture))
		if err != nil {
			t.Fatalf("%s: %v", tt.fixture, err)
		}
		got := tt.get(m)
		if got != tt.want {
			t.Errorf("%s: id = %d, want %d", tt.fixture, got, tt.want)
		}
		if got <= 1<<53 {
			t.Errorf("%s: %d is not beyond float64 precision", tt.fixture, got)
		}
	}
}

func TestParseMessageErrors(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"empty":                  "",
		"not xml":                "success",
		"json":                   `{"ToUserName":"gh_1"}`,
		"wrong root":             "<msg><ToUserName>a</ToUserName></msg>",
		"unclosed":               "<xml><ToUserName><![CDATA[a]]></ToUserName>",
		"bad number":             "<xml><CreateTime>soon</CreateTime></xml>",
		"int64 overflow":         "<xml><MsgId>9223372036854775808</MsgId></xml>",
		"illegal char ref":       "<xml><Content>&#0;</Content></xml>",
		"NaN latitude":           "<xml><MsgType>event</MsgType><Event>LOCATION</Event><Latitude>NaN</Latitude></xml>",
		"Inf scale":              "<xml><MsgType>location</MsgType><Scale>+Inf</Scale></xml>",
		"NaN in location_select": "<xml><SendLocationInfo><Location_X>nan</Location_X></SendLocationInfo></xml>",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m, err := ParseMessage([]byte(body))
			if !errors.Is(err, ErrMalformedMessage) {
				t.Fatalf("ParseMessage(%q) = %+v, %v; want ErrMalformedMessage", body, m, err)
			}
		})
	}
}

// A namespaced root still is <xml>: the parsed message must look like any
// other, so that it encodes and compares the same.
func TestParseMessageNormalisesRoot(t *testing.T) {
	t.Parallel()
	m, err := ParseMessage([]byte(`<xml xmlns="urn:x"><MsgType>text</MsgType><Content>hi</Content></xml>`))
	if err != nil {
		t.Fatal(err)
	}
	if m.XMLName != xmlRoot {
		t.Errorf("XMLName = %+v, want %+v", m.XMLName, xmlRoot)
	}
}

func TestParseJSONMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want Message
	}{
		{
			name: "V4 plaintext",
			body: vectorByName(t, "V4").Msg,
			want: Message{XMLName: xmlRoot, ToUserName: ghOA, FromUserName: userOA, CreateTime: 1714112445, MsgType: MsgTypeEvent, Event: "debug_demo"},
		},
		{
			name: "V4 safe-mode body",
			body: `{"ToUserName":"gh_97417a04a28d","Encrypt":"+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c=="}`,
			want: Message{XMLName: xmlRoot, ToUserName: ghOA, Encrypt: "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c=="},
		},
		{
			name: "text with 64-bit MsgId as number",
			body: `{"ToUserName":"gh_1","FromUserName":"o_1","CreateTime":1482048670,"MsgType":"text","Content":"this is a test","MsgId":6054768590064713728}`,
			want: Message{XMLName: xmlRoot, ToUserName: "gh_1", FromUserName: "o_1", CreateTime: 1482048670, MsgType: MsgTypeText, Content: "this is a test", MsgID: 6054768590064713728},
		},
		{
			name: "numbers as strings",
			body: `{"ToUserName":"gh_1","FromUserName":"o_1","CreateTime":"1482048670","MsgType":"location","Location_X":"23.134521","Location_Y":"113.358803","Scale":"20","Label":"位置","MsgId":"6054768590064713728","Idx":""}`,
			want: Message{XMLName: xmlRoot, ToUserName: "gh_1", FromUserName: "o_1", CreateTime: 1482048670, MsgType: MsgTypeLocation,
				LocationX: 23.134521, LocationY: 113.358803, Scale: 20, Label: "位置", MsgID: 6054768590064713728},
		},
		{
			name: "miniprogrampage",
			body: `{"ToUserName":"gh_1","FromUserName":"o_1","CreateTime":1482048670,"MsgType":"miniprogrampage","MsgId":1234567890123456,"AppId":"wx286b93c14bbf93aa","Title":"Title","PagePath":"pages/index","ThumbUrl":"","ThumbMediaId":"thumb"}`,
			want: Message{XMLName: xmlRoot, ToUserName: "gh_1", FromUserName: "o_1", CreateTime: 1482048670, MsgType: MsgTypeMiniProgramPage,
				MsgID: 1234567890123456, AppID: "wx286b93c14bbf93aa", Title: "Title", PagePath: "pages/index", ThumbMediaID: "thumb"},
		},
		{
			name: "popup event, List is a single object, PopupScene a string",
			body: `{"ToUserName":"gh_1","FromUserName":"o_1","CreateTime":"1620963428","MsgType":"event","Event":"subscribe_msg_popup_event","List":{"PopupScene":"0","SubscribeStatusString":"accept","TemplateId":"hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vzyvQu7O68"}}`,
			want: Message{XMLName: xmlRoot, ToUserName: "gh_1", FromUserName: "o_1", CreateTime: 1620963428, MsgType: MsgTypeEvent, Event: EventSubscribeMsgPopup,
				SubscribeMsgPopupEvent: &SubscribeMsgEvent{List: []SubscribeMsgItem{{TemplateID: "hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vzyvQu7O68", SubscribeStatusString: "accept"}}}},
		},
		{
			name: "popup event, List is an array",
			body: `{"ToUserName":"gh_1","FromUserName":"o_1","CreateTime":1620963428,"MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"PopupScene":"1","SubscribeStatusString":"accept","TemplateId":"T1"},{"PopupScene":2,"SubscribeStatusString":"reject","TemplateId":"T2"}]}`,
			want: Message{XMLName: xmlRoot, ToUserName: "gh_1", FromUserName: "o_1", CreateTime: 1620963428, MsgType: MsgTypeEvent, Event: EventSubscribeMsgPopup,
				SubscribeMsgPopupEvent: &SubscribeMsgEvent{List: []SubscribeMsgItem{
					{TemplateID: "T1", SubscribeStatusString: "accept", PopupScene: 1},
					{TemplateID: "T2", SubscribeStatusString: "reject", PopupScene: 2},
				}}},
		},
		{
			name: "sent event, 64-bit MsgID as string",
			body: `{"ToUserName":"gh_1","FromUserName":"o_1","CreateTime":1620963428,"MsgType":"event","Event":"subscribe_msg_sent_event","List":{"TemplateId":"T1","MsgID":"1700827132819554304","ErrorCode":"0","ErrorStatus":"success"}}`,
			want: Message{XMLName: xmlRoot, ToUserName: "gh_1", FromUserName: "o_1", CreateTime: 1620963428, MsgType: MsgTypeEvent, Event: EventSubscribeMsgSent,
				SubscribeMsgSentEvent: &SubscribeMsgEvent{List: []SubscribeMsgItem{{TemplateID: "T1", MsgID: 1700827132819554304, ErrorStatus: "success"}}}},
		},
		{
			name: "change event in its container",
			body: `{"ToUserName":"gh_1","FromUserName":"o_1","CreateTime":1620963428,"MsgType":"event","Event":"subscribe_msg_change_event","SubscribeMsgChangeEvent":{"List":{"TemplateId":"T1","SubscribeStatusString":"reject"}}}`,
			want: Message{XMLName: xmlRoot, ToUserName: "gh_1", FromUserName: "o_1", CreateTime: 1620963428, MsgType: MsgTypeEvent, Event: EventSubscribeMsgChange,
				SubscribeMsgChangeEvent: &SubscribeMsgEvent{List: []SubscribeMsgItem{{TemplateID: "T1", SubscribeStatusString: "reject"}}}},
		},
		{
			name: "user_enter_tempsession",
			body: `{"ToUserName":"gh_1","FromUserName":"o_1","CreateTime":1482048670,"MsgType":"event","Event":"user_enter_tempsession","SessionFrom":"sessionFrom"}`,
			want: Message{XMLName: xmlRoot, ToUserName: "gh_1", FromUserName: "o_1", CreateTime: 1482048670, MsgType: MsgTypeEvent, Event: EventUserEnterTempSession, SessionFrom: "sessionFrom"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseJSONMessage([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseJSONMessage: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("mismatch\n got: %+v\nwant: %+v", *got, tt.want)
			}
		})
	}
}

func TestParseJSONMessageErrors(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		``, `{`, `null`, `[]`, `"text"`, `42`,
		`{"CreateTime":"soon"}`,
		`{"CreateTime":1.5}`,
		`{"MsgId":"NaN"}`,
		`{"MsgId":9223372036854775808}`,
		`{"Content":12}`,
		`{"Event":"subscribe_msg_popup_event","List":"accept"}`,
	} {
		m, err := ParseJSONMessage([]byte(body))
		if !errors.Is(err, ErrMalformedMessage) {
			t.Errorf("ParseJSONMessage(%s) = %+v, %v; want ErrMalformedMessage", body, m, err)
		}
	}
}

// The same push arriving as XML and as JSON is the same message.
func TestParseJSONMatchesXML(t *testing.T) {
	t.Parallel()
	x, err := ParseMessage(readFixture(t, "event_subscribe_msg_sent.xml"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := ParseJSONMessage([]byte(`{"ToUserName":"gh_123456789abc","FromUserName":"otFpruAK8D-E6EfStSYonYSBZ8_4","CreateTime":1610969500,"MsgType":"event","Event":"subscribe_msg_sent_event","List":[{"TemplateId":"VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc","MsgID":1700827132819554304,"ErrorCode":0,"ErrorStatus":"success"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x, j) {
		t.Errorf("XML and JSON differ\nxml:  %+v\njson: %+v", x, j)
	}
	if x.DedupKey() != j.DedupKey() {
		t.Errorf("DedupKey differs: %s vs %s", x.DedupKey(), j.DedupKey())
	}
}

func TestDedupKey(t *testing.T) {
	t.Parallel()
	parse := func(name string) *Message {
		t.Helper()
		m, err := ParseMessage(readFixture(t, name))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	t.Run("retries of every fixture share a key", func(t *testing.T) {
		t.Parallel()
		seen := map[string]string{}
		for _, name := range fixtureNames() {
			a, b := parse(name), parse(name)
			if a.DedupKey() != b.DedupKey() {
				t.Errorf("%s: same XML gives %q and %q", name, a.DedupKey(), b.DedupKey())
			}
			// Compact and pretty-printed forms of one push are the same push.
			if c, err := ParseMessage(EncodeMessage(a)); err != nil || c.DedupKey() != a.DedupKey() {
				t.Errorf("%s: re-encoded push has another key (%v)", name, err)
			}
			if other, dup := seen[a.DedupKey()]; dup {
				// The two plain-subscribe fixtures are one event written twice.
				if !(strings.HasPrefix(name, "event_subscribe") && strings.HasPrefix(other, "event_subscribe")) {
					t.Errorf("%s and %s share key %q", name, other, a.DedupKey())
				}
			}
			seen[a.DedupKey()] = name
		}
	})

	t.Run("messages by MsgId", func(t *testing.T) {
		t.Parallel()
		m := parse("text.xml")
		if got, want := m.DedupKey(), "msg:6054768590064713728"; got != want {
			t.Errorf("DedupKey = %q, want %q", got, want)
		}
		// A retry is keyed by MsgId alone, even if a proxy rewrote CreateTime.
		m2 := *m
		m2.CreateTime++
		if m2.DedupKey() != m.DedupKey() {
			t.Error("text message key depends on CreateTime")
		}
	})

	t.Run("job-finish events by MsgID", func(t *testing.T) {
		t.Parallel()
		m := parse("event_templatesendjobfinish_success.xml")
		if got, want := m.DedupKey(), "job:templatesendjobfinish:3717005636572528642"; got != want {
			t.Errorf("DedupKey = %q, want %q", got, want)
		}
		mass := parse("event_masssendjobfinish.xml")
		if got, want := mass.DedupKey(), "job:masssendjobfinish:1000001625"; got != want {
			t.Errorf("DedupKey = %q, want %q", got, want)
		}
	})

	t.Run("different events in the same second differ", func(t *testing.T) {
		t.Parallel()
		sub, loc := parse("event_subscribe.xml"), parse("event_location.xml")
		if sub.FromUserName != loc.FromUserName || sub.CreateTime != loc.CreateTime {
			t.Fatal("fixtures must share sender and second")
		}
		if sub.DedupKey() == loc.DedupKey() {
			t.Errorf("subscribe and LOCATION share key %q", sub.DedupKey())
		}

		popup := parse("event_subscribe_msg_popup.xml")
		other := parse("event_subscribe_msg_popup.xml")
		other.SubscribeMsgPopupEvent.List = other.SubscribeMsgPopupEvent.List[:1]
		other.SubscribeMsgPopupEvent.List[0].TemplateID = "another-template"
		if popup.DedupKey() == other.DedupKey() {
			t.Errorf("popup events for different templates share key %q", popup.DedupKey())
		}
		accept := parse("event_subscribe_msg_popup.xml")
		accept.SubscribeMsgPopupEvent.List[1].SubscribeStatusString = "accept"
		if popup.DedupKey() == accept.DedupKey() {
			t.Error("popup events with different choices share a key")
		}

		// Two users in the same second, same event.
		u2 := parse("event_subscribe.xml")
		u2.FromUserName = "o_someone_else"
		if u2.DedupKey() == sub.DedupKey() {
			t.Error("two users share a key")
		}
	})

	t.Run("messages without MsgId fall back to sender and time", func(t *testing.T) {
		t.Parallel()
		m := parse("text.xml")
		m.MsgID = 0
		if k := m.DedupKey(); !strings.HasPrefix(k, "evt:oyORnuP8q7ou2gfYjqLzSIWZf0rs:1409735668:") {
			t.Errorf("DedupKey = %q", k)
		}
	})
}

func TestQRScene(t *testing.T) {
	t.Parallel()
	tests := []struct {
		event, key string
		scene      string
		ok         bool
	}{
		{EventSubscribe, "qrscene_S-1024", "S-1024", true},
		{EventSubscribe, "qrscene_123123", "123123", true},
		{EventSubscribe, "", "", false},
		{EventSubscribe, "qrscene_", "", false},
		{EventSubscribe, "123123", "", false}, // subscribe without the prefix is no QR follow
		{EventScan, "123123", "123123", true},
		{EventScan, "qrscene_x", "qrscene_x", true}, // SCAN's key is the scene as is
		{EventScan, "", "", false},
		{EventClick, "qrscene_1", "", false},
		{"", "qrscene_1", "", false},
	}
	for _, tt := range tests {
		m := &Message{MsgType: MsgTypeEvent, Event: tt.event, EventKey: tt.key}
		scene, ok := m.QRScene()
		if scene != tt.scene || ok != tt.ok {
			t.Errorf("QRScene(%s, %q) = %q, %v; want %q, %v", tt.event, tt.key, scene, ok, tt.scene, tt.ok)
		}
	}
	for fixture, want := range map[string]string{"event_subscribe_qrscene.xml": "S-1024", "event_scan.xml": "123123"} {
		m, err := ParseMessage(readFixture(t, fixture))
		if err != nil {
			t.Fatal(err)
		}
		if scene, ok := m.QRScene(); !ok || scene != want {
			t.Errorf("%s: QRScene = %q, %v; want %q", fixture, scene, ok, want)
		}
	}
	for _, fixture := range []string{"event_subscribe.xml", "event_subscribe_empty_eventkey.xml", "event_click.xml"} {
		m, err := ParseMessage(readFixture(t, fixture))
		if err != nil {
			t.Fatal(err)
		}
		if scene, ok := m.QRScene(); ok {
			t.Errorf("%s: QRScene = %q, true; want none", fixture, scene)
		}
	}
}

func TestTemplateJobStatus(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"success":               "success",
		"failed:user block":     "user_block",
		"failed: user block":    "user_block",
		"failed: system failed": "system_failed",
		"failed:system failed":  "system_failed",
		"Failed: System Failed": "system_failed",
		"failed:unknown reason": "failed:unknown reason",
		"":                      "",
	}
	for in, want := range tests {
		if got := TemplateJobStatus(in); got != want {
			t.Errorf("TemplateJobStatus(%q) = %q, want %q", in, got, want)
		}
	}
	for fixture, want := range map[string]string{
		"event_templatesendjobfinish_success.xml":              "success",
		"event_templatesendjobfinish_userblock.xml":            "user_block",
		"event_templatesendjobfinish_systemfailed.xml":         "system_failed",
		"event_templatesendjobfinish_systemfailed_nospace.xml": "system_failed",
	} {
		m, err := ParseMessage(readFixture(t, fixture))
		if err != nil {
			t.Fatal(err)
		}
		if got := TemplateJobStatus(m.Status); got != want {
			t.Errorf("%s: TemplateJobStatus(%q) = %q, want %q", fixture, m.Status, got, want)
		}
	}
}

var (
	bareText = regexp.MustCompile(`<[A-Za-z_0-9]+>([^<]+)<`)
	number   = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
)

func TestEncodeMessageRoundTripsFixtures(t *testing.T) {
	t.Parallel()
	for _, name := range fixtureNames() {
		t.Run(strings.TrimSuffix(name, ".xml"), func(t *testing.T) {
			t.Parallel()
			m, err := ParseMessage(readFixture(t, name))
			if err != nil {
				t.Fatal(err)
			}
			enc := EncodeMessage(m)
			back, err := ParseMessage(enc)
			if err != nil {
				t.Fatalf("ParseMessage(EncodeMessage): %v\n%s", err, enc)
			}
			if !reflect.DeepEqual(m, back) {
				t.Errorf("round trip changed the message\n got: %+v\nwant: %+v\nxml: %s", back, m, enc)
			}
			if !bytes.Equal(EncodeMessage(back), enc) {
				t.Error("EncodeMessage is not stable")
			}
			// Strings go in CDATA; the only bare text is numbers.
			for _, m := range bareText.FindAllSubmatch(enc, -1) {
				if !number.Match(m[1]) {
					t.Errorf("bare text %q in %s", m[1], enc)
				}
			}
		})
	}
}

// Message's json tags are its JSON form (Mini Program pushes, stored logs):
// every fixture survives json.Marshal and ParseJSONMessage unchanged.
func TestJSONRoundTripsFixtures(t *testing.T) {
	t.Parallel()
	for _, name := range fixtureNames() {
		m, err := ParseMessage(readFixture(t, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("%s: json.Marshal: %v", name, err)
		}
		back, err := ParseJSONMessage(b)
		if err != nil {
			t.Fatalf("%s: ParseJSONMessage: %v\n%s", name, err, b)
		}
		if !reflect.DeepEqual(m, back) {
			t.Errorf("%s: JSON round trip changed the message\n got: %+v\nwant: %+v\njson: %s", name, back, m, b)
		}
	}
}

func TestEncodeMessageShape(t *testing.T) {
	t.Parallel()
	m, err := ParseMessage(readFixture(t, "text.xml"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(EncodeMessage(m))
	want := "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>" +
		"<CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><MsgId>6054768590064713728</MsgId>" +
		"<Content><![CDATA[abcdteT]]></Content></xml>"
	if got != want {
		t.Errorf("EncodeMessage =\n%s\nwant\n%s", got, want)
	}

	// Header elements are written even when empty; other empty ones are not.
	if got, want := string(EncodeMessage(&Message{})), "<xml><ToUserName><![CDATA[]]></ToUserName><FromUserName><![CDATA[]]></FromUserName><CreateTime>0</CreateTime><MsgType><![CDATA[]]></MsgType></xml>"; got != want {
		t.Errorf("EncodeMessage(empty) = %s", got)
	}

	pics, err := ParseMessage(readFixture(t, "event_pic_photo_or_album.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(EncodeMessage(pics)), "<SendPicsInfo><Count>2</Count><PicList><item><PicMd5Sum><![CDATA[5a75aaca956d97be686719218f275c6b]]></PicMd5Sum></item><item><PicMd5Sum><![CDATA[1b5f7c23b5bf75682a53e7b6d163e185]]></PicMd5Sum></item></PicList></SendPicsInfo>"; !strings.Contains(got, want) {
		t.Errorf("EncodeMessage(pics) = %s\nwant it to contain %s", got, want)
	}
	loc, err := ParseMessage(readFixture(t, "event_location.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(EncodeMessage(loc)); !strings.Contains(got, "<Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.38504</Precision>") {
		t.Errorf("floats not written bare: %s", got)
	}
}

// Strings that CDATA cannot carry verbatim still round-trip exactly.
func TestEncodeMessageAwkwardStrings(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"a]]>b",
		"]]>",
		"x]]]]>y",
		"line1\r\nline2",
		"cr\ronly",
		"<a href=\"https://example.com/?a=1&b=2\">link</a>",
		" leading and trailing ",
		"\ttab\n",
		"emoji 😀 中文",
	} {
		m := &Message{ToUserName: "gh_1", FromUserName: "o_1", CreateTime: 1, MsgType: MsgTypeText, Content: s, MsgID: 1}
		enc := EncodeMessage(m)
		back, err := ParseMessage(enc)
		if err != nil {
			t.Errorf("%q: %v\n%s", s, err, enc)
			continue
		}
		if back.Content != s {
			t.Errorf("Content %q came back as %q (xml %s)", s, back.Content, enc)
		}
	}
	// Characters XML cannot carry at all become U+FFFD rather than invalid XML.
	for _, s := range []string{"nul\x00", "bell\x07", "bad utf8 \xff", "\uFFFE"} {
		m := &Message{MsgType: MsgTypeText, Content: s}
		enc := EncodeMessage(m)
		back, err := ParseMessage(enc)
		if err != nil {
			t.Errorf("%q: EncodeMessage wrote invalid XML: %v\n%q", s, err, enc)
			continue
		}
		if !strings.Contains(back.Content, "\uFFFD") {
			t.Errorf("%q came back as %q", s, back.Content)
		}
	}
}

func TestEncodeMessageFloats(t *testing.T) {
	t.Parallel()
	for _, f := range []float64{0.1, 23.134521, 113.358803, -33.5, 1e-7, 123456789.125, math.MaxFloat64} {
		m := &Message{MsgType: MsgTypeEvent, Event: EventLocation, Latitude: f}
		back, err := ParseMessage(EncodeMessage(m))
		if err != nil {
			t.Fatal(err)
		}
		if back.Latitude != f {
			t.Errorf("Latitude %v came back as %v", f, back.Latitude)
		}
	}
}

func TestCompatibleModeBody(t *testing.T) {
	t.Parallel()
	v := vectorByName(t, "V1")
	c := mustCrypter(t, v.AppID, v.EncodingAESKey)
	body := CompatibleModeBody([]byte(v.Msg), v.Encrypt)
	m, err := ParseMessage(body)
	if err != nil {
		t.Fatalf("ParseMessage: %v\n%s", err, body)
	}
	want := messageFixtures["text.xml"]
	want.Encrypt = v.Encrypt
	if !reflect.DeepEqual(*m, want) {
		t.Errorf("compatible body parsed as %+v\nwant %+v", *m, want)
	}
	plain, _, err := c.Decrypt(m.Encrypt)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := ParseMessage(plain)
	if err != nil {
		t.Fatal(err)
	}
	m.Encrypt = ""
	if !reflect.DeepEqual(inner, m) {
		t.Errorf("encrypted copy %+v differs from the plain fields %+v", inner, m)
	}
	if !bytes.HasSuffix(body, []byte("<Encrypt><![CDATA["+v.Encrypt+"]]></Encrypt></xml>")) {
		t.Errorf("Encrypt not appended before </xml>: %s", body)
	}
	// Without a closing </xml> the body is returned as is.
	if got := CompatibleModeBody([]byte("success"), v.Encrypt); string(got) != "success" {
		t.Errorf("CompatibleModeBody(no xml) = %q", got)
	}
}

func TestSafeModeBody(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"V4", "V5"} {
		v := vectorByName(t, name)
		body := SafeModeBody(ghOA, v.Encrypt)
		want := "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><Encrypt><![CDATA[" + v.Encrypt + "]]></Encrypt></xml>"
		if string(body) != want {
			t.Errorf("%s: SafeModeBody = %s", name, body)
		}
		m, err := ParseMessage(body)
		if err != nil {
			t.Fatal(err)
		}
		if m.ToUserName != ghOA || m.Encrypt != v.Encrypt {
			t.Errorf("%s: parsed %+v", name, m)
		}
		plain, _, err := mustCrypter(t, v.AppID, v.EncodingAESKey).Decrypt(m.Encrypt)
		if err != nil {
			t.Fatal(err)
		}
		parse := ParseMessage
		if name == "V4" {
			parse = ParseJSONMessage
		}
		inner, err := parse(plain)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if inner.Event != "debug_demo" || inner.FromUserName != userOA || inner.ToUserName != ghOA {
			t.Errorf("%s: inner push %+v", name, inner)
		}
	}
}

// EncodeJSONMessage writes WeChat's JSON form (List at the top level, an
// object for one item; ErrorCode written for a successful send) and
// ParseJSONMessage reads every fixture back unchanged.
func TestEncodeJSONMessageRoundTrips(t *testing.T) {
	t.Parallel()
	lists := 0
	for _, name := range fixtureNames() {
		m, err := ParseMessage(readFixture(t, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := EncodeJSONMessage(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back, err := ParseJSONMessage(b)
		if err != nil || !reflect.DeepEqual(m, back) {
			t.Errorf("%s: round trip changed the message (%v)\n got: %+v\nwant: %+v\njson: %s", name, err, back, m, b)
		}
		container := listContainers[m.Event]
		if container == "" {
			continue
		}
		lists++
		var top map[string]json.RawMessage
		if err := json.Unmarshal(b, &top); err != nil {
			t.Fatal(err)
		}
		list, hasList := top["List"]
		_, hasContainer := top[container]
		if !hasList || hasContainer {
			t.Errorf("%s: List not at the top level: %s", name, b)
			continue
		}
		var items []SubscribeMsgItem
		if err := json.Unmarshal(list, &items); err != nil { // a single item is an object
			items = make([]SubscribeMsgItem, 1)
			if err := json.Unmarshal(list, &items[0]); err != nil {
				t.Errorf("%s: List is neither an array nor an object: %s", name, list)
			}
		} else if len(items) == 1 {
			t.Errorf("%s: one item written as an array: %s", name, list)
		}
		if m.Event == EventSubscribeMsgSent && !strings.Contains(string(list), `"ErrorCode":`) {
			t.Errorf("%s: ErrorCode left out: %s", name, list)
		}
	}
	if lists == 0 {
		t.Error("no fixture has a subscription-message event")
	}
}
