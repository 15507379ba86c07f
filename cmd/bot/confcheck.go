package main

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v4"
)

// Problem is one configuration error: the YAML key it is about, its line in
// the file (0 when the value is a default or came from the environment) and
// what is wrong, in words a user knows (never a Go type name).
type Problem struct {
	Key  string
	Line int
	Msg  string
}

func (p Problem) String() string {
	switch {
	case p.Key == "" && p.Line > 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.Msg)
	case p.Key == "":
		return p.Msg
	case p.Line > 0:
		return fmt.Sprintf("%s: line %d: %s", p.Key, p.Line, p.Msg)
	}
	return p.Key + ": " + p.Msg
}

// ConfigError is every problem found in a configuration, in file order.
type ConfigError struct {
	File     string // "" for the embedded defaults
	Problems []Problem
}

func (e *ConfigError) Error() string {
	where := "config"
	if e.File != "" {
		where = "config " + e.File
	}
	if len(e.Problems) == 1 {
		return where + ": " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems:", where, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	return b.String()
}

// nodeChecker walks a YAML document along the configuration's types before
// it is decoded, so that each error names the key path and its line, and
// records which keys the file sets (and where).
type nodeChecker struct {
	problems []Problem
	lines    map[string]int // key path → line, for every key the file sets
}

func (c *nodeChecker) bad(key string, n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	c.problems = append(c.problems, Problem{Key: key, Line: line, Msg: fmt.Sprintf(format, args...)})
}

var durationType = reflect.TypeFor[time.Duration]()

// check checks n, found at key, against t.
func (c *nodeChecker) check(key string, n *yaml.Node, t reflect.Type) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			c.check(key, n.Content[0], t)
		}
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value keeps the default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		c.duration(key, n)
	case t.Kind() == reflect.Struct:
		c.mapping(key, n, t)
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.bad(key, n, "should hold keys and values (like name: value), not %s", describe(n))
			return
		}
		c.eachPair(n, func(k, v *yaml.Node) {
			c.lines[join(key, k.Value)] = k.Line
			c.check(join(key, k.Value), v, t.Elem())
		})
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.bad(key, n, "should be a list, like [a, b], not %s", describe(n))
			return
		}
		for i, item := range n.Content {
			c.check(fmt.Sprintf("%s[%d]", key, i), item, t.Elem())
		}
	case t.Kind() == reflect.Interface:
	default:
		c.scalar(key, n, t)
	}
}

// eachPair calls fn for every key and value of mapping n, merge keys (<<) included.
func (c *nodeChecker) eachPair(n *yaml.Node, fn func(k, v *yaml.Node)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			for v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			switch v.Kind {
			case yaml.MappingNode:
				c.eachPair(v, fn)
			case yaml.SequenceNode:
				for _, m := range v.Content {
					for m.Kind == yaml.AliasNode && m.Alias != nil {
						m = m.Alias
					}
					if m.Kind == yaml.MappingNode {
						c.eachPair(m, fn)
					}
				}
			}
			continue
		}
		fn(k, v)
	}
}

// mapping checks a struct's keys: each must be one of its fields.
func (c *nodeChecker) mapping(key string, n *yaml.Node, t reflect.Type) {
	if n.Kind != yaml.MappingNode {
		what := "a section of keys"
		if fields := yamlFields(t); len(fields) > 0 {
			what = fmt.Sprintf("keys (like %s: ...)", fields[0].name)
		}
		c.bad(orRoot(key), n, "should hold %s, not %s", what, describe(n))
		return
	}
	fields := yamlFields(t)
	byName := make(map[string]yamlField, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	c.eachPair(n, func(k, v *yaml.Node) {
		path := join(key, k.Value)
		f, ok := byName[k.Value]
		if !ok {
			c.bad(path, k, "%s", unknownKey(k.Value, fields))
			return
		}
		c.lines[path] = k.Line
		c.check(path, v, f.typ)
	})
}

func unknownKey(name string, fields []yamlField) string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	if s := suggest(name, names); s != "" {
		return fmt.Sprintf("unknown key (did you mean %s?)", s)
	}
	sort.Strings(names)
	if len(names) <= 12 {
		return "unknown key; the keys here are " + strings.Join(names, ", ")
	}
	return "unknown key (config.example.yaml lists every key)"
}

func (c *nodeChecker) duration(key string, n *yaml.Node) {
	if n.Kind != yaml.ScalarNode {
		c.bad(key, n, "should be a duration like 30s, not %s", describe(n))
		return
	}
	switch n.ShortTag() {
	case "!!int", "!!float":
		c.bad(key, n, "%s is not a duration: give it a unit, like %[1]ss (or %[1]sm, %[1]sh)", n.Value)
		return
	}
	var d time.Duration
	if err := n.Decode(&d); err != nil {
		c.bad(key, n, "%q is not a duration; write it like 30s, 5m or 1h30m", n.Value)
	}
}

// scalar checks a single value by decoding it alone into t, so it accepts
// exactly what the real decoding will.
func (c *nodeChecker) scalar(key string, n *yaml.Node, t reflect.Type) {
	if n.Kind != yaml.ScalarNode {
		c.bad(key, n, "should be a single value (%s), not %s", kindWord(t), describe(n))
		return
	}
	if err := n.Decode(reflect.New(t).Interface()); err == nil {
		return
	}
	shown := n.Value
	if n.ShortTag() == "!!str" {
		shown = strconv.Quote(n.Value)
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		switch n.ShortTag() {
		case "!!float":
			c.bad(key, n, "%s is not a whole number", shown)
		case "!!int":
			c.bad(key, n, "%s is out of range", shown)
		default:
			c.bad(key, n, "%s is not a number", shown)
		}
	case reflect.Float32, reflect.Float64:
		c.bad(key, n, "%s is not a number", shown)
	case reflect.Bool:
		c.bad(key, n, "%s is not true or false", shown)
	default:
		c.bad(key, n, "%s is not %s", shown, kindWord(t))
	}
}

// kindWord names what a value of t looks like, in a user's words.
func kindWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "text"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	}
	return "a value"
}

// describe names what a node is, for "should be X, not Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a section of keys"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" {
			return strconv.Quote(n.Value)
		}
		return n.Value
	}
	return "this value"
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func orRoot(key string) string {
	if key == "" {
		return "the file"
	}
	return key
}

// yamlField is one key a struct accepts.
type yamlField struct {
	name string
	typ  reflect.Type
}

// yamlFields lists the keys of struct t as the YAML library sees them:
// tag names, inline structs flattened, "-" left out.
func yamlFields(t reflect.Type) []yamlField {
	var out []yamlField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, yamlFields(ft)...)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // the library's default
		}
		out = append(out, yamlField{name: name, typ: f.Type})
	}
	return out
}

// suggest returns the candidate closest to name when it is close enough to
// be a slip: a typo or two, another case, - for _.
func suggest(name string, candidates []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", 0
	for _, c := range candidates {
		if norm(c) == norm(name) {
			return c
		}
		d := editDistance(strings.ToLower(name), c)
		limit := 2
		if len(c) <= 4 {
			limit = 1
		}
		if d <= limit && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment) between a and b: swapped letters count once.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
