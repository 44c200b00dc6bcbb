package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/wxgate/wxgate/internal/follower"
	"github.com/wxgate/wxgate/internal/reply"
	"github.com/wxgate/wxgate/internal/wechatsim"
)

// demoImageKeyword is what a follower sends to get the demo's image reply.
const demoImageKeyword = "图片"

// demoTagName is the tag the demo gives its first followers, for the mass
// send of the tour.
const demoTagName = "演示会员"

// setUpDemoMedia writes the demo's welcome image next to its database and
// answers "图片" with it: the rule names the file, and wxgate uploads it as
// temporary media and keeps it fresh.
func setUpDemoMedia(ctx context.Context, gw *gateway, dataDir string) error {
	path, err := filepath.Abs(filepath.Join(dataDir, "welcome.png"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(path, demoWelcomePNG(), 0o644); err != nil {
			return fmt.Errorf("the demo image: %w", err)
		}
	}
	rules, err := gw.replies.List(ctx, demoAccount)
	if err != nil {
		return err
	}
	for _, r := range rules {
		if r.Match == reply.MatchKeyword && r.Pattern == demoImageKeyword {
			return nil
		}
	}
	if _, err := gw.replies.Add(ctx, reply.Rule{Account: demoAccount, Match: reply.MatchKeyword, Pattern: demoImageKeyword,
		Reply: reply.Content{Type: reply.ReplyImage, File: path}}); err != nil {
		return fmt.Errorf("the demo image reply: %w", err)
	}
	if err := gw.replies.Refresh(ctx); err != nil {
		return err
	}
	gw.replies.Warm(ctx)
	return nil
}

// demoWelcomePNG draws a small green card: an image a person recognises
// on the phone page.
func demoWelcomePNG() []byte {
	const size = 160
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			c := color.RGBA{R: 7, G: uint8(150 + x/4), B: uint8(80 + y/3), A: 255}
			// A white ring in the middle.
			dx, dy := x-size/2, y-size/2
			if d := dx*dx + dy*dy; d > 38*38 && d < 48*48 {
				c = color.RGBA{255, 255, 255, 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}

// setUpDemoTag makes the tag 演示会员 with the demo's first two followers,
// once, so the tour can mass-send to it; it returns the tag's id.
func setUpDemoTag(ctx context.Context, gw *gateway, sim *wechatsim.Simulator) (int64, error) {
	tags := follower.NewTags(follower.NewStore(gw.db, time.Now), gw.tokens)
	list, err := tags.List(ctx, demoAccount)
	if err != nil {
		return 0, err
	}
	for _, t := range list {
		if t.Name == demoTagName {
			return t.ID, nil
		}
	}
	tag, err := tags.Create(ctx, demoAccount, demoTagName)
	if err != nil {
		return 0, fmt.Errorf("the demo tag: %w", err)
	}
	users, err := sim.Users(demoAppID)
	if err != nil {
		return 0, err
	}
	var openids []string
	for _, u := range users[:min(2, len(users))] {
		openids = append(openids, u.OpenID)
	}
	if len(openids) > 0 {
		if _, err := tags.Change(ctx, demoAccount, tag.ID, openids, nil); err != nil {
			return 0, fmt.Errorf("tagging the demo followers: %w", err)
		}
	}
	return tag.ID, nil
}
