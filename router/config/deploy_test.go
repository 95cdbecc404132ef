package config_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ticketrouter/ticketrouter/router/config"
	"go.yaml.in/yaml/v3"
)

// TestDeployConfigs: every configuration shipped in deploy/ loads, and the
// only problems 'run' would find with it, the secrets set as deployed,
// are files that exist on the machine it is meant for, not here, and the
// placeholders the operator replaces.
func TestDeployConfigs(t *testing.T) {
	t.Setenv(config.EnvName("imap.secret"), "s3cret")
	t.Setenv(config.EnvName("nats.password"), "s3cret")
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
			if raw, err := os.ReadFile(path); err == nil && strings.Contains(string(raw), "\nsmtp:") {
				t.Setenv(config.EnvName("smtp.secret"), "s3cret") // as deployed; unset, it would turn mail on elsewhere
			}
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
				if e != nil && !errors.Is(e, fs.ErrNotExist) && !errors.Is(e, config.ErrPlaceholder) {
					t.Errorf("%s: %v", path, e)
				}
			}
			if cfg.Accounts == "" || cfg.IMAP.Addr == "" {
				t.Errorf("%s: accounts %q, imap.addr %q: want both set", path, cfg.Accounts, cfg.IMAP.Addr)
			}
		})
	}
}

// TestEnvNamesInDeploy: the deployment files and the README name only the
// variables the binary reads, so that the IMAP secret has one name from
// the configuration to the systemd unit, the Kubernetes Secret and the
// Dockerfile: config.EnvName("imap.secret"), which overrides the file.
func TestEnvNamesInDeploy(t *testing.T) {
	known := slices.Collect(maps.Values(config.EnvNames()))
	// Knobs of the tests, which the README documents too.
	known = append(known, "TICKETROUTER_CORPUS", "TICKETROUTER_TEST_DEBUG", "TICKETROUTER_E2E_SEED", "TICKETROUTER_BENCH_MAILS")
	secret := config.EnvName("imap.secret")
	name := regexp.MustCompile(`\bTICKETROUTER_[A-Z0-9_]*[A-Z0-9]`)
	files := []string{"../../README.md"}
	filepath.WalkDir("../../deploy", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	mentions := 0
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, v := range name.FindAllString(line, -1) {
				if !slices.Contains(known, v) {
					t.Errorf("%s:%d: %s is no setting's variable (config.EnvName; the IMAP secret's is %s)", p, i+1, v, secret)
				}
				if v == secret {
					mentions++
				}
			}
		}
	}
	if mentions < 5 {
		t.Errorf("%s is mentioned %d times in the deployment files: want the unit, the Dockerfile, the Kubernetes Secret and the examples to name it", secret, mentions)
	}
}
