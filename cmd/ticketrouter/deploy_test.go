package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/ticketrouter/ticketrouter/router/config"
	"go.yaml.in/yaml/v3"
)

// TestDeployConfigs: every configuration shipped in deploy/ loads, and the
// only problems 'run' would find with it are files that exist on the
// machine it is meant for, not here.
func TestDeployConfigs(t *testing.T) {
	dir := t.TempDir()
	configs := []string{"../../deploy/ticketrouter.example.yaml", "../../deploy/ticketrouter.single.yaml"}
	// The ConfigMap carries the configuration as a string.
	raw, err := os.ReadFile("../../deploy/kubernetes/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(raw, &cm); err != nil {
		t.Fatalf("configmap.yaml: %v", err)
	}
	if cm.Data["ticketrouter.yaml"] == "" {
		t.Fatal("configmap.yaml holds no ticketrouter.yaml")
	}
	p := filepath.Join(dir, "configmap-ticketrouter.yaml")
	if err := os.WriteFile(p, []byte(cm.Data["ticketrouter.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	configs = append(configs, p)

	for _, path := range configs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.CheckService()
			list := []error{err}
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				list = j.Unwrap()
			}
			for _, e := range list {
				if e != nil && !errors.Is(e, fs.ErrNotExist) {
					t.Errorf("%s: %v", path, e)
				}
			}
			if cfg.Accounts == "" || cfg.IMAP.Addr == "" {
				t.Errorf("%s: accounts %q, imap.addr %q: want both set", path, cfg.Accounts, cfg.IMAP.Addr)
			}
		})
	}
}
