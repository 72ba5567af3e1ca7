package templates

import (
	"slices"
	"strings"
)

// Limits on what Pick reads of its untrusted inputs.
const (
	maxTagLen        = 64
	maxAcceptLen     = 4096
	maxAcceptEntries = 32
)

// Pick returns the supported language that best fits a person: first their
// locale (from identity traits or metadata: "de", "de-AT", "pt_BR",
// "de_DE.UTF-8"), then an HTTP Accept-Language value (q-values honoured),
// then the set's default. A tag matches itself, then its prefixes
// ("de-AT" → "de"), then another region of its language ("pt-PT" →
// "pt-BR"). Malformed input is skipped, never an error.
func (s *Set) Pick(locale, acceptLanguage string) string {
	if tag, ok := parseTag(locale); ok {
		if l, ok := s.match(tag, nil); ok {
			return l
		}
	}
	if l, ok := s.pickAccept(acceptLanguage); ok {
		return l
	}
	return s.def
}

// match finds the supported language for a canonical tag by RFC 4647
// lookup, then by a sibling with the same primary language. Excluded
// languages (q=0) never match.
func (s *Set) match(tag string, excluded map[string]bool) (string, bool) {
	key := strings.ToLower(tag)
	for t := key; t != ""; t = truncate(t) {
		if l, ok := s.lookup[t]; ok && !excluded[l] {
			return l, true
		}
	}
	base := primary(key)
	for _, l := range s.tags {
		if primary(strings.ToLower(l)) == base && !excluded[l] {
			return l, true
		}
	}
	return "", false
}

func (s *Set) pickAccept(h string) (string, bool) {
	ranges := parseAccept(h)
	excluded := map[string]bool{}
	for _, r := range ranges {
		if r.q == 0 && !r.wildcard {
			if l, ok := s.lookup[strings.ToLower(r.tag)]; ok {
				excluded[l] = true
			}
		}
	}
	for _, r := range ranges {
		if r.q == 0 {
			break // sorted: everything from here on is unacceptable
		}
		if !r.wildcard {
			if l, ok := s.match(r.tag, excluded); ok {
				return l, true
			}
			continue
		}
		// Any language will do: the default, unless it was refused.
		if !excluded[s.def] {
			return s.def, true
		}
		for _, l := range s.tags {
			if !excluded[l] {
				return l, true
			}
		}
	}
	return "", false
}

// truncate drops the last subtag, and a singleton left dangling before it
// ("zh-hant-x-a" → "zh-hant"), as RFC 4647 lookup does.
func truncate(t string) string {
	i := strings.LastIndexByte(t, '-')
	if i < 0 {
		return ""
	}
	t = t[:i]
	if i = strings.LastIndexByte(t, '-'); i >= 0 && len(t)-i == 2 {
		t = t[:i]
	}
	return t
}

func primary(t string) string {
	p, _, _ := strings.Cut(t, "-")
	return p
}

// acceptRange is one entry of an Accept-Language value; q is in
// thousandths.
type acceptRange struct {
	tag      string
	q        int
	wildcard bool
}

// parseAccept reads an Accept-Language value (RFC 9110 section 12.5.4),
// best first; entries it cannot read are skipped. It reads at most
// maxAcceptLen bytes and maxAcceptEntries entries: a header is no place
// for more, and Pick runs on every request that sends a code.
func parseAccept(h string) []acceptRange {
	if len(h) > maxAcceptLen {
		h = h[:maxAcceptLen]
		if i := strings.LastIndexByte(h, ','); i >= 0 {
			h = h[:i] // the cut entry is not what was sent
		}
	}
	var out []acceptRange
	for entry := range strings.SplitSeq(h, ",") {
		if len(out) == maxAcceptEntries {
			break
		}
		name, params, _ := strings.Cut(entry, ";")
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		r := acceptRange{q: 1000}
		ok := true
		for param := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(param, "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				r.q, ok = parseQ(strings.TrimSpace(v))
			}
		}
		if !ok {
			continue
		}
		if name == "*" {
			r.wildcard = true
		} else if r.tag, ok = parseTag(name); !ok {
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b acceptRange) int { return b.q - a.q })
	return out
}

// parseQ reads a qvalue: "0" to "1" with at most three decimals.
func parseQ(v string) (int, bool) {
	whole, frac, _ := strings.Cut(v, ".")
	if len(frac) > 3 || (whole != "0" && whole != "1") {
		return 0, false
	}
	q := 0
	for i := range 3 {
		d := byte('0')
		if i < len(frac) {
			d = frac[i]
		}
		if d < '0' || d > '9' {
			return 0, false
		}
		q = q*10 + int(d-'0')
	}
	if whole == "1" {
		if q != 0 {
			return 0, false
		}
		q = 1000
	}
	return q, true
}

// parseTag reads a language tag in BCP 47 or POSIX spelling ("pt_BR",
// "de_DE.UTF-8@euro") and returns it in canonical case: "pt-BR",
// "zh-Hant-TW". It checks the syntax of subtags, not that they are
// registered.
func parseTag(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, ".@"); i >= 0 {
		s = s[:i]
	}
	if s == "" || len(s) > maxTagLen {
		return "", false
	}
	subtags := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' })
	if len(subtags) == 0 || strings.Count(s, "-")+strings.Count(s, "_") != len(subtags)-1 {
		return "", false // empty subtags: "de--AT", "-de", "de_"
	}
	var b strings.Builder
	for i, sub := range subtags {
		if len(sub) > 8 || !isAlnum(sub) {
			return "", false
		}
		if i == 0 {
			if len(sub) < 2 || len(sub) > 3 || !isAlpha(sub) {
				return "", false
			}
			b.WriteString(strings.ToLower(sub))
			continue
		}
		b.WriteByte('-')
		switch {
		case len(sub) == 2 && isAlpha(sub): // region
			b.WriteString(strings.ToUpper(sub))
		case len(sub) == 4 && isAlpha(sub): // script
			b.WriteString(strings.ToUpper(sub[:1]) + strings.ToLower(sub[1:]))
		default:
			b.WriteString(strings.ToLower(sub))
		}
	}
	return b.String(), true
}

func isAlpha(s string) bool {
	for i := range len(s) {
		c := s[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func isAlnum(s string) bool {
	for i := range len(s) {
		c := s[i]
		if (c < '0' || c > '9') && ((c|0x20) < 'a' || (c|0x20) > 'z') {
			return false
		}
	}
	return true
}
