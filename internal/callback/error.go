package callback

import (
	"encoding/json"
	"net/http"

	"github.com/wxgate/wxgate/internal/problem"
)

// Codes of refused callbacks. They are part of the contract: tests, logs,
// metrics and the docs name them.
const (
	CodeUnknownAccount      = "unknown_account"
	CodeInvalidSignature    = "invalid_signature"
	CodeInvalidMsgSignature = "invalid_msg_signature"
	CodeMissingEchostr      = "missing_echostr"
	CodeInvalidTimestamp    = "invalid_timestamp"
	CodeStaleTimestamp      = "stale_timestamp"
	CodeEncryptionRequired  = "encryption_required"
	CodeModeMismatch        = "mode_mismatch"
	CodeDecryptFailed       = "decrypt_failed"
	CodeAppIDMismatch       = "appid_mismatch"
	CodeToUserMismatch      = "to_user_mismatch"
	CodeCompatibleMismatch  = "compatible_mismatch"
	CodeBodyTooLarge        = "body_too_large"
	CodeMalformedBody       = "malformed_body"
	CodeStorageUnavailable  = "storage_unavailable"
)

var (
	errUnknownAccount = problem.New(problem.NotFound, CodeUnknownAccount, "",
		"no account with this name is configured; the callback URL is /wx/<account name> as in wxgate.yaml — 未配置该公众号，回调地址应为 /wx/<账号名>，账号名见 wxgate.yaml 的 accounts.name")
	errInvalidSignature = problem.New(problem.Unauthorized, CodeInvalidSignature, "",
		"signature does not match: check that the Token in 公众号后台 (开发 → 基本配置 → 服务器配置) equals the account's token in wxgate's config — 签名校验失败：请检查公众号后台「服务器配置」中的令牌(Token)与 wxgate 配置中的 token 是否一致")
	errMissingSignature = problem.New(problem.Unauthorized, CodeInvalidSignature, "",
		"the signature, timestamp and nonce query parameters are required; only WeChat's servers can call this URL — 缺少 signature、timestamp 或 nonce 参数：此地址只接受微信服务器的请求")
	errInvalidMsgSignature = problem.New(problem.Unauthorized, CodeInvalidMsgSignature, "",
		"msg_signature does not match the Encrypt value: check the Token in 公众号后台 and in wxgate's config — 消息签名(msg_signature)校验失败：请检查公众号后台与 wxgate 配置中的 Token 是否一致")
	errMissingEchostr = problem.New(problem.Invalid, CodeMissingEchostr, "",
		"the signature is valid but echostr is missing; WeChat's URL verification always sends it — 签名正确但缺少 echostr 参数（微信的 URL 验证请求总会带上它）")
	errInvalidTimestamp = problem.New(problem.Invalid, CodeInvalidTimestamp, "",
		"the timestamp query parameter is missing or not a number of seconds — timestamp 参数缺失或不是以秒为单位的数字")
	errStaleTimestamp = problem.New(problem.Unauthorized, CodeStaleTimestamp, "",
		"timestamp is outside the accepted window (callback.timestamp_window): a replayed request, or this server's clock is wrong — 时间戳超出允许范围（callback.timestamp_window）：可能是重放的请求，或服务器时间不准")
	errEncryptionRequired = problem.New(problem.Invalid, CodeEncryptionRequired, "",
		"this account is configured for encrypted messages (message_mode safe/compatible) but the request is not encrypted; choose the same 消息加解密方式 in 公众号后台 and in wxgate's config — 该账号配置为加密模式，但请求未加密：请确保公众号后台的「消息加解密方式」与 wxgate 配置的 message_mode 一致")
	errModeMismatch = problem.New(problem.Invalid, CodeModeMismatch, "",
		"the request is encrypted but this account is configured as message_mode plaintext; set message_mode and encoding_aes_key to match 公众号后台 — 请求是加密的，但该账号配置为明文模式：请按公众号后台设置 message_mode 和 encoding_aes_key")
	errDecryptFailed = problem.New(problem.Invalid, CodeDecryptFailed, "",
		"the Encrypt value could not be decrypted: check that encoding_aes_key equals the EncodingAESKey in 公众号后台 (after regenerating it, keep the old one as previous_encoding_aes_key) — 消息解密失败：请检查 encoding_aes_key 与公众号后台的 EncodingAESKey 是否一致（重新生成密钥后，可把旧密钥填入 previous_encoding_aes_key）")
	errAppIDMismatch = problem.New(problem.Unauthorized, CodeAppIDMismatch, "",
		"the message was encrypted for another AppID: check app_id in wxgate's config — 消息中的 AppID 与配置不符：请检查 wxgate 配置中的 app_id")
	errToUserMismatch = problem.New(problem.Forbidden, CodeToUserMismatch, "",
		"ToUserName is not this account's original_id (gh_…): the message was meant for another 公众号 — ToUserName 与配置的原始ID(original_id) 不符：这条消息属于另一个公众号")
	errCompatibleMismatch = problem.New(problem.Invalid, CodeCompatibleMismatch, "",
		"in compatible mode the plain fields must agree with the encrypted copy, and they do not — 兼容模式下明文字段与密文内容不一致")
	errBodyTooLarge = problem.New(problem.TooLarge, CodeBodyTooLarge, "",
		"the body is larger than callback.max_body_bytes — 请求体超过 callback.max_body_bytes 限制")
	errMalformedBody = problem.New(problem.Invalid, CodeMalformedBody, "",
		"the body is not a WeChat push (an <xml> document, or for a Mini Program a JSON object, with ToUserName, FromUserName, CreateTime and MsgType) — 请求体不是合法的微信推送（XML，或小程序的 JSON）")
	errStorageUnavailable = problem.New(problem.Unavailable, CodeStorageUnavailable, "",
		"the message could not be stored; check the database (see /readyz) — 消息无法写入数据库：请检查数据库（见 /readyz）")
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError writes e as {"error":{"code","message"}}: every refusal of a
// callback goes through it, the one place they become HTTP.
func writeError(w http.ResponseWriter, e *problem.Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status())
	_ = json.NewEncoder(w).Encode(errorBody{errorDetail{e.Code, e.Message}})
}
