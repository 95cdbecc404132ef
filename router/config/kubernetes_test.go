package config

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"go.yaml.in/yaml/v3"
)

// k8sObject is the part of a Kubernetes manifest the test reads.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		// NetworkPolicy
		PodSelector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"podSelector"`
		PolicyTypes []string  `yaml:"policyTypes"`
		Ingress     []k8sRule `yaml:"ingress"`
		Egress      []k8sRule `yaml:"egress"`
		// Deployment
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []struct {
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
	Data map[string]string `yaml:"data"`
}

// k8sRule is a NetworkPolicy ingress or egress rule.
type k8sRule struct {
	From  []map[string]any `yaml:"from"`
	To    []map[string]any `yaml:"to"`
	Ports []struct {
		Protocol string `yaml:"protocol"`
		Port     int    `yaml:"port"`
	} `yaml:"ports"`
}

// TestKubernetesManifests: every manifest in deploy/kubernetes is YAML
// that names its kind; the NetworkPolicy selects the Deployment's pods,
// lets in only the probe and metrics port, from a named namespace, and
// lets out DNS, NATS and IMAP; the ConfigMap keeps Go's profiles off the
// pod's network.
func TestKubernetesManifests(t *testing.T) {
	files, err := filepath.Glob("../../deploy/kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	byKind := map[string][]k8sObject{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for i := 1; ; i++ {
			var o k8sObject
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s, document %d: %v", f, i, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s, document %d: apiVersion %q, kind %q, name %q: want all three", f, i, o.APIVersion, o.Kind, o.Metadata.Name)
			}
			byKind[o.Kind] = append(byKind[o.Kind], o)
		}
	}
	if len(byKind["Deployment"]) != 1 || len(byKind["NetworkPolicy"]) != 1 {
		t.Fatalf("%d Deployments, %d NetworkPolicies: want one of each", len(byKind["Deployment"]), len(byKind["NetworkPolicy"]))
	}
	dep, np := byKind["Deployment"][0], byKind["NetworkPolicy"][0]

	// The port the probes and Prometheus use, as the ConfigMap and the
	// Deployment say.
	var cfg struct {
		HTTP  HTTP  `yaml:"http"`
		Debug Debug `yaml:"debug"`
	}
	for _, cm := range byKind["ConfigMap"] {
		if s := cm.Data["ticketrouter.yaml"]; s != "" {
			if err := yaml.Unmarshal([]byte(s), &cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, p, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		t.Fatalf("configmap http.listen %q: %v", cfg.HTTP.Listen, err)
	}
	httpPort, _ := strconv.Atoi(p)
	if c := dep.Spec.Template.Spec.Containers; len(c) != 1 || len(c[0].Ports) != 1 || c[0].Ports[0].ContainerPort != httpPort {
		t.Errorf("deployment ports %+v: want the one of http.listen, %d", c, httpPort)
	}
	if l := cfg.Debug.Listen; l != "" && l != "off" {
		if host, _, _ := net.SplitHostPort(l); !net.ParseIP(host).IsLoopback() {
			t.Errorf("configmap debug.listen %q: want loopback (kubectl port-forward reaches it)", l)
		}
	}

	for k, v := range np.Spec.PodSelector.MatchLabels {
		if dep.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("NetworkPolicy selects %s=%s, which the Deployment's pods do not carry", k, v)
		}
	}
	if len(np.Spec.PodSelector.MatchLabels) == 0 {
		t.Error("NetworkPolicy selects every pod of the namespace")
	}
	if !slices.Equal(np.Spec.PolicyTypes, []string{"Ingress", "Egress"}) {
		t.Errorf("policyTypes %v, want [Ingress Egress]", np.Spec.PolicyTypes)
	}
	for i, r := range np.Spec.Ingress {
		if len(r.From) == 0 {
			t.Errorf("ingress rule %d admits every source", i)
		}
		for _, from := range r.From {
			if _, ok := from["namespaceSelector"]; !ok {
				t.Errorf("ingress rule %d: %v, want a namespaceSelector", i, from)
			}
		}
		if len(r.Ports) != 1 || r.Ports[0].Port != httpPort {
			t.Errorf("ingress rule %d: ports %+v, want only %d", i, r.Ports, httpPort)
		}
	}
	var out []int
	for _, r := range np.Spec.Egress {
		for _, p := range r.Ports {
			out = append(out, p.Port)
		}
	}
	for _, port := range []int{53, 4222, 993} {
		if !slices.Contains(out, port) {
			t.Errorf("egress ports %v: want %d among them", out, port)
		}
	}
}
