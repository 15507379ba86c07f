// Package moderation refuses prompts with blocked words and locks out users
// who keep trying. It decides before anything is stored or charged, and
// its refusals never name the word that matched, so the list cannot be
// probed one word at a time.
package moderation

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// List is a compiled set of blocked words with its exceptions.
//
// Latin entries match whole words ("ass" does not match "grass" or
// "assassin", but matches "ass-hat"); an entry of several words matches
// those words in a row. Entries with CJK characters match as substrings,
// since CJK text has no spaces between words ("裸体" inside a sentence),
// with spaces and punctuation between the characters ignored ("裸 体").
// Both sides are normalised first: full-width letters folded to ASCII,
// case folded, zero-width characters dropped.
//
// Exceptions are phrases that are allowed though they contain a blocked
// entry (a blocked "裸" with an exception "裸眼", "naked eye"): they are
// cut out of the text before it is matched.
//
// Entries are indexed by their first word (Latin) or first character
// (CJK), so a prompt costs one pass over its words and characters, not
// one search per entry: lists of thousands of words are common.
type List struct {
	latin      map[string][][]string // first word → entries, as words
	cjk        map[rune][]string     // first character → entries, separator-free
	n          int
	exceptions []string // normalised, cut from the normalised text
}

// Compile builds a List. Empty entries are ignored.
func Compile(blocked, exceptions []string) *List {
	l := &List{latin: map[string][][]string{}, cjk: map[rune][]string{}}
	for _, w := range blocked {
		n := normalize(w)
		if hasCJK(n) {
			c := compact(n)
			first, _ := utf8.DecodeRuneInString(c)
			l.cjk[first] = append(l.cjk[first], c)
			l.n++
			continue
		}
		ws := strings.Fields(words(n))
		if len(ws) == 0 {
			continue
		}
		l.latin[ws[0]] = append(l.latin[ws[0]], ws)
		l.n++
	}
	for _, x := range exceptions {
		if n := strings.TrimSpace(normalize(x)); n != "" {
			l.exceptions = append(l.exceptions, n)
		}
	}
	return l
}

// Empty reports whether the list blocks nothing.
func (l *List) Empty() bool { return l == nil || l.n == 0 }

// Match reports whether text contains a blocked entry. It never says which.
func (l *List) Match(text string) bool {
	if l.Empty() {
		return false
	}
	n := normalize(text)
	for _, x := range l.exceptions {
		n = cutException(n, x)
	}
	if len(l.latin) > 0 {
		ws := strings.Fields(words(n))
		for i, w := range ws {
			for _, e := range l.latin[w] {
				if i+len(e) <= len(ws) && slices.Equal(ws[i:i+len(e)], e) {
					return true
				}
			}
		}
	}
	if len(l.cjk) > 0 {
		c := compact(n)
		for i, r := range c {
			for _, e := range l.cjk[r] {
				if strings.HasPrefix(c[i:], e) {
					return true
				}
			}
		}
	}
	return false
}

// cutException removes each occurrence of x from n, compared in their
// word forms: a Latin exception only where it stands as whole words (an
// exception "class" does not free the "ass" of "class ass"), a CJK one
// wherever its characters stand in a row.
func cutException(n, x string) string {
	w, xw := words(n), words(x)
	for strings.Contains(w, xw) {
		w = strings.Replace(w, xw, " ", 1)
	}
	return w
}

// normalize folds width (full-width "ＡＳＳ" to "ASS", half-width katakana
// to full), case, and drops zero-width and format characters people put
// inside words to slip past a filter.
func normalize(s string) string {
	s = width.Fold.String(s)
	return strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Mn, r) {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// words is s as its words between single spaces, with a space at each
// end: " a red fox ". Letters and digits make words; everything else
// separates them. CJK characters are words of their own.
func words(s string) string {
	var b strings.Builder
	b.WriteByte(' ')
	prevSpace := true
	for _, r := range s {
		switch {
		case isCJK(r):
			if !prevSpace {
				b.WriteByte(' ')
			}
			b.WriteRune(r)
			b.WriteByte(' ')
			prevSpace = true
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
			prevSpace = false
		default:
			if !prevSpace {
				b.WriteByte(' ')
				prevSpace = true
			}
		}
	}
	if !prevSpace {
		b.WriteByte(' ')
	}
	return b.String()
}

// compact is s with everything but letters and digits removed.
func compact(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, s)
}

func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

func hasCJK(s string) bool {
	for _, r := range s {
		if isCJK(r) {
			return true
		}
	}
	return false
}

// ReadWordFile reads one entry a line; blank lines and lines starting
// with # are skipped.
func ReadWordFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("word file: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("word file %s: %w", path, err)
	}
	return out, nil
}
