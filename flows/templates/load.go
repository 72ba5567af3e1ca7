package templates

import (
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	texttemplate "text/template"
	"text/template/parse"
	"time"
	"unicode/utf8"

	"github.com/vigil-auth/vigil"
)

// DefaultLanguage is the default language of Builtin, and of Load when
// none is given.
const DefaultLanguage = "en"

// maxFileSize caps one template file; a template is a page of text.
const maxFileSize = 64 << 10

// Set is a complete, parsed and checked set of templates: every language
// has every part of every kind, its own or its default language's. It is
// safe for concurrent use. Make one with Builtin, Load or LoadFS; the zero
// Set renders nothing.
type Set struct {
	def    string
	tags   []string                   // sorted
	lookup map[string]string          // lower-case tag → tag
	langs  map[string]map[slot]*entry // tag → templates
}

type slot struct {
	kind Kind
	part Part
}

func (s slot) file() string { return string(s.kind) + "." + string(s.part) + ".tmpl" }

// entry is one parsed template; exactly one of text and html is set.
type entry struct {
	lang  string // the language it is written in
	label string // where it came from, for messages
	part  Part
	text  *texttemplate.Template
	html  *htmltemplate.Template
}

// Languages lists the supported languages (BCP 47), sorted.
func (s *Set) Languages() []string { return slices.Clone(s.tags) }

// Default is the language used when nothing a person prefers is supported.
func (s *Set) Default() string { return s.def }

//go:embed builtin
var builtinFiles embed.FS

// BuiltinFS holds the shipped templates in the layout Load reads:
// <lang>/<kind>.<part>.tmpl. os.CopyFS(dir, BuiltinFS()) writes a copy
// for an operator to edit.
func BuiltinFS() fs.FS {
	sub, err := fs.Sub(builtinFiles, "builtin")
	if err != nil {
		panic(err) // a constant, valid path into an embedded tree
	}
	return sub
}

var builtin = sync.OnceValue(func() *Set {
	s, _, err := LoadFS(nil, DefaultLanguage)
	if err != nil {
		panic(fmt.Sprintf("templates: the built-in templates are broken: %v", err)) // TestBuiltin keeps this from happening
	}
	return s
})

// Builtin returns the shipped templates with English as the default.
func Builtin() *Set { return builtin() }

// Load reads operator templates from dir over the built-in ones; an empty
// dir means the built-in ones alone. defaultLang ("" is English) must end
// up complete. See LoadFS.
func Load(dir, defaultLang string) (*Set, []string, error) {
	if dir == "" {
		return LoadFS(nil, defaultLang)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("load templates: %w", err)
	}
	if !info.IsDir() {
		return nil, nil, fmt.Errorf("load templates: %s is not a directory", dir)
	}
	return loadFS(os.DirFS(dir), dir, defaultLang)
}

// LoadFS reads operator templates from fsys (nil for none) over the
// built-in ones. A file <lang>/<kind>.<part>.tmpl replaces the built-in
// one; a new language may hold only some files, and each missing one is
// taken from the default language with a warning. Every template is
// parsed, checked for fields Data does not have, and run with sample data
// now, so a broken set fails here with every problem joined in one error,
// not at the first send. Warnings are for the caller to log: parts taken
// from the default language, ignored files, SMS texts that take more than
// one segment.
func LoadFS(fsys fs.FS, defaultLang string) (*Set, []string, error) {
	return loadFS(fsys, "", defaultLang)
}

// source is the text of one template file.
type source struct {
	lang  string
	label string
	text  string
}

func loadFS(fsys fs.FS, dir, defaultLang string) (*Set, []string, error) {
	srcs, warns, errs := readTree(BuiltinFS(), "builtin")
	if fsys != nil {
		over, w, e := readTree(fsys, dir)
		warns = append(warns, w...)
		errs = append(errs, e...)
		for lang, files := range over {
			if srcs[lang] == nil {
				srcs[lang] = map[slot]source{}
			}
			maps.Copy(srcs[lang], files)
		}
	}
	s, w, e := build(srcs, defaultLang)
	warns = append(warns, w...)
	errs = append(errs, e...)
	if len(errs) > 0 {
		return nil, warns, fmt.Errorf("load templates: %w", errors.Join(errs...))
	}
	return s, warns, nil
}

