package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// scalarParser is implemented by the config's own scalar types (Duration,
// Size, Streaming) so the decoder can report their errors in place.
type scalarParser interface {
	parseScalar(string) error
}

// decoder walks a YAML syntax tree into the config structs, collecting
// every error with its position instead of stopping at the first.
type decoder struct {
	file    string
	errs    ErrorList
	pos     positions
	anchors map[string]ast.Node
}

// decodeYAML parses data and decodes it into v, which holds the defaults
// on entry: keys the file leaves out keep them. parsed is false when the
// YAML itself is broken and nothing was decoded.
func decodeYAML(file string, data []byte, v any) (pos positions, errs ErrorList, parsed bool) {
	d := &decoder{file: file, pos: positions{}, anchors: map[string]ast.Node{}}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		d.syntaxError(err)
		return d.pos, d.errs, false
	}
	switch {
	case len(f.Docs) > 1:
		d.errorf(docToken(f.Docs[1]), "", "the file holds more than one YAML document; sluice reads exactly one")
		return d.pos, d.errs, false
	case len(f.Docs) == 0 || f.Docs[0].Body == nil:
		// An empty file decodes to the defaults; validation says what is missing.
	default:
		d.decode(f.Docs[0].Body, "", reflect.ValueOf(v).Elem())
	}
	return d.pos, d.errs, true
}

func (d *decoder) syntaxError(err error) {
	var ye interface {
		GetToken() *token.Token
		GetMessage() string
	}
	if errors.As(err, &ye) {
		d.errorf(ye.GetToken(), "", "YAML syntax: %s", ye.GetMessage())
		return
	}
	d.errs = append(d.errs, &Error{File: d.file, Msg: "YAML syntax: " + err.Error()})
}

func posOf(tk *token.Token) Pos {
	if tk == nil || tk.Position == nil {
		return Pos{}
	}
	return Pos{Line: tk.Position.Line, Column: tk.Position.Column}
}

// docToken is where a document starts: its "---", else its body. An
// empty document after "---" has no body (DocumentNode.GetToken would
// panic on it).
func docToken(doc *ast.DocumentNode) *token.Token {
	if doc.Start != nil {
		return doc.Start
	}
	if doc.Body != nil {
		return doc.Body.GetToken()
	}
	return nil
}

// nodePos is where a node starts: for a mapping, its first key (the
// parser's own token for a mapping is the first ':').
func nodePos(n ast.Node) Pos {
	switch m := n.(type) {
	case *ast.MappingNode:
		if len(m.Values) > 0 && !m.IsFlowStyle {
			return posOf(m.Values[0].Key.GetToken())
		}
	case *ast.MappingValueNode:
		return posOf(m.Key.GetToken())
	}
	return posOf(n.GetToken())
}

func (d *decoder) errorf(tk *token.Token, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Pos: posOf(tk), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// resolve strips anchors, tags and comments and follows aliases.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for {
		switch t := n.(type) {
		case *ast.AnchorNode:
			d.anchors[t.Name.String()] = t.Value
			n = t.Value
		case *ast.AliasNode:
			target, ok := d.anchors[t.Value.String()]
			if !ok {
				return n
			}
			n = target
		case *ast.TagNode:
			n = t.Value
		case *ast.CommentGroupNode:
			return nil
		default:
			return n
		}
	}
}

