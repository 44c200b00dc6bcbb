package cli

import (
	"context"
	"fmt"

	"github.com/wxgate/wxgate/internal/menu"
	"github.com/wxgate/wxgate/internal/reply"
)

// demoTools is the demo menu's submenu of tools.
var demoTools = menu.Button{Name: "工具", SubButtons: []menu.Button{
	{Name: "扫一扫", Type: "scancode_waitmsg", Key: "DEMO_SCAN"},
	{Name: "发送位置", Type: "location_select", Key: "DEMO_LOCATION"},
	{Name: "官网", Type: "view", URL: "https://www.example.com/"},
}}

// demoMenu is the demo account's custom menu: one button of each kind a
// newcomer presses first on the simulator's phone, answered by
// demoMenuReplies; the followers tagged 演示会员 see a conditional menu
// with 会员专享 in place of 帮助.
var demoMenu = menu.Menu{
	Buttons: []menu.Button{{Name: "今日推荐", Type: "click", Key: "DEMO_TODAY"}, demoTools, {Name: "帮助", Type: "click", Key: "DEMO_HELP"}},
	Conditional: []menu.ConditionalMenu{{
		Match:   menu.MatchRule{Tag: demoTagName},
		Buttons: []menu.Button{{Name: "今日推荐", Type: "click", Key: "DEMO_TODAY"}, demoTools, {Name: "会员专享", Type: "click", Key: "DEMO_VIP"}},
	}},
}

var demoMenuReplies = map[string]string{
	"DEMO_TODAY":    "今日推荐：楼盘A 3室2厅，南北通透。\n回复「帮助」查看更多功能。",
	"DEMO_SCAN":     "扫码结果已收到，我们会尽快处理。",
	"DEMO_LOCATION": "收到你的位置，最近的门店是天河店。",
	"DEMO_HELP":     "菜单「今日推荐」看推荐，「工具」里可以扫码和发送位置。\n也可以直接发文字给我们。",
	"DEMO_VIP":      "会员专享：本周到店看房送精美礼品一份。（只有「演示会员」标签的粉丝看得到这个按钮）",
}

// setUpDemoMenu gives the demo account its menu and a reply for each of
// its keys, once (a restarted demo keeps what it has).
func setUpDemoMenu(ctx context.Context, gw *gateway) error {
	c, ok := gw.tokens.Client(demoAccount)
	if !ok {
		return fmt.Errorf("the demo account has no API client")
	}
	current, err := menu.Current(ctx, c)
	if err != nil {
		return err
	}
	if len(current.Buttons) > 0 {
		return nil
	}
	if err := menu.Apply(ctx, c, demoMenu); err != nil {
		return fmt.Errorf("the demo menu: %w", err)
	}
	rules, err := gw.replies.List(ctx, demoAccount)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, r := range rules {
		if r.Match == reply.MatchClick {
			have[r.EventKey] = true
		}
	}
	for _, b := range []string{"DEMO_TODAY", "DEMO_SCAN", "DEMO_LOCATION", "DEMO_HELP", "DEMO_VIP"} {
		if have[b] {
			continue
		}
		if _, err := gw.replies.Add(ctx, reply.Rule{Account: demoAccount, Match: reply.MatchClick, EventKey: b,
			Reply: reply.Content{Type: reply.ReplyText, Content: demoMenuReplies[b]}}); err != nil {
			return fmt.Errorf("the demo menu's replies: %w", err)
		}
	}
	return gw.replies.Refresh(ctx)
}