// readTree reads <lang>/<kind>.<part>.tmpl files. Names starting with a
// dot are skipped (editors' files, Kubernetes' ..data links); other files
// that are not templates are ignored with a warning; a .tmpl file whose
// name is not a kind and part is an error.
func readTree(fsys fs.FS, dir string) (map[string]map[slot]source, []string, []error) {
	label := func(name string) string {
		if dir == "" {
			return name
		}
		return filepath.Join(dir, filepath.FromSlash(name))
	}
	var warns []string
	var errs []error
	top, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, nil, []error{fmt.Errorf("%s: %w", label("."), err)}
	}
	out := map[string]map[slot]source{}
	for _, d := range top {
		name := d.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		info, err := fs.Stat(fsys, name) // follows links
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label(name), err))
			continue
		}
		if !info.IsDir() {
			warns = append(warns, fmt.Sprintf("templates: %s ignored: templates go in a directory per language", label(name)))
			continue
		}
		lang, ok := parseTag(name)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: directory name is not a language tag (like de or pt-BR)", label(name)))
			continue
		}
		if out[lang] != nil {
			errs = append(errs, fmt.Errorf("%s: a second directory for language %s", label(name), lang))
			continue
		}
		out[lang] = map[slot]source{}
		files, err := fs.ReadDir(fsys, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label(name), err))
			continue
		}
		for _, f := range files {
			file := path.Join(name, f.Name())
			if strings.HasPrefix(f.Name(), ".") {
				continue
			}
			if !strings.HasSuffix(f.Name(), ".tmpl") {
				warns = append(warns, fmt.Sprintf("templates: %s ignored: not a .tmpl file", label(file)))
				continue
			}
			sl, err := parseName(f.Name())
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", label(file), err))
				continue
			}
			text, err := readFile(fsys, file)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", label(file), err))
				continue
			}
			out[lang][sl] = source{lang: lang, label: label(file), text: text}
		}
	}
	return out, warns, errs
}

func parseName(name string) (slot, error) {
	base := strings.TrimSuffix(name, ".tmpl")
	k, p, ok := strings.Cut(base, ".")
	if !ok {
		return slot{}, errors.New("name is not <kind>.<part>.tmpl")
	}
	var problems []string
	if !Kind(k).Valid() {
		problems = append(problems, fmt.Sprintf("unknown kind %q (known: %s)", k, join(kinds)))
	}
	if !Part(p).Valid() {
		problems = append(problems, fmt.Sprintf("unknown part %q (known: %s)", p, join(parts)))
	}
	if len(problems) > 0 {
		return slot{}, errors.New(strings.Join(problems, "; "))
	}
	return slot{Kind(k), Part(p)}, nil
}

func join[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

func readFile(fsys fs.FS, name string) (string, error) {
	info, err := fs.Stat(fsys, name)
	if err != nil {
		return "", err
	}
	if info.IsDir() {
		return "", errors.New("a directory, not a template file")
	}
	if info.Size() > maxFileSize {
		return "", fmt.Errorf("larger than %d KiB", maxFileSize>>10)
	}
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", errors.New("not UTF-8")
	}
	return string(b), nil
}