func (d *decoder) decode(n ast.Node, path string, v reflect.Value) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	if path != "" {
		d.pos[path] = nodePos(n)
	}
	if alias, ok := n.(*ast.AliasNode); ok {
		d.errorf(alias.GetToken(), path, "unknown alias %q", alias.Value.String())
		return
	}
	if sp, ok := v.Addr().Interface().(scalarParser); ok {
		s, ok := d.scalar(n, path)
		if ok {
			if err := sp.parseScalar(s); err != nil {
				d.errorf(n.GetToken(), path, "%v", err)
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if _, isNull := n.(*ast.NullNode); isNull {
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, path, v.Elem())
	case reflect.Struct:
		d.decodeStruct(n, path, v)
	case reflect.Slice:
		d.decodeSlice(n, path, v)
	case reflect.String:
		if s, ok := d.scalar(n, path); ok {
			v.SetString(s)
		}
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.errorf(n.GetToken(), path, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(b.Value)
	case reflect.Uint32, reflect.Int, reflect.Int64:
		in, ok := n.(*ast.IntegerNode)
		if !ok {
			d.errorf(n.GetToken(), path, "want a whole number, got %s", describe(n))
			return
		}
		text := strings.ReplaceAll(in.GetToken().Value, "_", "")
		if v.Kind() == reflect.Uint32 {
			u, err := strconv.ParseUint(text, 0, 32)
			if err != nil {
				d.errorf(n.GetToken(), path, "%s is not a number from 0 to %d", text, uint32(1<<32-1))
				return
			}
			v.SetUint(u)
			return
		}
		i, err := strconv.ParseInt(text, 0, 64)
		if err != nil {
			d.errorf(n.GetToken(), path, "%s is not a whole number", text)
			return
		}
		v.SetInt(i)
	default:
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

// scalar returns the text of a scalar node, whatever YAML type it was
// read as: an address like 8443 or a host like 1.2.3.4 must not fail for
// being unquoted.
func (d *decoder) scalar(n ast.Node, path string) (string, bool) {
	switch t := n.(type) {
	case *ast.StringNode:
		return t.Value, true
	case *ast.LiteralNode:
		return t.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		return t.GetToken().Value, true
	case *ast.NullNode:
		d.errorf(n.GetToken(), path, "value is missing")
	default:
		d.errorf(n.GetToken(), path, "want a single value, got %s", describe(n))
	}
	return "", false
}

func (d *decoder) decodeStruct(n ast.Node, path string, v reflect.Value) {
	if _, isNull := n.(*ast.NullNode); isNull {
		return
	}
	m, ok := n.(*ast.MappingNode)
	if !ok {
		if mv, single := n.(*ast.MappingValueNode); single {
			m = &ast.MappingNode{Values: []*ast.MappingValueNode{mv}}
		} else {
			d.errorf(n.GetToken(), path, "want a mapping of keys, got %s", describe(n))
			return
		}
	}
	fields := structFields(v.Type())
	seen := map[string]bool{}
	for _, mv := range m.Values {
		key := mv.Key.String()
		if k, ok := mv.Key.(*ast.StringNode); ok {
			key = k.Value
		}
		keyPath := join(path, key)
		if key == "<<" {
			d.errorf(mv.Key.GetToken(), path, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		idx, ok := fields[key]
		if !ok {
			d.errorf(mv.Key.GetToken(), keyPath, "unknown key (allowed here: %s)", strings.Join(fieldNames(v.Type()), ", "))
			continue
		}
		if seen[key] {
			d.errorf(mv.Key.GetToken(), keyPath, "key appears twice")
			continue
		}
		seen[key] = true
		d.decode(mv.Value, keyPath, v.Field(idx))
	}
}

func (d *decoder) decodeSlice(n ast.Node, path string, v reflect.Value) {
	if _, isNull := n.(*ast.NullNode); isNull {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		return
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		d.errorf(n.GetToken(), path, "want a list, got %s", describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
	for i, item := range seq.Values {
		d.decode(item, fmt.Sprintf("%s[%d]", path, i), out.Index(i))
	}
	v.Set(out)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func structFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		if name := yamlName(t.Field(i)); name != "" {
			m[name] = i
		}
	}
	return m
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if name := yamlName(t.Field(i)); name != "" {
			names = append(names, name)
		}
	}
	return names
}

func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func describe(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "nothing"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.IntegerNode, *ast.FloatNode:
		return "a number " + n.GetToken().Value
	}
	return strconv.Quote(n.GetToken().Value)
}
