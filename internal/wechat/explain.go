package wechat

// errcodeWords explains WeChat's errcodes to the person reading a failed
// send: what happened and what to do, {Chinese, English}.
var errcodeWords = map[int][2]string{
	-1:    {"微信系统繁忙，稍后会自动重试", "WeChat was busy; the send is retried"},
	40001: {"access_token 无效或已被其他程序刷新", "the access_token was invalid or replaced by another program"},
	40003: {"openid 无效，或不属于这个公众号", "the openid is invalid or belongs to another account"},
	40037: {"模板 ID 无效", "the template id is invalid"},
	43004: {"粉丝未关注公众号（或已取消关注）", "the follower has not subscribed (or has unsubscribed)"},
	43101: {"粉丝未订阅此消息（或订阅次数已用完）", "the follower has not accepted this subscription message (or used up the grant)"},
	45009: {"接口今日调用次数已达上限，次日零点恢复", "the API's daily quota is used up; it resets at midnight"},
	45015: {"粉丝 48 小时内未与公众号互动，客服消息无法送达", "the follower has not interacted within 48 hours, so customer-service messages cannot reach them"},
	45047: {"客服消息超过下发条数限制", "too many customer-service messages without a reply from the follower"},
	47003: {"模板参数不符合微信的规则", "a template value does not meet WeChat's rules"},
}

// ExplainCode words an errcode in lang ("zh" or "en"); "" for 0 and for
// codes without words.
func ExplainCode(code int, lang string) string {
	w, ok := errcodeWords[code]
	if !ok {
		return ""
	}
	if lang == "en" {
		return w[1]
	}
	return w[0]
}
