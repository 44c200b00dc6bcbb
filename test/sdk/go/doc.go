// Package sdk runs a third-party Go WeChat SDK, github.com/silenceper/wechat/v2,
// unchanged against wxgate's WeChat simulator. It is a module of its own so
// that the SDK and its dependencies never enter wxgate's go.mod.
//
// The suite needs a running simulator serving the apps of ../apps.yaml, at
// the address in WXGATE_SIM_URL; test/sdk/run.sh starts one. The SDK's URLs
// are fixed to https://api.weixin.qq.com and https://mp.weixin.qq.com; its
// own hook for that, util.SetURIModifier, points them at the simulator,
// which is the SDK's way of setting a base URL.
package sdk
