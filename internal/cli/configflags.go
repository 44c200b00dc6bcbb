package cli

import (
	"context"
	"flag"
	"fmt"
	"github.com/wxgate/wxgate/internal/token"
	"time"

	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/db"
)

// configFlags are the flags every command that reads the configuration takes.
// Precedence: defaults < file < WXGATE_* environment < flags.
type configFlags struct {
	path        string
	listen      string
	publicURL   string
	databaseURL string
	logLevel    string
}

func (f *configFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.path, "config", "", "YAML config file (配置文件); also WXGATE_CONFIG")
	fs.StringVar(&f.listen, "listen", "", "listen address, overrides listen")
	fs.StringVar(&f.publicURL, "public-url", "", "public base URL, overrides public_url")
	fs.StringVar(&f.databaseURL, "database-url", "", "sqlite://… or postgres://…, overrides database_url")
	fs.StringVar(&f.logLevel, "log-level", "", "debug|info|warn|error, overrides log_level")
}

// load reads and validates the configuration.
func (f *configFlags) load(env Env) (config.Config, error) {
	cfg, err := f.loadUnvalidated(env)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// open loads the configuration (validated unless the command works
// without accounts) and opens and migrates its database.
func (f *configFlags) open(ctx context.Context, env Env, validate bool) (config.Config, *db.DB, error) {
	load := f.loadUnvalidated
	if validate {
		load = f.load
	}
	cfg, err := load(env)
	if err != nil {
		return cfg, nil, err
	}
	database, err := openMigrated(ctx, cfg)
	return cfg, database, err
}

// openWithTokens is open for the commands that call WeChat: the
// configuration, the migrated database and the token broker of every
// account. The caller closes the database.
func (f *configFlags) openWithTokens(ctx context.Context, env Env) (config.Config, *db.DB, *token.Registry, error) {
	cfg, database, err := f.open(ctx, env, true)
	if err != nil {
		return cfg, nil, nil, err
	}
	tokens, err := newTokenRegistry(cfg, database, discardLogger(), time.Now, nil)
	if err != nil {
		database.Close()
		return cfg, nil, nil, err
	}
	return cfg, database, tokens, nil
}

func (f *configFlags) loadUnvalidated(env Env) (config.Config, error) {
	path := f.path
	if path == "" {
		path = lookupEnv(env, "WXGATE_CONFIG")
	}
	cfg, err := config.Load(path, env.Environ)
	if err != nil {
		return cfg, fmt.Errorf("load config: %w", err)
	}
	if f.listen != "" {
		cfg.Listen = f.listen
	}
	if f.publicURL != "" {
		cfg.PublicURL = f.publicURL
	}
	if f.databaseURL != "" {
		cfg.DatabaseURL = f.databaseURL
	}
	if f.logLevel != "" {
		cfg.LogLevel = f.logLevel
	}
	return cfg, nil
}
