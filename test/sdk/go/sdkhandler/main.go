// Command sdkhandler is a safe-mode WeChat callback served by the Go SDK
// silenceper/wechat/v2 the way its README shows: the SDK verifies, decrypts
// and parses each push, a handler answers a text reply, the SDK encrypts it.
// It stores nothing. bench/callback.sh runs it beside the ceiling and
// wxgate, so that wxgate is compared with what a developer would otherwise
// write.
//
//	sdkhandler --listen 127.0.0.1:0 --token T --aes-key K --app-id wx…
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/silenceper/wechat/v2/cache"
	"github.com/silenceper/wechat/v2/officialaccount"
	"github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/officialaccount/message"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	token := flag.String("token", "", "the account's Token (required)")
	aesKey := flag.String("aes-key", "", "the account's EncodingAESKey (required)")
	appID := flag.String("app-id", "", "the account's AppID (required)")
	flag.Parse()
	if *token == "" || *aesKey == "" || *appID == "" {
		log.Fatal("--token, --aes-key and --app-id are required")
	}
	oa := officialaccount.NewOfficialAccount(&config.Config{AppID: *appID, Token: *token, EncodingAESKey: *aesKey, Cache: cache.NewMemory()})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv := oa.GetServer(r, w)
		srv.SetMessageHandler(func(msg *message.MixMessage) *message.Reply {
			if msg.MsgType != message.MsgTypeText {
				return nil
			}
			return &message.Reply{MsgType: message.MsgTypeText, MsgData: message.NewText("收到：" + msg.Content)}
		})
		if err := srv.Serve(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_ = srv.Send()
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sdkhandler listening on http://%s\n", ln.Addr())
	// SIGTERM or SIGINT stops it cleanly, as the benchmark stops servers.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	server := &http.Server{Handler: handler}
	go func() {
		<-ctx.Done()
		_ = server.Shutdown(context.Background())
	}()
	if err := server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
