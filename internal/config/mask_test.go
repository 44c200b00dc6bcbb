package config

import (
	"strings"
	"testing"
)

func TestMaskSecret(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"abc", "****"},
		{"abcdefghijk", "****"},      // 11 characters: nothing shown
		{"abcdefghijkl", "****ijkl"}, // 12 characters: last 4 shown
		{validAESKey, "****DEFG"},
		{"密钥密钥密钥密钥密钥密钥", "****密钥密钥"},
	}
	for _, tt := range tests {
		if got := MaskSecret(tt.in); got != tt.want {
			t.Errorf("MaskSecret(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskDatabaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"sqlite://data/wxgate.db", "sqlite://data/wxgate.db"},
		{"postgres://wxgate@db:5432/wx", "postgres://wxgate@db:5432/wx"},
		{"postgres://wxgate:short@db:5432/wx", "postgres://wxgate:****@db:5432/wx"},
		{"postgres://wxgate:a%40longpassword1@db/wx?sslmode=require", "postgres://wxgate:****ord1@db/wx?sslmode=require"},
		{"postgresql://db/wx?password=supersecretvalue&user=wx", "postgresql://db/wx?password=****alue&user=wx"},
		{"postgres://u:p@[::1:bad/wx", "postgres://****"},
	}
	for _, tt := range tests {
		if got := MaskDatabaseURL(tt.in); got != tt.want {
			t.Errorf("MaskDatabaseURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskedHidesEverySecret(t *testing.T) {
	t.Parallel()
	cfg, err := Load("testdata/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	main, _ := cfg.Account("main")
	secrets := []string{
		"s3cretPassw0rd",
		main.AppSecret,
		main.Token,
		main.EncodingAESKey,
		main.PreviousEncodingAESKey,
		cfg.Accounts[1].AppSecret, // read from app_secret_file
	}

	out, err := cfg.MaskedYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range secrets {
		if secret == "" {
			t.Fatal("test config lacks a secret")
		}
		if strings.Contains(string(out), secret) {
			t.Errorf("masked YAML contains the secret %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{
		"database_url: postgres://wxgate:****w0rd@db.internal:5432/wxgate?sslmode=disable",
		"app_secret: '****0001'",
		"token: '****'",
		"encoding_aes_key: '****DEFG'",
		"previous_encoding_aes_key: '****wvut'",
		"app_secret_file: testdata/shop_mp_secret.txt",
		"timestamp_window: 2m0s",
		"\n  - name: main\n", // two-space indentation
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("masked YAML lacks %q:\n%s", want, out)
		}
	}

	// Masking must not touch the original.
	if main.AppSecret != "test-secret-for-config-tests-0001" || !strings.Contains(cfg.DatabaseURL, "s3cretPassw0rd") {
		t.Error("Masked modified the original configuration")
	}
}
