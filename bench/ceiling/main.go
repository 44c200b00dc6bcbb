// Command ceiling is the yardstick for the callback benchmark: an HTTP
// server, standard library only and independent of wxgate's code, that does
// exactly the cryptographic work of a safe-mode callback and nothing else —
// verify signature and msg_signature, decrypt the envelope (checking the
// AppID), parse the text message, build a fixed text reply to the sender and
// encrypt it. No rules, no storage, no logging: what a gateway cannot beat.
//
//	ceiling --listen 127.0.0.1:0 --token T --aes-key K --app-id wx…
//
// It prints "ceiling listening on http://ADDR" once it accepts connections
// and serves POST /wx/{account} (any account name) until SIGINT or SIGTERM.
package main

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The scheme pads to 32-byte blocks (PKCS#7 with K = 32), not AES's 16.
const padBlock = 32

const (
	maxBody   = 256 << 10
	window    = 5 * time.Minute
	replyText = "ok"
)

type server struct {
	token string
	appID string
	block cipher.Block
	iv    []byte
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8091", "address to listen on (port 0: any free port)")
	token := flag.String("token", "", "the account's Token (required)")
	aesKey := flag.String("aes-key", "", "the account's EncodingAESKey, 43 characters (required)")
	appID := flag.String("app-id", "", "the account's AppID (required)")
	flag.Parse()
	if *token == "" || *appID == "" {
		log.Fatal("ceiling: --token, --aes-key and --app-id are required")
	}
	if len(*aesKey) != 43 {
		log.Fatalf("ceiling: --aes-key must be 43 characters, got %d", len(*aesKey))
	}
	// The 43rd character carries two discarded bits: decode non-strictly.
	key, err := base64.StdEncoding.DecodeString(*aesKey + "=")
	if err != nil || len(key) != 32 {
		log.Fatal("ceiling: --aes-key is not base64 of 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		log.Fatal(err)
	}
	s := &server{token: *token, appID: *appID, block: block, iv: key[:16]}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /wx/{account}", s.callback)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("ceiling listening on http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		log.Fatal(err)
	}
}

type envelope struct {
	ToUserName string `xml:"ToUserName"`
	Encrypt    string `xml:"Encrypt"`
}

type textMessage struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   string   `xml:"ToUserName"`
	FromUserName string   `xml:"FromUserName"`
	CreateTime   int64    `xml:"CreateTime"`
	MsgType      string   `xml:"MsgType"`
	Content      string   `xml:"Content"`
	MsgID        int64    `xml:"MsgId"`
}

func (s *server) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	timestamp, nonce := q.Get("timestamp"), q.Get("nonce")
	if !equalSig(signature(s.token, timestamp, nonce), q.Get("signature")) {
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > window {
		http.Error(w, "stale timestamp", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "body", http.StatusBadRequest)
		return
	}
	var env envelope
	if err := xml.Unmarshal(body, &env); err != nil || env.Encrypt == "" {
		http.Error(w, "malformed envelope", http.StatusBadRequest)
		return
	}
	if !equalSig(signature(s.token, timestamp, nonce, env.Encrypt), q.Get("msg_signature")) {
		http.Error(w, "invalid msg_signature", http.StatusUnauthorized)
		return
	}
	plain, err := s.decrypt(env.Encrypt)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var m textMessage
	if err := xml.Unmarshal(plain, &m); err != nil || m.XMLName.Local != "xml" {
		http.Error(w, "malformed message", http.StatusBadRequest)
		return
	}
	if m.MsgType != "text" || m.FromUserName == "" {
		_, _ = io.WriteString(w, "success")
		return
	}

	now := time.Now().Unix()
	var reply bytes.Buffer
	reply.WriteString("<xml><ToUserName>")
	writeCDATA(&reply, m.FromUserName)
	reply.WriteString("</ToUserName><FromUserName>")
	writeCDATA(&reply, m.ToUserName)
	reply.WriteString("</FromUserName><CreateTime>")
	reply.WriteString(strconv.FormatInt(now, 10))
	reply.WriteString("</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[" + replyText + "]]></Content></xml>")
	encrypted, err := s.encrypt(reply.Bytes())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	replyTS := strconv.FormatInt(now, 10)
	var out bytes.Buffer
	out.WriteString("<xml><Encrypt><![CDATA[")
	out.WriteString(encrypted)
	out.WriteString("]]></Encrypt><MsgSignature><![CDATA[")
	out.WriteString(signature(s.token, replyTS, nonce, encrypted))
	out.WriteString("]]></MsgSignature><TimeStamp>" + replyTS + "</TimeStamp><Nonce>")
	writeCDATA(&out, nonce)
	out.WriteString("</Nonce></xml>")
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	_, _ = w.Write(out.Bytes())
}

// signature is WeChat's: the parts sorted, concatenated, SHA-1, hex.
func signature(parts ...string) string {
	slices.Sort(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

func equalSig(want, got string) bool {
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// decrypt opens an Encrypt value: random(16) ‖ len(4, big-endian) ‖ msg ‖ appid,
// PKCS#7-padded to 32 bytes, AES-256-CBC with IV = key[:16], Base64.
func (s *server) decrypt(encrypted string) ([]byte, error) {
	data, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil || len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, errors.New("bad ciphertext")
	}
	cipher.NewCBCDecrypter(s.block, s.iv).CryptBlocks(data, data)
	pad := int(data[len(data)-1])
	if pad < 1 || pad > padBlock || pad > len(data) {
		return nil, errors.New("bad padding")
	}
	data = data[:len(data)-pad]
	if len(data) < 20 {
		return nil, errors.New("short plaintext")
	}
	n := binary.BigEndian.Uint32(data[16:20])
	if uint64(n) > uint64(len(data)-20) {
		return nil, errors.New("bad length")
	}
	if string(data[20+n:]) != s.appID {
		return nil, errors.New("appid mismatch")
	}
	return data[20 : 20+n], nil
}

func (s *server) encrypt(msg []byte) (string, error) {
	n := 20 + len(msg) + len(s.appID)
	pad := padBlock - n%padBlock
	plain := make([]byte, n+pad)
	if _, err := rand.Read(plain[:16]); err != nil {
		return "", err
	}
	binary.BigEndian.PutUint32(plain[16:20], uint32(len(msg)))
	copy(plain[20:], msg)
	copy(plain[20+len(msg):], s.appID)
	for i := n; i < len(plain); i++ {
		plain[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(s.block, s.iv).CryptBlocks(plain, plain)
	return base64.StdEncoding.EncodeToString(plain), nil
}

// writeCDATA writes s as CDATA, splitting any "]]>" it contains.
func writeCDATA(b *bytes.Buffer, s string) {
	b.WriteString("<![CDATA[")
	b.WriteString(strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>"))
	b.WriteString("]]>")
}
