// Package wechat holds the WeChat Official Account / Mini Program protocol:
// callback signatures, the AES message envelope (WXBizMsgCrypt scheme),
// inbound message and event types, and passive reply builders.
//
// It depends on the standard library only, so both the gateway and the
// simulator can share one implementation of the wire format.
package wechat
