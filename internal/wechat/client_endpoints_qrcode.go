package wechat

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// QR code action names.
const (
	QRScene         = "QR_SCENE"
	QRStrScene      = "QR_STR_SCENE"
	QRLimitScene    = "QR_LIMIT_SCENE"
	QRLimitStrScene = "QR_LIMIT_STR_SCENE"
)

// Limits of parametric QR codes.
const (
	MaxQRCodeExpiry     = 30 * 24 * time.Hour // temporary codes
	MaxQRLimitSceneID   = 100000              // permanent numeric scenes are 1..100000
	MaxQRSceneStrLength = 64
)

// QRCodeRequest is the body of qrcode/create. Build it with TempQRCode or
// PermanentQRCode.
type QRCodeRequest struct {
	ExpireSeconds int64        `json:"expire_seconds,omitempty"`
	ActionName    string       `json:"action_name"`
	ActionInfo    QRActionInfo `json:"action_info"`
}

// QRActionInfo carries the scene.
type QRActionInfo struct {
	Scene QRSceneValue `json:"scene"`
}

// QRSceneValue is a numeric or a string scene.
type QRSceneValue struct {
	SceneID  int64  `json:"scene_id,omitempty"`
	SceneStr string `json:"scene_str,omitempty"`
}

// TempQRCode asks for a temporary QR code with a string scene
// (1..64 characters), valid for expiry (≤ 30 days).
func TempQRCode(sceneStr string, expiry time.Duration) *QRCodeRequest {
	return &QRCodeRequest{ExpireSeconds: int64(expiry / time.Second), ActionName: QRStrScene,
		ActionInfo: QRActionInfo{Scene: QRSceneValue{SceneStr: sceneStr}}}
}

// PermanentQRCode asks for a permanent QR code with a string scene.
// An account may have at most 100 000 permanent codes.
func PermanentQRCode(sceneStr string) *QRCodeRequest {
	return &QRCodeRequest{ActionName: QRLimitStrScene, ActionInfo: QRActionInfo{Scene: QRSceneValue{SceneStr: sceneStr}}}
}

// validate checks the limits WeChat enforces, so a bad request fails
// before using quota.
func (r *QRCodeRequest) validate() error {
	s := r.ActionInfo.Scene
	switch r.ActionName {
	case QRScene, QRLimitScene:
		if s.SceneID == 0 {
			return fmt.Errorf("%s needs a non-zero scene_id", r.ActionName)
		}
		if r.ActionName == QRLimitScene && (s.SceneID < 1 || s.SceneID > MaxQRLimitSceneID) {
			return fmt.Errorf("QR_LIMIT_SCENE scene_id must be 1..%d, got %d", MaxQRLimitSceneID, s.SceneID)
		}
	case QRStrScene, QRLimitStrScene:
		if n := len([]rune(s.SceneStr)); n < 1 || n > MaxQRSceneStrLength {
			return fmt.Errorf("%s scene_str must be 1..%d characters, got %d", r.ActionName, MaxQRSceneStrLength, n)
		}
	default:
		return fmt.Errorf("unknown QR action_name %q", r.ActionName)
	}
	if r.ExpireSeconds < 0 || r.ExpireSeconds > int64(MaxQRCodeExpiry/time.Second) {
		return fmt.Errorf("expire_seconds must be 0..%d, got %d", int64(MaxQRCodeExpiry/time.Second), r.ExpireSeconds)
	}
	return nil
}

// QRCode is the answer of qrcode/create.
type QRCode struct {
	Ticket string `json:"ticket"`
	// ExpireSeconds is 0 for permanent codes.
	ExpireSeconds int64 `json:"expire_seconds,omitempty"`
	// URL is the text the QR image encodes.
	URL string `json:"url"`
}

// CreateQRCode calls POST /cgi-bin/qrcode/create.
func (c *Client) CreateQRCode(ctx context.Context, r *QRCodeRequest) (*QRCode, error) {
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("wechat /cgi-bin/qrcode/create: %w", err)
	}
	var q QRCode
	if err := c.do(ctx, call{method: http.MethodPost, path: "/cgi-bin/qrcode/create", token: true, body: r}, &q); err != nil {
		return nil, err
	}
	return &q, nil
}

// ShowQRCodeURL returns the image URL of a ticket (no token needed):
// https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=…
func (c *Client) ShowQRCodeURL(ticket string) string {
	return c.t.qrBase + "/cgi-bin/showqrcode?ticket=" + url.QueryEscape(ticket)
}