// build parses and checks every template and fills the gaps of each
// language from the default one.
func build(srcs map[string]map[slot]source, defaultLang string) (*Set, []string, []error) {
	var warns []string
	var errs []error
	// On a bad default, still check every template below: all errors at
	// once.
	def, defErr := defaultTag(srcs, defaultLang)
	if defErr != nil {
		errs = append(errs, defErr)
	}
	s := &Set{def: def, tags: sortedKeys(srcs), lookup: map[string]string{}, langs: map[string]map[slot]*entry{}}
	for _, lang := range s.tags {
		s.lookup[strings.ToLower(lang)] = lang
		s.langs[lang] = map[slot]*entry{}
		for _, sl := range allSlots() {
			src, ok := srcs[lang][sl]
			if !ok {
				continue
			}
			e, w, err := compile(src, sl)
			warns = append(warns, w...)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			s.langs[lang][sl] = e
		}
	}
	if defErr != nil {
		return nil, warns, errs
	}
	for _, sl := range allSlots() {
		if _, ok := srcs[def][sl]; !ok {
			errs = append(errs, fmt.Errorf("default language %s has no %s", def, sl.file()))
		}
	}
	for _, lang := range s.tags {
		if lang == def {
			continue
		}
		for _, sl := range allSlots() {
			if _, ok := srcs[lang][sl]; ok {
				continue
			}
			s.langs[lang][sl] = s.langs[def][sl]
			warns = append(warns, fmt.Sprintf("templates: %s has no %s; using %s's", lang, sl.file(), def))
		}
	}
	return s, warns, errs
}

// defaultTag finds the default language among those with templates;
// "en-US" names English when only "en" exists.
func defaultTag(srcs map[string]map[slot]source, lang string) (string, error) {
	if lang == "" {
		lang = DefaultLanguage
	}
	tag, ok := parseTag(lang)
	if !ok {
		return "", fmt.Errorf("default language %q is not a language tag", lang)
	}
	for t := tag; t != ""; t = truncate(t) {
		if srcs[t] != nil {
			return t, nil
		}
	}
	return "", fmt.Errorf("default language %s has no templates (have: %s)", tag, strings.Join(sortedKeys(srcs), ", "))
}

func allSlots() []slot {
	out := make([]slot, 0, len(kinds)*len(parts))
	for _, k := range kinds {
		for _, p := range parts {
			out = append(out, slot{k, p})
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// funcs are the functions templates may call besides the built-in ones.
var funcs = map[string]any{
	// plural picks one for n == 1 and other otherwise; that is the rule of
	// every shipped language for the counts used (minutes are at least 1).
	"plural": func(n int, one, other string) string {
		if n == 1 {
			return one
		}
		return other
	},
}

// compile parses one template, checks the fields it names and runs it
// with every sample, so a mistake in a branch the first sample skips is
// still found.
func compile(src source, sl slot) (*entry, []string, error) {
	e := &entry{lang: src.lang, label: src.label, part: sl.part}
	name := string(sl.kind) + "." + string(sl.part)
	var tree *parse.Tree
	if sl.part == PartHTML {
		t, err := htmltemplate.New(name).Option("missingkey=error").Funcs(funcs).Parse(src.text)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", src.label, err)
		}
		e.html, tree = t, t.Tree
	} else {
		t, err := texttemplate.New(name).Option("missingkey=error").Funcs(funcs).Parse(src.text)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", src.label, err)
		}
		e.text, tree = t, t.Tree
	}
	if tree == nil {
		return nil, nil, fmt.Errorf("%s: empty template", src.label)
	}
	if errs := checkFields(tree); len(errs) > 0 {
		return nil, nil, fmt.Errorf("%s: %w", src.label, errors.Join(errs...))
	}
	worst, worstEnc := 0, ""
	for _, d := range samples() {
		out, err := e.execute(d)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", src.label, err)
		}
		if strings.TrimSpace(out) == "" {
			return nil, nil, fmt.Errorf("%s: renders nothing with sample data", src.label)
		}
		if sl.part == PartSMS {
			if enc, n := SMSInfo(out); n > worst {
				worst, worstEnc = n, enc
			}
		}
	}
	var warns []string
	if worst > 1 {
		warns = append(warns, fmt.Sprintf("templates: %s takes %d %s segments with sample data; one is the aim", src.label, worst, worstEnc))
	}
	return e, warns, nil
}

