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

// syntaxError adds to a YAML syntax error the column at which it arises and the text
// of its line. The decoder names only the line; the column is found by parsing the
// document up to each character of that line in turn: the first prefix that gives the
// same error ends at the offending character. When no prefix does (an error that the
// next line decides), the line alone is given.
func syntaxError(raw []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	lines := bytes.Split(raw, []byte("\n"))
	var line int
	if _, scanErr := fmt.Sscanf(msg, "line %d:", &line); scanErr != nil {
		line = 0 // the decoder named no line: every line is searched
	}
	if line > len(lines) {
		return err
	}
	budget := 4000 // parses: a config is small, and a large document is not searched long
	first, last := 1, len(lines)
	if line > 0 {
		first, last = line, line
	}
	for l := first; l <= last; l++ {
		text := bytes.TrimRight(lines[l-1], "\r")
		before := bytes.Join(lines[:l-1], []byte("\n"))
		if l > 1 {
			before = append(before, '\n')
		}
		for c := 1; c <= len(text) && budget > 0 && len(before)+c <= 1<<15; c++ {
			budget--
			var n yaml.Node
			prefix := append(append([]byte(nil), before...), text[:c]...)
			if perr := yaml.Unmarshal(prefix, &n); perr == nil || perr.Error() != err.Error() {
				continue
			}
			where := fmt.Sprintf("line %d, column %d:", l, c)
			if line > 0 {
				msg = strings.Replace(msg, fmt.Sprintf("line %d:", line), where, 1)
			} else {
				msg = where + " " + msg
			}
			return fmt.Errorf("yaml: %s\n    %d | %s\n    %s^", msg, l, text, strings.Repeat(" ", len(fmt.Sprint(l))+3+c-1))
		}
	}
	if line == 0 {
		return err
	}
	return fmt.Errorf("yaml: %s\n    %d | %s", msg, line, bytes.TrimRight(lines[line-1], "\r"))
}

// Difference is one field in which two configurations differ: its YAML path
// (optimizer.lr, generator[2].units) and its value in each, NotSet where one has none
// (a layer the other lacks, an omitted optional field).
type Difference struct {
	Field, A, B string
}

// NotSet is Difference's value for a field a configuration does not have.
const NotSet = "(not set)"

// Diff lists the fields in which a and b differ, in the order of a's YAML, then the
// fields only b has, in b's.
func Diff(a, b *Config) ([]Difference, error) {
	fa, err := fieldValues(a)
	if err != nil {
		return nil, err
	}
	fb, err := fieldValues(b)
	if err != nil {
		return nil, err
	}
	inB := make(map[string]string, len(fb))
	for _, f := range fb {
		inB[f[0]] = f[1]
	}
	var diffs []Difference
	inA := make(map[string]bool, len(fa))
	for _, f := range fa {
		inA[f[0]] = true
		if v, ok := inB[f[0]]; !ok {
			diffs = append(diffs, Difference{f[0], f[1], NotSet})
		} else if v != f[1] {
			diffs = append(diffs, Difference{f[0], f[1], v})
		}
	}
	for _, f := range fb {
		if !inA[f[0]] {
			diffs = append(diffs, Difference{f[0], NotSet, f[1]})
		}
	}
	return diffs, nil
}

// fieldValues is c's YAML as (path, value) pairs of its scalars (and of its empty
// lists and mappings), in document order.
func fieldValues(c *Config) ([][2]string, error) {
	y, err := c.YAML()
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(y, &doc); err != nil {
		return nil, fmt.Errorf("config: reread its own YAML: %w", err)
	}
	var out [][2]string
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			if len(n.Content) == 0 {
				out = append(out, [2]string{path, "{}"})
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], join(path, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			if len(n.Content) == 0 {
				out = append(out, [2]string{path, "[]"})
			}
			for i, item := range n.Content {
				walk(item, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.ScalarNode:
			out = append(out, [2]string{path, n.Value})
		}
	}
	walk(&doc, "")
	return out, nil
}
