// Package wechatsim is a local WeChat platform: the Official Account and
// Mini Program server APIs, simulated users whose phones post signed
// callbacks to an app's server, fault injection, a JSON control API and a
// phone-like web page. It behaves as ../shared/wechat-protocol.md describes,
// so that wxgate, and third-party SDKs pointed at it, can be tested without
// WeChat. It depends on the standard library, internal/wechat (the wire
// format), go-qrcode and yaml only.
//
// # Go API
//
//	sim, err := wechatsim.New(wechatsim.Config{Apps: apps, Logger: log, PublicBaseURL: "http://127.0.0.1:8081"})
//	defer sim.Close()
//	http.ListenAndServe(addr, sim.Handler())          // WeChat API at the root, /sim/ page, /sim/api/ control
//	backup := sim.DomainHandler("api2")               // a second base URL on the same platform
//	sim.SetDomainDown("api", true)                    // that listener now drops connections
//	u, _ := sim.CreateUser(ctx, wechatsim.CreateUserRequest{AppID: "wx…", Follow: true})
//	res, _ := sim.Act(ctx, u.OpenID, wechatsim.Action{Type: wechatsim.ActionText, Content: "你好"})
//	items, _ := sim.Inbox("wx…", u.OpenID)            // what the phone received
//	sim.SetFault(wechatsim.Fault{AppID: "wx…", Path: "/cgi-bin/message/template/send", ErrCode: -1, Rate: 0.5})
//	n := sim.CallCount("wx…", "/cgi-bin/stable_token")
//
// Other methods: AddApp, UpdateApp, Apps, Users, GetUser, Conversation,
// SubscriptionGrants, Templates, Menu, QRCodes, Tokens, InvalidateTokens,
// VerifyURL, Deliveries, Alarms, Faults, RemoveFault, ClearFaults,
// CallCounts, Reset; LoadAppsFile reads apps from YAML.
//
// Errors of the Go API are *Error with a Code (invalid, not_found,
// conflict, expired); the control API maps them to HTTP 400/404/409/410.
//
// # WeChat API
//
// Served at the root of every listener, with WeChat's paths, parameters,
// JSON shapes and errcodes: HTTP 200 with {"errcode":N,"errmsg":"… rid:
// <hex time>-<hex>-<hex>"} for errors, errcode left out by data APIs on
// success, {"errcode":0,"errmsg":"ok"} for action APIs, int64 ids above
// 2^53, no HTML or \u escaping, "application/json; encoding=utf-8" on
// cgi-bin and "text/plain" on sns.
//
//	GET  /cgi-bin/token                        POST /cgi-bin/stable_token
//	GET  /cgi-bin/user/info                    POST /cgi-bin/user/info/batchget   GET /cgi-bin/user/get
//	POST /cgi-bin/message/template/send        GET  /cgi-bin/template/get_all_private_template
//	POST /cgi-bin/template/api_add_template    POST /cgi-bin/template/del_private_template
//	POST /cgi-bin/message/subscribe/bizsend    POST /cgi-bin/message/subscribe/send (mini program)
//	GET  /wxaapi/newtmpl/gettemplate           POST /cgi-bin/message/custom/send, /custom/typing
//	POST /cgi-bin/qrcode/create                GET  /cgi-bin/showqrcode?ticket= (PNG, 404 when unknown/expired)
//	POST /cgi-bin/menu/create                  GET  /cgi-bin/menu/get, /cgi-bin/menu/delete
//	GET  /sns/jscode2session                   GET  /cgi-bin/getcallbackip, /cgi-bin/get_api_domain_ip
//	POST /cgi-bin/callback/check               POST /cgi-bin/clear_quota
//	POST /cgi-bin/tags/create|update|delete, /tags/members/batchtagging|batchuntagging, /tags/getidlist,
//	     /cgi-bin/user/tag/get                 GET  /cgi-bin/tags/get
//	POST /cgi-bin/media/upload (multipart)     GET  /cgi-bin/media/get (the file; 40007 after 3 days)
//	POST /cgi-bin/material/add_material|get_material|del_material|batchget_material
//	                                           GET  /cgi-bin/material/get_materialcount
//	     Size limits (image 10 MB, voice 2 MB, video 10 MB, thumb 64 KB: 40009–40012) and formats
//	     (sniffed: jpg/png/gif/bmp, amr/mp3, mp4, jpg: 40005) are WeChat's; a voice's 60 s is not checked.
//	POST /cgi-bin/message/mass/sendall|send|preview|delete|get: MASSSENDJOBFINISH after the job delay,
//	     4 sends per calendar month (45028; AppConfig.mass_sends_per_month), clientmsgid (45065–45067).
//	     mpnews ids are not checked (the draft box is not simulated).
//
// Other /cgi-bin/, /sns/ and /wxaapi/ paths answer HTTP 404 with errcode
// 48001. "43003 require https" is not simulated.
//
// # Control API (JSON)
//
//	GET    /sim/api/apps                          apps (secrets left out)
//	POST   /sim/api/apps                          add an app (AppConfig JSON: app_id, app_secret, kind, …)
//	GET    /sim/api/apps/{app_id}                 one app with its templates and menu
//	GET    /sim/api/apps/{app_id}/media/{media_id} a stored file (uploaded, or sent by a phone)
//	PUT    /sim/api/apps/{app_id}                 replace its configuration (empty app_secret keeps it)
//	GET    /sim/api/apps/{app_id}/tokens          its live access_tokens
//	POST   /sim/api/apps/{app_id}/invalidate_tokens
//	GET    /sim/api/apps/{app_id}/qrcodes         its QR codes, newest first
//	POST   /sim/api/apps/{app_id}/verify_url      the server URL verification GET
//	GET    /sim/api/users?app_id=                 users of an app
//	POST   /sim/api/users                         {"app_id","openid"?,"unionid"?,"name"?,"follow":true,"scene"?} → the user
//	                                              (201; 200 when it existed) with the follow's "delivery" and "reply"
//	GET    /sim/api/users/{openid}?app_id=        one user with their subscription grants
//	POST   /sim/api/users/{openid}/actions        an Action → ActionResult (what WeChat delivered, the reply shown)
//	GET    /sim/api/users/{openid}/inbox?app_id=  what the user received, in order
//	GET    /sim/api/users/{openid}/chat?app_id=   what the user sent and received, in order
//	GET    /sim/api/faults                        active faults
//	POST   /sim/api/faults                        add a Fault (latency as latency_ms) → {"id"}
//	DELETE /sim/api/faults                        remove all faults, bring domains back up
//	DELETE /sim/api/faults/{id}                   remove one fault
//	POST   /sim/api/domains/{domain}              {"down":true|false}
//	POST   /sim/api/reset                         forget users, tokens, codes, faults, calls, alarms
//	GET    /sim/api/calls?app_id=                 API call counts by path (all apps without app_id)
//	GET    /sim/api/alarms?app_id=                server alarms (timeouts, HTTP errors, invalid replies)
//	GET    /sim/api/deliveries?app_id=&openid=    the last 500 pushes with attempts, answers, outcome
//
// Errors: HTTP 4xx/5xx with {"error":{"code":"…","message":"中文 English"}};
// bodies with unknown fields are refused.
//
// Action types: text (content), image, voice (recognition), video,
// shortvideo, location (latitude, longitude, label), link (url, title,
// description), subscribe/follow (scene), unsubscribe/unfollow, scan
// (ticket or url), click (event_key), view (url), report_location,
// open_miniprogram (→ code for jscode2session), subscribe_popup
// (template_ids, accept or decisions), subscribe_off (template_ids),
// block_templates, unblock_templates, verify_url.
//
// # Behaviour where the protocol doc is silent
//
//   - client_msg_id: a repeat for the same openid within 10 minutes answers
//     success with the first msgid and sends nothing, so an idempotent
//     client can still match the delivery receipt.
//   - Interaction windows: the 1-minute window (follow, scan, click: 3
//     sends) and the 48-hour window (user message: 5 sends) are kept apart;
//     a send uses the short one first. An open window with no sends left is
//     45047, no open window (or an unfollowed user) 45015.
//   - Retries re-send byte-identical XML and, by default, the same query;
//     Config.RefreshQueryOnRetry gives each retry a new timestamp, nonce and
//     signatures. Any HTTP answer ends the retries; a non-200 status is a
//     failure (notice and alarm).
//   - A template send to a user who blocked templates succeeds (msgid) and
//     reports "failed:user block"; it does not reach the inbox. Inbox cards
//     are "sending" until TEMPLATESENDJOBFINISH is pushed, then "success".
//   - Subscription sends check data before using a grant, so a rejected
//     send never costs the user's consent. bizsend also answers a msgid.
//   - Permanent QR codes for a scene that already has one return the same
//     ticket; expire_seconds above 30 days is capped; the QR url is
//     PublicBaseURL/q/<code>.
//   - api_add_template knows a small library (TM00015, 10001…10005);
//     other short ids are 40037. batchget over 100 openids is 40032.
//   - A superseded classic token stops at min(expiry, re-issue + 5 min);
//     tokens dead for a day are forgotten (then 40001, not 42001).
//   - Quotas count successful calls per Beijing day; AppConfig.Quotas
//     overrides them per path; a test account has a tenth.
package wechatsim
