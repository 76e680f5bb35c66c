package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/caddyserver/caddy/v2"
)

// newLogFile creates the file Caddy's logs go to, so that they do not run
// between the instructions the demo prints. It is left in place when the
// demo stops, to be read afterwards.
func newLogFile() (string, error) {
	f, err := os.CreateTemp("", "caddy-clerk-auth-demo-*.log")
	if err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// keepLogFile is for a demo that failed to start: it removes path if
// nothing was logged there, and otherwise says where to read more.
func keepLogFile(path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() > 0 {
		return fmt.Errorf("see Caddy's logs in %s", path)
	}
	return os.Remove(path)
}

// logToFile makes cfg's default log, which every Caddy module writes to
// unless the config says otherwise, append to path.
func logToFile(cfg *caddy.Config, path string) error {
	writer, err := json.Marshal(map[string]any{"output": "file", "filename": path, "roll": false})
	if err != nil {
		return err
	}
	if cfg.Logging == nil {
		cfg.Logging = &caddy.Logging{}
	}
	if cfg.Logging.Logs == nil {
		cfg.Logging.Logs = map[string]*caddy.CustomLog{}
	}
	log := cfg.Logging.Logs[caddy.DefaultLoggerName]
	if log == nil {
		log = &caddy.CustomLog{}
		cfg.Logging.Logs[caddy.DefaultLoggerName] = log
	}
	log.WriterRaw = writer
	return nil
}
