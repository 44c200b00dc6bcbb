package reply

import "github.com/wxgate/wxgate/internal/config"

// StarterRules is what an official account answers when its configuration
// lists no replies: what a typical first 公众号 sets up — a welcome on
// follow, a help keyword, and an acknowledgement per message type — so the
// first message a new user sends gets an answer. They are stored like
// configured rules (source config), so `wxgate replies list` shows them and
// configuring replies replaces them.
func StarterRules() []config.ReplyRule {
	text := func(s string) config.ReplyContent { return config.ReplyContent{Type: ReplyText, Content: s} }
	return []config.ReplyRule{
		{Match: MatchSubscribe, Reply: text("感谢关注！\n\n直接发送文字、图片、语音或位置给我们，我们会尽快回复。\n回复「帮助」查看可用功能。")},
		{Match: MatchKeyword, Mode: ModeExact, Pattern: "帮助", Reply: text("你可以：\n· 发送任意文字，我们会收到并回复\n· 发送图片、语音、视频或位置\n· 点击下方菜单使用更多功能")},
		{Match: MatchKeyword, Mode: ModeExact, Pattern: "help", Reply: text("Send us text, a picture, a voice message or your location and we will get back to you.\n回复「帮助」查看中文说明。")},
		{Match: MatchMsgType, MsgType: "text", Reply: text("收到你的消息：「{content}」\n我们会尽快回复。回复「帮助」查看可用功能。")},
		{Match: MatchMsgType, MsgType: "image", Reply: text("收到你的图片，谢谢！")},
		{Match: MatchMsgType, MsgType: "voice", Reply: text("收到你的语音，我们会尽快回复。")},
		{Match: MatchMsgType, MsgType: "video", Reply: text("收到你的视频，谢谢分享！")},
		{Match: MatchMsgType, MsgType: "shortvideo", Reply: text("收到你的小视频，谢谢分享！")},
		{Match: MatchMsgType, MsgType: "location", Reply: text("收到你的位置，谢谢！")},
		{Match: MatchMsgType, MsgType: "link", Reply: text("收到你分享的链接，我们会看看。")},
		{Match: MatchDefault, Reply: text("收到，我们会尽快回复。")},
	}
}
