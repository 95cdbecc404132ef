package config

import (
	"reflect"
)

// setting is one value of the configuration: what a key of the file, or
// its environment variable, sets.
type setting struct {
	path  string // imap.max_size
	index []int  // of the field in Config
	typ   reflect.Type
}

// settings lists the configuration's settings, in the order of the
// Config type: every field that holds a value (not a section), a secret
// counting as one value.
func settings() []setting {
	var out []setting
	var walk func(t reflect.Type, path string, index []int)
	walk = func(t reflect.Type, path string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(append([]int(nil), index...), i)
			switch name, inline := yamlKey(f); {
			case inline:
				walk(f.Type, path, idx)
			case name == "":
			case f.Type.Kind() == reflect.Struct && f.Type != durationType:
				walk(f.Type, join(path, name), idx)
			default:
				out = append(out, setting{join(path, name), idx, f.Type})
			}
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}
