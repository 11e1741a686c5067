package config

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// checkDocument walks a parsed document against Config and lists, each with its YAML
// path and position (generator[2].units, line 7, column 12), the fields Config does not
// have and the values that do not fit their field. It is what a user reads instead of
// the decoder's errors, which name Go types.
func checkDocument(doc *yaml.Node) []string {
	var errs []string
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		checkNode(doc.Content[0], reflect.TypeOf(Config{}), "", 0, &errs)
	}
	return errs
}

// maxDepth bounds the walk (a config is a few levels deep; aliases could loop).
const maxDepth = 32

func checkNode(n *yaml.Node, t reflect.Type, path string, depth int, errs *[]string) {
	if depth > maxDepth {
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an empty value leaves the field as it was
	}
	at := func(format string, args ...any) {
		where := path
		if where == "" {
			where = "the document"
		}
		*errs = append(*errs, fmt.Sprintf("%s (line %d, column %d): %s", where, n.Line, n.Column, fmt.Sprintf(format, args...)))
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			at("want a mapping of fields, got %s", describe(n))
			return
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			fields[name] = f
			names = append(names, name)
		}
		sort.Strings(names)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, fmt.Sprintf("%s (line %d, column %d): unknown field %q; the fields here are %s",
					join(path, k.Value), k.Line, k.Column, k.Value, strings.Join(names, ", ")))
				continue
			}
			checkNode(v, f.Type, join(path, k.Value), depth+1, errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			at("want a list, got %s", describe(n))
			return
		}
		for i, item := range n.Content {
			checkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1, errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			at("want a mapping, got %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkNode(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), depth+1, errs)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			at("want %s, got %s", kindName(t), describe(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			at("want %s, got %q", kindName(t), n.Value)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

// kindName says what a field takes, in a config writer's words.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number ≥ 0"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// syntaxError adds the text of the line a YAML syntax error names, so that the
// mistake can be seen without opening the file.
func syntaxError(raw []byte, err error) error {
	var line int
	if _, scanErr := fmt.Sscanf(strings.TrimPrefix(err.Error(), "yaml: "), "line %d:", &line); scanErr != nil || line < 1 {
		return err
	}
	lines := bytes.Split(raw, []byte("\n"))
	if line > len(lines) {
		return err
	}
	return fmt.Errorf("%w\n    %d | %s", err, line, bytes.TrimRight(lines[line-1], "\r"))
}