// sampleLink is as long as the links Vigil makes: a public URL, the path
// and 32 random bytes in unpadded base64url.
const sampleLink = "https://verify.example.com/self-service/verifications/link?token=q3T-8xZ_0aLm9Vb2Kc7Yw1Ns4Hd6Rf5Ug8Je0Pi3Ok2"

// samples are the data each template runs with at load time: both
// channels, minutes and hours, every optional field set and none set.
// Values are as long as real ones get (codes have up to 10 digits), so
// the SMS segment check means something.
func samples() []Data {
	at := time.Date(2026, time.March, 1, 14, 5, 0, 0, time.UTC)
	var out []Data
	for _, ch := range []vigil.Channel{vigil.ChannelEmail, vigil.ChannelSMS} {
		dest := "a***@example.com"
		if ch == vigil.ChannelSMS {
			dest = "+49 151 ****789"
		}
		full := Data{
			Code: "1234567890", Link: sampleLink, Minutes: 15,
			Destination: dest, Channel: ch, Product: "Acme Cloud", Device: "Firefox on Windows", Time: at,
		}
		hours := full
		hours.Minutes, hours.Hours = 48*60, 48
		bare := Data{Code: "123456", Link: sampleLink, Minutes: 1, Channel: ch, Time: at}
		out = append(out, full, hours, bare)
	}
	return out
}

// dataNames are the names a template may look up on Data.
var dataNames = func() map[string]bool {
	t := reflect.TypeFor[Data]()
	m := map[string]bool{}
	for f := range t.Fields() {
		m[f.Name] = true
	}
	for meth := range t.Methods() {
		m[meth.Name] = true
	}
	return m
}()

// checkFields finds every .Field and $.Field that Data lacks, in every
// branch, where running with sample data only finds those on the path
// the sample takes. Inside range and with the dot is something else, so
// only $.Field is checked there.
func checkFields(tree *parse.Tree) []error {
	c := fieldCheck{tree: tree}
	c.list(tree.Root, true)
	return c.errs
}

type fieldCheck struct {
	tree *parse.Tree
	errs []error
}

func (c *fieldCheck) list(l *parse.ListNode, dotIsData bool) {
	if l == nil {
		return
	}
	for _, n := range l.Nodes {
		switch n := n.(type) {
		case *parse.ActionNode:
			c.pipe(n.Pipe, dotIsData)
		case *parse.IfNode:
			c.pipe(n.Pipe, dotIsData)
			c.list(n.List, dotIsData)
			c.list(n.ElseList, dotIsData)
		case *parse.RangeNode:
			c.pipe(n.Pipe, dotIsData)
			c.list(n.List, false)
			c.list(n.ElseList, dotIsData)
		case *parse.WithNode:
			c.pipe(n.Pipe, dotIsData)
			c.list(n.List, false)
			c.list(n.ElseList, dotIsData)
		case *parse.TemplateNode:
			c.pipe(n.Pipe, dotIsData)
		case *parse.ListNode:
			c.list(n, dotIsData)
		}
	}
}

func (c *fieldCheck) pipe(p *parse.PipeNode, dotIsData bool) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			c.arg(arg, dotIsData)
		}
	}
}

func (c *fieldCheck) arg(n parse.Node, dotIsData bool) {
	switch n := n.(type) {
	case *parse.FieldNode:
		if dotIsData {
			c.name(n, n.Ident[0])
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			c.name(n, n.Ident[1])
		}
	case *parse.ChainNode:
		c.arg(n.Node, dotIsData)
	case *parse.PipeNode:
		c.pipe(n, dotIsData)
	}
}

func (c *fieldCheck) name(n parse.Node, name string) {
	if dataNames[name] {
		return
	}
	loc, _ := c.tree.ErrorContext(n)
	c.errs = append(c.errs, fmt.Errorf("%s: unknown field %s (have: %s)", loc, name, strings.Join(sortedKeys(dataNames), ", ")))
}
