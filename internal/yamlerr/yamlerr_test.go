package yamlerr

import (
	"errors"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestWrap(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte("a: 1\nrows:\n  - id: x\n    when: {colour: 3}\n"), &root); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		in   error
		want string
	}{
		{errors.New("yaml: line 3: did not find expected key"), "p.yaml:3: rows[0].id: did not find expected key"},
		{&yaml.TypeError{Errors: []string{"line 1: field a not found in type rules.policyFile"}}, "p.yaml:1: a: unknown field"},
		{&yaml.TypeError{Errors: []string{"line 3: cannot unmarshal !!str `x` into int"}}, "p.yaml:3: rows[0].id: want int, got a string `x`"},
		{&yaml.TypeError{Errors: []string{"line 4: cannot unmarshal !!int `3` into []string"}}, "p.yaml:4: rows[0].when.colour: want []string, got a number `3`"},
		{errors.New("yaml: something else"), "p.yaml: something else"},
	} {
		if got := Wrap("p.yaml", &root, tt.in).Error(); got != tt.want {
			t.Errorf("Wrap(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
